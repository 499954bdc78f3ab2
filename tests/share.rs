//! Emulator integration tests for share (being written).
