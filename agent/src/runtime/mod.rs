//! Runtime (stub, being written).
