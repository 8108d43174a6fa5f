//! stub, being written.
