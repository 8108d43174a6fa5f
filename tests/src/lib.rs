//! Helpers for the namespace tests.
