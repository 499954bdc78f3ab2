//! AWS SDK adapters (in progress).
