//! Emulator integration tests for replicate (being written).
