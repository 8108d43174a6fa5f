//! The console: how `cloudy` commands talk to the running daemon.
//!
//! - [`proto`]: framed postcard messages ([`proto::Request`],
//!   [`proto::Response`]) and a sans-IO frame decoder.
//! - [`server`]: the daemon's control socket (a Unix stream socket, mode
//!   0600), polled by the runtime; and the blocking client call.
//! - [`format`]: human tables and JSON for the answers.
//! - [`cli`]: the command line of the `cloudy` binary.
//! - [`join`]: `cloudy join TOKEN`, run standalone (no daemon): a new box
//!   joins a cloud with an invitation.
//!
//! Invariants: every message is at most `limits::MAX_CONSOLE_MESSAGE`
//! bytes; the daemon holds at most `limits::MAX_CONSOLE_CLIENTS` clients
//! at once, each for at most `limits::CONSOLE_REQUEST_TIMEOUT` per
//! request, and answers one more `busy` (or at once, if its request is
//! already complete); nothing a client sends can make it panic.

pub mod authority;
pub mod cli;
pub mod format;
pub mod join;
pub mod proto;
pub mod server;
#[cfg(feature = "store")]
pub mod store;

/// Where the daemon listens and the commands connect, unless `-s` or
/// `CLOUDY_SOCKET` say otherwise.
pub const DEFAULT_SOCKET_PATH: &str = "/var/run/cloudy.sock";
