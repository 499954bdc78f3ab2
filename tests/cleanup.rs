//! Emulator integration tests for cleanup (being written).
