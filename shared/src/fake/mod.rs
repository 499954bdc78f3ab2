//! fake (in progress)
