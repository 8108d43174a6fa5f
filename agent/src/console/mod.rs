//! Console (stub, being written).
