//! Signals as a pollable descriptor (signalfd).
//!
//! `SIGHUP` (procd's reload) becomes [`Signal::Reload`]; `SIGTERM` and
//! `SIGINT` become [`Signal::Terminate`]. They are blocked in the calling
//! thread's mask, so create [`Signals`] in the main thread before spawning
//! any thread (threads inherit the mask; a thread without it would take
//! the default action). `SIGPIPE` is ignored, so a closed console socket
//! gives `EPIPE` instead of killing the agent. Children started with
//! `std::process::Command` get an empty mask and default `SIGPIPE` back
//! (std resets both), so containers are unaffected.
//!
//! The mask is not restored on drop.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal as Sig};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// Signals read per [`Signals::read`] call at most (others are skipped).
const MAX_READS: usize = 8;

/// What a signal asks the agent to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// `SIGHUP`: reload the configuration.
    Reload,
    /// `SIGTERM` or `SIGINT`: shut down cleanly.
    Terminate,
}

/// The agent's signalfd.
#[derive(Debug)]
pub struct Signals {
    fd: SignalFd,
}

impl Signals {
    /// Blocks `SIGHUP`, `SIGTERM`, `SIGINT` in this thread, ignores
    /// `SIGPIPE`, and opens a nonblocking, close-on-exec signalfd.
    pub fn new() -> io::Result<Signals> {
        let context = |what: &str, e: Errno| {
            let e = io::Error::from(e);
            io::Error::new(e.kind(), format!("{what}: {e}"))
        };
        let mut set = SigSet::empty();
        for sig in [Sig::SIGHUP, Sig::SIGTERM, Sig::SIGINT] {
            set.add(sig);
        }
        set.thread_block()
            .map_err(|e| context("block signals", e))?;
        crate::sys::ignore_sigpipe()
            .map_err(|e| io::Error::new(e.kind(), format!("ignore SIGPIPE: {e}")))?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| context("signalfd", e))?;
        Ok(Signals { fd })
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The next pending signal, or `None` when none is pending.
    pub fn read(&mut self) -> Option<Signal> {
        for _ in 0..MAX_READS {
            let info = match self.fd.read_signal() {
                Ok(Some(info)) => info,
                Err(Errno::EINTR) => continue,
                // Nothing pending (EAGAIN), or an error: nothing to act on.
                Ok(None) | Err(_) => return None,
            };
            match info.ssi_signo as libc::c_int {
                libc::SIGHUP => return Some(Signal::Reload),
                libc::SIGTERM | libc::SIGINT => return Some(Signal::Terminate),
                _ => continue,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_arrive_on_the_fd() {
        // Runs in its own thread: the mask change stays there, and raise()
        // targets this thread only.
        std::thread::spawn(|| {
            let mut s = Signals::new().unwrap();
            assert_eq!(s.read(), None);
            // The signals are blocked in this thread, so raising them only
            // queues them for the signalfd.
            nix::sys::signal::raise(Sig::SIGHUP).unwrap();
            nix::sys::signal::raise(Sig::SIGTERM).unwrap();
            let mut got = vec![];
            for _ in 0..4 {
                if let Some(sig) = s.read() {
                    got.push(sig);
                }
            }
            got.sort_by_key(|s| *s as u8);
            assert_eq!(got, vec![Signal::Reload, Signal::Terminate]);
            nix::sys::signal::raise(Sig::SIGINT).unwrap();
            assert_eq!(s.read(), Some(Signal::Terminate));
            assert_eq!(s.read(), None);
        })
        .join()
        .unwrap();
    }
}
