//! Key files (stub, being written).
