//! cloudy: one small agent that turns the boxes of a community network
//! into a cloud.
//!
//! Layers (see `docs/architecture.md`):
//! - pure parsers and state machines: [`config`], [`overlay`] (`wire`,
//!   `noise`, `switch`, `node`), [`console::proto`];
//! - IO: [`runtime`] (the event loop, sockets, signals) and
//!   [`overlay::device`] (TAP / raw socket).
//!
//! Capacities live in [`limits`]; time is passed in as [`time::Instant`].
//!
//! `unsafe` is denied here and allowed only in `sys`, the system layer:
//! every system call, `ioctl`, control message and C struct cast goes
//! through its safe, typed functions.

#![deny(unsafe_code)]

pub mod log;

pub mod config;
pub mod console;
pub mod dnssd;
pub mod keys;
pub mod limits;
#[cfg(feature = "discovery")]
pub mod mdns;
pub mod overlay;
pub mod runtime;
pub mod selftest;
#[cfg(feature = "store")]
pub mod store;
#[allow(unsafe_code)] // the system layer: every `unsafe`, each with a SAFETY line
pub(crate) mod sys;
#[cfg(test)]
pub(crate) mod testutil;
pub mod time;
pub mod trust;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
