//! UCI parser (stub, being written).
