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
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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
    fd: OwnedFd,
}

impl Signals {
    /// Blocks `SIGHUP`, `SIGTERM`, `SIGINT` in this thread, ignores
    /// `SIGPIPE`, and opens a nonblocking, close-on-exec signalfd.
    pub fn new() -> io::Result<Signals> {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it.
        let mut set: libc::sigset_t = unsafe { mem::zeroed() };
        // SAFETY: `set` is a valid sigset_t; the signal numbers are valid.
        unsafe {
            libc::sigemptyset(&mut set);
            for sig in [libc::SIGHUP, libc::SIGTERM, libc::SIGINT] {
                libc::sigaddset(&mut set, sig);
            }
        }
        // SAFETY: `set` is initialised; the old mask is not wanted.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            let e = io::Error::from_raw_os_error(rc);
            return Err(io::Error::new(e.kind(), format!("block signals: {e}")));
        }
        // SAFETY: setting the disposition of SIGPIPE to SIG_IGN is always valid.
        if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) } == libc::SIG_ERR {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("ignore SIGPIPE: {e}")));
        }
        // SAFETY: `set` is initialised; -1 asks for a new descriptor.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("signalfd: {e}")));
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(Signals {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The next pending signal, or `None` when none is pending.
    pub fn read(&mut self) -> Option<Signal> {
        for _ in 0..MAX_READS {
            // SAFETY: signalfd_siginfo is plain data.
            let mut info: libc::signalfd_siginfo = unsafe { mem::zeroed() };
            let size = mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: `info` is valid for writes of `size` bytes.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    size,
                )
            };
            if n < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return None; // EAGAIN: nothing pending
            }
            if n as usize != size {
                return None;
            }
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
            // SAFETY: the signals are blocked in this thread, so raising them
            // only queues them for the signalfd.
            unsafe {
                libc::raise(libc::SIGHUP);
                libc::raise(libc::SIGTERM);
            }
            let mut got = vec![];
            for _ in 0..4 {
                if let Some(sig) = s.read() {
                    got.push(sig);
                }
            }
            got.sort_by_key(|s| *s as u8);
            assert_eq!(got, vec![Signal::Reload, Signal::Terminate]);
            // SAFETY: as above.
            unsafe { libc::raise(libc::SIGINT) };
            assert_eq!(s.read(), Some(Signal::Terminate));
            assert_eq!(s.read(), None);
        })
        .join()
        .unwrap();
    }
}
