//! Emulator integration tests for create_image (being written).
