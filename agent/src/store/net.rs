//! TCP sockets of the store, bound to the overlay device (IO).
//!
//! Membership is the store's access control (docs/store.md,
//! "Protocol"): a storage box's listener and a client's connections are
//! bound to the overlay device with `SO_BINDTODEVICE`, so a box only
//! accepts connections that came through the overlay (from members) and
//! a client only ever reaches members, whatever a LAN host announces or
//! routes. Listeners take IPv4 and IPv6 (one dual-stack socket).
//!
//! Every call is bounded in time: connects by their timeout, and the
//! streams returned carry read and write timeouts.

use std::ffi::OsString;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    self, setsockopt, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage,
};

/// Read and write timeout of a store connection: a member that stops
/// answering for this long is given up (the client moves to another).
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

fn to_io(e: nix::Error) -> io::Error {
    io::Error::from(e)
}

fn bound_socket(family: AddressFamily, device: &str) -> io::Result<OwnedFd> {
    let fd =
        socket::socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).map_err(to_io)?;
    setsockopt(&fd, sockopt::BindToDevice, &OsString::from(device))
        .map_err(|e| io::Error::other(format!("bind to the overlay device {device}: {e}")))?;
    Ok(fd)
}

/// A listener on `port` of every address, accepting only connections
/// that arrive through `device`.
pub fn listen(device: &str, port: u16) -> io::Result<TcpListener> {
    let fd = bound_socket(AddressFamily::Inet6, device)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(to_io)?;
    setsockopt(&fd, sockopt::Ipv6V6Only, &false).map_err(to_io)?;
    let any = SockaddrStorage::from(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)));
    socket::bind(fd.as_raw_fd(), &any).map_err(to_io)?;
    socket::listen(&fd, socket::Backlog::new(16).map_err(to_io)?).map_err(to_io)?;
    Ok(TcpListener::from(fd))
}

/// A connection to `to` through `device`, within `timeout`.
pub fn connect(device: &str, to: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let family = match to {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = bound_socket(family, device)?;
    let stream = TcpStream::from(fd);
    stream.set_nonblocking(true)?;
    match socket::connect(stream.as_raw_fd(), &SockaddrStorage::from(to)) {
        Ok(()) => {}
        Err(nix::Error::EINPROGRESS) => {
            let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLOUT)];
            let ready = poll(&mut fds, PollTimeout::from(ms)).map_err(to_io)?;
            if ready == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect to {to}: no answer in {timeout:?}"),
                ));
            }
            if let Some(e) = stream.take_error()? {
                return Err(e);
            }
        }
        Err(e) => return Err(to_io(e)),
    }
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

#[cfg(test)]
mod test {
    use super::*;
    use std::io::{Read, Write};

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn bound_listener_and_connection_talk_over_loopback() {
        if !is_root() {
            crate::testutil::skip(
                "store::net::test::bound_listener_and_connection_talk_over_loopback",
                "SO_BINDTODEVICE needs root",
            );
            return;
        }
        let l = listen("lo", 0).expect("listen on lo");
        let port = l.local_addr().unwrap().port();
        // One dual-stack listener: an IPv4 and an IPv6 client.
        let t = std::thread::spawn(move || {
            for _ in 0..2 {
                let (mut s, _) = l.accept().unwrap();
                let mut b = [0u8; 5];
                s.read_exact(&mut b).unwrap();
                s.write_all(&b).unwrap();
            }
        });
        for to in [
            SocketAddr::from(([127, 0, 0, 1], port)),
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
        ] {
            let mut c = connect("lo", to, Duration::from_secs(2)).expect("connect");
            c.write_all(b"hello").unwrap();
            let mut b = [0u8; 5];
            c.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"hello");
        }
        t.join().unwrap();
        // Nothing listens on this port: refused at once, not after the timeout.
        let e = connect("lo", SocketAddr::from(([127, 0, 0, 1], port)), IO_TIMEOUT).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
        assert!(connect(
            "nosuchdev0",
            SocketAddr::from(([127, 0, 0, 1], port)),
            IO_TIMEOUT
        )
        .is_err());
    }
}
