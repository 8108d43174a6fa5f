//! (being written: see docs/store.md)
