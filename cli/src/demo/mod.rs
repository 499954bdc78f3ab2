//! `amictl demo`: the whole lifecycle on the emulator, through the template's own wiring.
pub mod cron;
pub mod wiring;
