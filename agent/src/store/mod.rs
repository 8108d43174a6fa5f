//! The store: files encrypted on the client, Reed–Solomon coded K-of-N
//! across the micro cloud's storage boxes, checked by hash trees against a
//! root that the capability pins. The specification is `docs/store.md`;
//! each module implements one part of it:
//!
//! - [`gf256`], [`rs`]: the erasure code, byte-identical to zfec (pure).
//! - [`tree`], [`cap`]: hash trees, audit paths, capabilities (pure).
//! - [`share`]: the share file's layout (pure, fuzzed).
//! - [`chunkstore`]: share files on a storage box's disk: atomic writes,
//!   quota, leases (IO).
//! - [`proto`]: the store protocol's frames (pure, fuzzed).
//! - [`net`]: TCP sockets bound to the overlay device (IO).

pub mod cap;
pub mod chunkstore;
pub mod client;
pub mod file;
pub mod gf256;
pub mod net;
pub mod proto;
pub mod rs;
pub mod server;
pub mod share;
pub mod tree;
