//! The daemon's control socket, and the client call the commands use.
//!
//! [`ControlServer`] listens on a Unix stream socket (mode 0600: root
//! only) and serves framed [`Request`]s with the runtime's handler. It
//! never blocks: every fd is nonblocking and close-on-exec, and the
//! runtime polls [`ControlServer::fds`] for reading and
//! [`ControlServer::fds_writable`] for writing, then calls
//! [`ControlServer::handle_ready`] when one is ready, and both
//! `handle_ready` and [`ControlServer::handle_timeout`] when
//! [`ControlServer::poll_at`] is due (requests left over by the per-call
//! budget make it due at once). Calling `handle_ready` on every wakeup is
//! also fine: it costs a few failing syscalls when nothing is ready.
//!
//! Bounds: at most [`MAX_CONSOLE_CLIENTS`] clients hold a slot; per
//! client one frame decoder ([`MAX_FRAME_BYTES`]) and an output buffer of
//! at most [`MAX_CLIENT_OUTPUT`] bytes; at most [`REQUESTS_PER_CALL`]
//! requests per client and [`ACCEPTS_PER_CALL`] accepts per call. A
//! client is closed after a malformed or oversized frame (after an
//! [`Response::Error`] telling why), on end of file once answered, and at
//! its deadline: [`CONSOLE_REQUEST_TIMEOUT`] after it was accepted or its
//! last request was complete (told why if it had nothing left to read).
//! So clients trickling a byte now and then hold a slot for that long at
//! most, whatever they do.
//!
//! When every slot is taken, a new connection is served once, without a
//! slot: it waits at most [`CONSOLE_BUSY_GRACE`] (among at most
//! [`MAX_CONSOLE_WAITING`]) for its request, which is answered (garbage
//! gets its error), else it is told [`Response::Busy`]; then it is
//! closed. `cloudy` writes its request right after connecting, so it is
//! answered, while clients trickling bytes can only make it retry. When
//! even the waiting places are taken, what a new connection has already
//! sent is answered at once, else it is told busy at once.
//!
//! Binding: the socket is bound under a temporary name, chmod'ed 0600 and
//! renamed over the final path, so the final path never has looser
//! permissions (connecting needs write permission on the socket file). An existing socket file is replaced only if nothing
//! answers on it; a live one means another daemon runs there. On drop the
//! file is removed if it is still ours (same inode).

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};

use super::proto::{encode_frame, FrameDecoder, FrameError, Request, Response, MAX_FRAME_BYTES};
use crate::limits::{
    CONSOLE_BUSY_GRACE, CONSOLE_REQUEST_TIMEOUT, MAX_CONSOLE_CLIENTS, MAX_CONSOLE_WAITING,
};
use crate::time::{Duration, Instant};

/// Output buffered for one client: two largest frames.
pub const MAX_CLIENT_OUTPUT: usize = 2 * MAX_FRAME_BYTES;
/// Requests answered per client per [`ControlServer::handle_ready`] call.
pub const REQUESTS_PER_CALL: usize = 8;
/// Connections accepted per [`ControlServer::handle_ready`] call.
pub const ACCEPTS_PER_CALL: usize = 8;
/// Reads per client per call (each at most `READ_CHUNK` bytes).
const READS_PER_CALL: usize = 8;
const READ_CHUNK: usize = 4096;

/// Text sent to a client closed at its deadline with nothing left to read.
pub const TIMED_OUT: &str = "no complete request in time";

struct Client {
    stream: UnixStream,
    decoder: FrameDecoder,
    /// Encoded responses not yet written; `len() <= MAX_CLIENT_OUTPUT`.
    out: Vec<u8>,
    /// Closed at this time: [`CONSOLE_REQUEST_TIMEOUT`] after it was
    /// accepted or its last request was complete.
    deadline: Instant,
    /// A request of it was answered.
    answered: bool,
    /// Came when every slot was taken: answered once, else told busy at
    /// its deadline ([`CONSOLE_BUSY_GRACE`]), and closed.
    one_shot: bool,
    /// Sent garbage: answer already queued, read nothing more.
    closing: bool,
    /// The client shut down its sending side.
    eof: bool,
    /// Read or write failed: drop without further ado.
    dead: bool,
}

impl Client {
    fn new(stream: UnixStream, now: Instant, one_shot: bool) -> Client {
        let wait = if one_shot {
            CONSOLE_BUSY_GRACE
        } else {
            CONSOLE_REQUEST_TIMEOUT
        };
        Client {
            stream,
            decoder: FrameDecoder::new(),
            out: Vec::new(),
            deadline: now + wait,
            answered: false,
            one_shot,
            closing: false,
            eof: false,
            dead: false,
        }
    }

    fn done(&self) -> bool {
        self.dead
            || (self.out.is_empty() && (self.closing || (self.eof && !self.decoder.has_frame())))
    }

    fn queue(&mut self, response: &Response) {
        let frame = encode_frame(response)
            .or_else(|_| encode_frame(&Response::error("response too large")))
            .unwrap_or_default();
        // Callers checked that a largest frame fits; keep the bound anyway.
        if self.out.len() + frame.len() <= MAX_CLIENT_OUTPUT {
            self.out.extend_from_slice(&frame);
        } else {
            self.dead = true;
        }
    }

    /// Answers complete requests while output room lasts.
    fn process(
        &mut self,
        now: Instant,
        handler: &mut dyn FnMut(Request) -> Response,
        budget: &mut usize,
    ) {
        while *budget > 0 && !self.closing && self.out.len() + MAX_FRAME_BYTES <= MAX_CLIENT_OUTPUT
        {
            match self.decoder.next_message::<Request>() {
                Ok(None) => return,
                Ok(Some(request)) => {
                    *budget -= 1;
                    self.deadline = now + CONSOLE_REQUEST_TIMEOUT;
                    self.answered = true;
                    let response = handler(request);
                    self.queue(&response);
                    // Closed once the answer is out.
                    self.closing |= self.one_shot;
                }
                Err(e) => {
                    let message = match e {
                        FrameError::Oversized(_) => e.to_string(),
                        _ => format!("bad request: {e}"),
                    };
                    self.queue(&Response::error(&message));
                    self.closing = true;
                }
            }
        }
    }

    fn flush(&mut self) {
        while !self.out.is_empty() && !self.dead {
            match send_nosignal(self.stream.as_raw_fd(), &self.out) {
                Ok(0) => self.dead = true,
                Ok(n) => {
                    self.out.drain(..n.min(self.out.len()));
                }
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => continue,
                Err(_) => self.dead = true,
            }
        }
    }

    /// Reads, answers at most `budget` requests, writes.
    fn service(
        &mut self,
        now: Instant,
        handler: &mut dyn FnMut(Request) -> Response,
        buf: &mut [u8],
        mut budget: usize,
    ) {
        for _ in 0..READS_PER_CALL {
            self.process(now, handler, &mut budget);
            self.flush();
            if self.dead || self.closing || self.eof || self.decoder.has_frame() {
                break;
            }
            let room = self.decoder.room().min(buf.len());
            let Some(chunk) = buf.get_mut(..room) else {
                break;
            };
            match self.stream.read(chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.decoder.push(chunk.get(..n).unwrap_or_default());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => self.dead = true,
            }
        }
        self.process(now, handler, &mut budget);
        self.flush();
    }

    /// At the deadline: a client waiting for nothing but its own request
    /// is told why it is closed (best effort: one nonblocking send).
    fn expire(&self) {
        if !self.dead && !self.closing && self.out.is_empty() {
            let why = if self.one_shot {
                Response::Busy
            } else {
                Response::error(TIMED_OUT)
            };
            if let Ok(frame) = encode_frame(&why) {
                let _ = send_nosignal(self.stream.as_raw_fd(), &frame);
            }
        }
    }

    /// Would read if data came: polling it otherwise could spin on data
    /// (or an end of file) that stays unread.
    fn wants_read(&self) -> bool {
        !self.dead && !self.closing && !self.eof && !self.decoder.has_frame()
    }

    /// Has complete requests it could answer right now.
    fn has_work(&self) -> bool {
        !self.dead
            && !self.closing
            && self.decoder.has_frame()
            && self.out.len() + MAX_FRAME_BYTES <= MAX_CLIENT_OUTPUT
    }
}

/// `send(2)` with `MSG_NOSIGNAL`: a vanished client gives `EPIPE`, not a
/// `SIGPIPE` that would kill the daemon.
fn send_nosignal(fd: RawFd, bytes: &[u8]) -> Result<usize, Errno> {
    socket::send(fd, bytes, MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT)
}

/// The control socket of a running daemon.
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    /// (device, inode) of the socket file we created.
    identity: (u64, u64),
    /// At most `MAX_CONSOLE_CLIENTS`.
    clients: Vec<Client>,
    /// The `now` of the last call, for [`poll_at`](Self::poll_at).
    last_now: Instant,
    buf: Vec<u8>,
}

impl fmt::Debug for ControlServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlServer")
            .field("path", &self.path)
            .field("clients", &self.clients.len())
            .finish()
    }
}

/// What is at a socket path.
enum Probe {
    Nothing,
    Stale,
    Live,
}

fn probe(path: &Path) -> io::Result<Probe> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Probe::Nothing),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    match connect_nonblocking(path) {
        Ok(_) | Err(Errno::EAGAIN) => Ok(Probe::Live),
        Err(Errno::ECONNREFUSED) => Ok(Probe::Stale),
        Err(Errno::ENOENT) => Ok(Probe::Nothing),
        Err(e) => Err(io::Error::from(e)),
    }
}

fn connect_nonblocking(path: &Path) -> Result<OwnedFd, Errno> {
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
    socket::connect(fd.as_raw_fd(), &addr)?;
    Ok(fd)
}

fn with_context(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {}", describe(&e)))
}

/// An io error as its plain system message ("No such file or directory"),
/// without Rust's "(os error N)" suffix.
pub fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

impl ControlServer {
    /// Listens on `path`, replacing a stale socket file but refusing when
    /// a daemon answers there. The errors name the path.
    pub fn bind(path: &Path) -> io::Result<ControlServer> {
        match probe(path).map_err(|e| with_context(e, format!("cannot use {}", path.display())))? {
            Probe::Live => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("another cloudy daemon is running on {}", path.display()),
                ))
            }
            Probe::Stale | Probe::Nothing => {}
        }
        let mut tmp = OsString::from(path.as_os_str());
        tmp.push(format!(".{}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        if std::fs::symlink_metadata(&tmp).is_ok_and(|m| m.file_type().is_socket()) {
            let _ = std::fs::remove_file(&tmp);
        }
        let listener = UnixListener::bind(&tmp)
            .map_err(|e| with_context(e, format!("cannot listen on {}", path.display())))?;
        let setup = || -> io::Result<(u64, u64)> {
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
            listener.set_nonblocking(true)?;
            std::fs::rename(&tmp, path)?;
            let meta = std::fs::symlink_metadata(path)?;
            Ok((meta.dev(), meta.ino()))
        };
        let identity = match setup() {
            Ok(id) => id,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(with_context(
                    e,
                    format!("cannot listen on {}", path.display()),
                ));
            }
        };
        Ok(ControlServer {
            listener,
            path: path.to_path_buf(),
            identity,
            clients: Vec::with_capacity(MAX_CONSOLE_CLIENTS),
            last_now: Instant::ZERO,
            buf: vec![0; READ_CHUNK],
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Connected clients.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// Fds to poll for reading: the listener, then every client that
    /// would read now (not one that is closing, at end of file, or has a
    /// request queued). Recompute before each poll.
    pub fn fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        core::iter::once(self.listener.as_raw_fd()).chain(
            self.clients
                .iter()
                .filter(|c| c.wants_read())
                .map(|c| c.stream.as_raw_fd()),
        )
    }

    /// Client fds with output waiting: poll these for writing too.
    pub fn fds_writable(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.clients
            .iter()
            .filter(|c| !c.out.is_empty())
            .map(|c| c.stream.as_raw_fd())
    }

    /// When [`handle_timeout`](Self::handle_timeout) has to run next (the
    /// earliest client deadline); a time not after the last call's `now` if
    /// requests are already waiting for [`handle_ready`](Self::handle_ready).
    pub fn poll_at(&self) -> Option<Instant> {
        if self.clients.iter().any(Client::has_work) {
            return Some(self.last_now);
        }
        self.clients.iter().map(|c| c.deadline).min()
    }

    /// Accepts pending connections, reads what clients sent, answers each
    /// complete request with `handler`, and writes what it can. Never
    /// blocks.
    pub fn handle_ready(&mut self, now: Instant, handler: &mut dyn FnMut(Request) -> Response) {
        self.last_now = now;
        for _ in 0..ACCEPTS_PER_CALL {
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream, now, handler),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // EMFILE, ECONNABORTED...: the connection waits in the backlog.
                    crate::debug!("accept on {}: {}", self.path.display(), describe(&e));
                    break;
                }
            }
        }
        let buf = &mut self.buf;
        for client in &mut self.clients {
            client.service(now, handler, buf, REQUESTS_PER_CALL);
        }
        self.clients.retain(|c| !c.done());
    }

    fn admit(
        &mut self,
        stream: UnixStream,
        now: Instant,
        handler: &mut dyn FnMut(Request) -> Response,
    ) {
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        let waiting = self.clients.iter().filter(|c| c.one_shot).count();
        let held = self.clients.len() - waiting;
        if held < MAX_CONSOLE_CLIENTS || waiting < MAX_CONSOLE_WAITING {
            let one_shot = held >= MAX_CONSOLE_CLIENTS;
            self.clients.push(Client::new(stream, now, one_shot));
            return;
        }
        // No place to wait either: serve what is already here, at once. A
        // fresh socket's send buffer is empty, so an answer (at most
        // MAX_FRAME_BYTES) fits; if not, the client sees a cut frame.
        let mut client = Client::new(stream, now, true);
        client.service(now, handler, &mut self.buf, 1);
        if !client.answered && !client.closing {
            client.queue(&Response::Busy);
            client.flush();
        }
        let _ = client.stream.shutdown(std::net::Shutdown::Both);
    }

    /// Closes clients at their deadline: [`CONSOLE_REQUEST_TIMEOUT`], or
    /// [`CONSOLE_BUSY_GRACE`] for those that came when all slots were taken.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        self.clients.retain(|c| {
            let keep = now < c.deadline;
            if !keep {
                c.expire();
            }
            keep
        });
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| (m.dev(), m.ino()) == self.identity);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Why [`call`] failed.
#[derive(Debug)]
pub enum CallError {
    /// No daemon at the path, or no permission to reach it.
    Connect(PathBuf, io::Error),
    /// The connection broke while talking.
    Io(io::Error),
    /// No complete answer within the timeout.
    Timeout,
    /// The daemon closed the connection without answering.
    Closed,
    /// The answer was not a valid frame.
    Protocol(FrameError),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Connect(path, e) => {
                let hint = match e.raw_os_error().map(Errno::from_raw) {
                    Some(Errno::EACCES | Errno::EPERM) => " (are you root?)",
                    Some(Errno::ENOENT | Errno::ECONNREFUSED) => " (is it running?)",
                    _ => "",
                };
                write!(
                    f,
                    "cannot reach the daemon at {}: {}{hint}",
                    path.display(),
                    describe(e)
                )
            }
            CallError::Io(e) => write!(f, "lost the connection to the daemon: {}", describe(e)),
            CallError::Timeout => f.write_str("the daemon did not answer in time"),
            CallError::Closed => f.write_str("the daemon closed the connection without answering"),
            CallError::Protocol(e) => write!(f, "bad answer from the daemon: {e}"),
        }
    }
}

impl std::error::Error for CallError {}

/// Connects to the daemon at `path`, sends `request` and waits for the
/// response, all within `timeout`. Blocking; for the commands, not the
/// daemon.
pub fn call(path: &Path, request: &Request, timeout: Duration) -> Result<Response, CallError> {
    let start = std::time::Instant::now();
    let remaining = || {
        timeout
            .checked_sub(start.elapsed())
            .filter(|d| !d.is_zero())
    };
    // A Unix connect fails with EAGAIN while the listen backlog is full;
    // retry until the deadline.
    let fd = loop {
        match connect_nonblocking(path) {
            Ok(fd) => break fd,
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => match remaining() {
                Some(left) => std::thread::sleep(left.min(Duration::from_millis(20))),
                None => return Err(CallError::Timeout),
            },
            Err(e) => return Err(CallError::Connect(path.to_path_buf(), io::Error::from(e))),
        }
    };
    let mut stream = UnixStream::from(fd);
    stream.set_nonblocking(false).map_err(CallError::Io)?;
    let frame = encode_frame(request).map_err(CallError::Protocol)?;
    let mut written = 0;
    // Set when the daemon closed before taking the whole request: it may
    // have answered first (busy, or an error), so its answer is read.
    let mut send_error = None;
    while written < frame.len() {
        let left = remaining().ok_or(CallError::Timeout)?;
        stream
            .set_write_timeout(Some(left))
            .map_err(CallError::Io)?;
        match socket::send(
            stream.as_raw_fd(),
            frame.get(written..).unwrap_or_default(),
            MsgFlags::MSG_NOSIGNAL,
        ) {
            Ok(n) => written += n,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => return Err(CallError::Timeout),
            Err(e @ (Errno::EPIPE | Errno::ECONNRESET)) => {
                send_error = Some(e);
                break;
            }
            Err(e) => return Err(CallError::Io(io::Error::from(e))),
        }
    }
    let lost = |e: io::Error| CallError::Io(send_error.map_or(e, io::Error::from));
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; READ_CHUNK];
    // Each pass reads at least one byte or ends; a frame is at most
    // MAX_FRAME_BYTES, and the deadline bounds the waiting.
    loop {
        if let Some(response) = decoder
            .next_message::<Response>()
            .map_err(CallError::Protocol)?
        {
            return Ok(response);
        }
        let left = remaining().ok_or(CallError::Timeout)?;
        stream.set_read_timeout(Some(left)).map_err(CallError::Io)?;
        match stream.read(&mut buf) {
            Ok(0) if send_error.is_none() => return Err(CallError::Closed),
            Ok(0) => return Err(lost(io::Error::from(io::ErrorKind::BrokenPipe))),
            Ok(n) => {
                decoder.push(buf.get(..n).unwrap_or_default());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(CallError::Timeout)
            }
            // The daemon may reset after answering (it closed with our bytes
            // unread); what was received before is still read above.
            Err(e) => return Err(lost(e)),
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::console::proto::FrameError;
    use crate::limits::MAX_CONSOLE_MESSAGE;
    use std::io::Write;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("cloudy-console-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        fn sock(&self) -> PathBuf {
            self.0.join("s.sock")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn answer(req: Request) -> Response {
        match req {
            Request::PublicKey => Response::PublicKey([9; 32]),
            Request::Peers => Response::Peers(vec![]),
            Request::Status => Response::error("no status in tests"),
            Request::Publish { .. } | Request::Unpublish { .. } | Request::Search { .. } => {
                Response::error("no discovery in tests")
            }
            Request::Revoke { .. } | Request::Invite { .. } => {
                Response::error("no authority in tests")
            }
        }
    }

    fn connect(path: &Path) -> UnixStream {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    /// Reads exactly one response frame (blocking, with the stream's timeout).
    fn read_response(s: &mut UnixStream) -> Response {
        let mut head = [0u8; 4];
        s.read_exact(&mut head).unwrap();
        let len = u32::from_be_bytes(head) as usize;
        assert!(len <= crate::limits::MAX_CONSOLE_MESSAGE);
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).unwrap();
        crate::console::proto::decode_body(&body).unwrap()
    }

    /// True if the server closed the stream (EOF or reset).
    fn closed(s: &mut UnixStream) -> bool {
        let mut b = [0u8; 16];
        matches!(s.read(&mut b), Ok(0) | Err(_))
    }

    #[test]
    fn round_trip_and_cleanup() {
        let dir = TempDir::new();
        let path = dir.sock();
        let mut server = ControlServer::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(server.fds().count(), 1);

        let mut c = connect(&path);
        // Two pipelined requests, the second one split.
        c.write_all(&encode_frame(&Request::PublicKey).unwrap())
            .unwrap();
        c.write_all(&[0, 0]).unwrap();
        server.handle_ready(Instant::ZERO, &mut answer);
        assert_eq!(server.clients(), 1);
        assert_eq!(server.fds().count(), 2);
        assert_eq!(read_response(&mut c), Response::PublicKey([9; 32]));
        c.write_all(&[0, 1, 1]).unwrap();
        server.handle_ready(Instant::ZERO, &mut answer);
        assert_eq!(read_response(&mut c), Response::Peers(vec![]));
        assert_eq!(server.fds_writable().count(), 0);

        // End of file: closed after answering.
        c.write_all(&encode_frame(&Request::Status).unwrap())
            .unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        server.handle_ready(Instant::ZERO, &mut answer);
        assert_eq!(
            read_response(&mut c),
            Response::Error("no status in tests".into())
        );
        assert!(closed(&mut c));
        assert_eq!(server.clients(), 0);

        drop(server);
        assert!(!path.exists(), "socket file left behind");
    }

    #[test]
    fn blocking_call_from_a_thread() {
        let dir = TempDir::new();
        let path = dir.sock();
        let mut server = ControlServer::bind(&path).unwrap();
        let p = path.clone();
        let t = std::thread::spawn(move || call(&p, &Request::PublicKey, Duration::from_secs(5)));
        let start = std::time::Instant::now();
        while !t.is_finished() && start.elapsed() < Duration::from_secs(5) {
            server.handle_ready(Instant::ZERO, &mut answer);
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(t.join().unwrap().unwrap(), Response::PublicKey([9; 32]));
    }

    #[test]
    fn call_without_daemon() {
        let dir = TempDir::new();
        let err = call(&dir.sock(), &Request::Status, Duration::from_secs(1)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("cannot reach the daemon at "), "{msg}");
        assert!(
            msg.ends_with(": No such file or directory (is it running?)"),
            "{msg}"
        );
    }

    #[test]
    fn garbage_gets_error_and_close() {
        let dir = TempDir::new();
        let path = dir.sock();
        let mut server = ControlServer::bind(&path).unwrap();
        let mut c = connect(&path);
        c.write_all(&[0, 0, 0, 2, 0x77, 0x01]).unwrap();
        server.handle_ready(Instant::ZERO, &mut |_| panic!("handler called for garbage"));
        match read_response(&mut c) {
            Response::Error(m) => assert!(m.starts_with("bad request"), "{m}"),
            r => panic!("unexpected {r:?}"),
        }
        assert!(closed(&mut c));
        assert_eq!(server.clients(), 0);
    }

    #[test]
    fn oversized_frame_rejected() {
        let dir = TempDir::new();
        let path = dir.sock();
        let mut server = ControlServer::bind(&path).unwrap();
        let mut c = connect(&path);
        c.write_all(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0]).unwrap();
        server.handle_ready(Instant::ZERO, &mut answer);
        let want = FrameError::Oversized(0x7fff_ffff).to_string();
        assert_eq!(read_response(&mut c), Response::Error(want));
        assert!(closed(&mut c));
        assert_eq!(server.clients(), 0);
    }

    /// A server with every slot taken by a client that sent nothing.
    fn full_server(path: &Path, now: Instant) -> (ControlServer, Vec<UnixStream>) {
        let mut server = ControlServer::bind(path).unwrap();
        let held: Vec<UnixStream> = (0..MAX_CONSOLE_CLIENTS).map(|_| connect(path)).collect();
        server.handle_ready(now, &mut answer);
        assert_eq!(server.clients(), MAX_CONSOLE_CLIENTS);
        (server, held)
    }

    #[test]
    fn full_server_answers_a_complete_request_once() {
        let dir = TempDir::new();
        let path = dir.sock();
        let (mut server, mut held) = full_server(&path, Instant::ZERO);
        // What `cloudy` does: connect and write the request at once.
        let mut extra = connect(&path);
        extra
            .write_all(&encode_frame(&Request::PublicKey).unwrap())
            .unwrap();
        server.handle_ready(Instant::ZERO, &mut answer);
        assert_eq!(read_response(&mut extra), Response::PublicKey([9; 32]));
        assert!(closed(&mut extra));
        assert_eq!(server.clients(), MAX_CONSOLE_CLIENTS);
        // The slot holders are still served.
        for c in &mut held {
            c.write_all(&encode_frame(&Request::PublicKey).unwrap())
                .unwrap();
        }
        server.handle_ready(Instant::ZERO, &mut answer);
        for c in &mut held {
            assert_eq!(read_response(c), Response::PublicKey([9; 32]));
        }
    }

    #[test]
    fn full_server_waits_briefly_then_says_busy() {
        let dir = TempDir::new();
        let path = dir.sock();
        let t0 = Instant::from_secs(100);
        let (mut server, _held) = full_server(&path, t0);
        let mut silent = connect(&path);
        let mut partial = connect(&path);
        partial.write_all(&[0, 0, 0]).unwrap();
        let mut late = connect(&path);
        server.handle_ready(t0, &mut |_| panic!("nothing to answer yet"));
        assert_eq!(server.clients(), MAX_CONSOLE_CLIENTS + 3);
        assert_eq!(server.poll_at(), Some(t0 + CONSOLE_BUSY_GRACE));
        // A request arriving within the grace is answered, and closed.
        let t1 = t0 + CONSOLE_BUSY_GRACE - Duration::from_millis(1);
        late.write_all(&encode_frame(&Request::PublicKey).unwrap())
            .unwrap();
        server.handle_ready(t1, &mut answer);
        server.handle_timeout(t1);
        assert_eq!(read_response(&mut late), Response::PublicKey([9; 32]));
        assert!(closed(&mut late));
        assert_eq!(server.clients(), MAX_CONSOLE_CLIENTS + 2);
        // The others are told busy at the grace's end; the slots stay.
        server.handle_timeout(t0 + CONSOLE_BUSY_GRACE);
        for c in [&mut silent, &mut partial] {
            assert_eq!(read_response(c), Response::Busy);
            assert!(closed(c));
        }
        assert_eq!(server.clients(), MAX_CONSOLE_CLIENTS);
        assert_eq!(server.poll_at(), Some(t0 + CONSOLE_REQUEST_TIMEOUT));
    }

    #[test]
    fn no_place_to_wait_answers_at_once_or_says_busy() {
        let dir = TempDir::new();
        let path = dir.sock();
        let (mut server, _held) = full_server(&path, Instant::ZERO);
        let _waiting: Vec<UnixStream> = (0..MAX_CONSOLE_WAITING).map(|_| connect(&path)).collect();
        server.handle_ready(Instant::ZERO, &mut answer);
        assert_eq!(server.clients(), MAX_CONSOLE_CLIENTS + MAX_CONSOLE_WAITING);
        let mut ready = connect(&path);
        ready
            .write_all(&encode_frame(&Request::PublicKey).unwrap())
            .unwrap();
        let mut silent = connect(&path);
        server.handle_ready(Instant::ZERO, &mut answer);
        assert_eq!(read_response(&mut ready), Response::PublicKey([9; 32]));
        assert_eq!(read_response(&mut silent), Response::Busy);
        assert!(closed(&mut ready) && closed(&mut silent));
        assert_eq!(server.clients(), MAX_CONSOLE_CLIENTS + MAX_CONSOLE_WAITING);
    }

    #[test]
    fn full_server_rejects_garbage_and_oversize_clearly() {
        let dir = TempDir::new();
        let path = dir.sock();
        let (mut server, _held) = full_server(&path, Instant::ZERO);
        let mut garbage = connect(&path);
        garbage.write_all(&[0, 0, 0, 2, 0x77, 0x01]).unwrap();
        let mut huge = connect(&path);
        huge.write_all(&[0x7f, 0xff, 0xff, 0xff, 0, 0]).unwrap();
        server.handle_ready(Instant::ZERO, &mut |_| panic!("handler called"));
        match read_response(&mut garbage) {
            Response::Error(m) => assert!(m.starts_with("bad request"), "{m}"),
            r => panic!("unexpected {r:?}"),
        }
        let want = FrameError::Oversized(0x7fff_ffff).to_string();
        assert_eq!(read_response(&mut huge), Response::Error(want));
        assert!(closed(&mut garbage) && closed(&mut huge));
        assert_eq!(server.clients(), MAX_CONSOLE_CLIENTS);
    }

    /// The attack of issue 9: clients that trickle a byte now and then
    /// hold a slot only until their deadline, and are told why.
    #[test]
    fn trickling_clients_closed_at_deadline() {
        let dir = TempDir::new();
        let path = dir.sock();
        let t0 = Instant::from_secs(100);
        let (mut server, mut held) = full_server(&path, t0);
        assert_eq!(server.poll_at(), Some(t0 + CONSOLE_REQUEST_TIMEOUT));
        // Progress that never completes a request does not move it.
        let half = CONSOLE_REQUEST_TIMEOUT / 2;
        for (i, step) in [half, CONSOLE_REQUEST_TIMEOUT - Duration::from_millis(1)]
            .into_iter()
            .enumerate()
        {
            for c in &mut held {
                c.write_all(&[[0u8, 0][i]]).unwrap();
            }
            server.handle_ready(t0 + step, &mut |_| panic!("incomplete"));
            server.handle_timeout(t0 + step);
            assert_eq!(server.clients(), MAX_CONSOLE_CLIENTS);
            assert_eq!(server.poll_at(), Some(t0 + CONSOLE_REQUEST_TIMEOUT));
        }
        server.handle_timeout(t0 + CONSOLE_REQUEST_TIMEOUT);
        assert_eq!(server.clients(), 0);
        assert_eq!(server.poll_at(), None);
        for c in &mut held {
            assert_eq!(read_response(c), Response::Error(TIMED_OUT.into()));
            assert!(closed(c));
        }
    }

    #[test]
    fn each_request_moves_the_deadline() {
        let dir = TempDir::new();
        let path = dir.sock();
        let mut server = ControlServer::bind(&path).unwrap();
        let mut c = connect(&path);
        let t0 = Instant::from_secs(100);
        server.handle_ready(t0, &mut answer);
        let t1 = t0 + Duration::from_millis(1500);
        c.write_all(&encode_frame(&Request::PublicKey).unwrap())
            .unwrap();
        server.handle_ready(t1, &mut answer);
        assert_eq!(read_response(&mut c), Response::PublicKey([9; 32]));
        assert_eq!(server.poll_at(), Some(t1 + CONSOLE_REQUEST_TIMEOUT));
        server.handle_timeout(t0 + CONSOLE_REQUEST_TIMEOUT);
        assert_eq!(server.clients(), 1);
        server.handle_timeout(t1 + CONSOLE_REQUEST_TIMEOUT);
        assert_eq!(server.clients(), 0);
        assert_eq!(read_response(&mut c), Response::Error(TIMED_OUT.into()));
    }

    /// A client that does not read its answers is closed at the deadline
    /// too, without a word (its output is not even written).
    #[test]
    fn slow_reader_closed_at_deadline() {
        let dir = TempDir::new();
        let path = dir.sock();
        let mut server = ControlServer::bind(&path).unwrap();
        let mut c = connect(&path);
        let t0 = Instant::from_secs(100);
        let mut big = |_| Response::Error("x".repeat(MAX_CONSOLE_MESSAGE - 8));
        let one = encode_frame(&Request::Peers).unwrap();
        c.set_nonblocking(true).unwrap();
        // Enough answers to fill the socket buffers and the output buffer.
        let mut at = t0;
        for round in 0..64 {
            at = t0 + Duration::from_millis(round);
            let _ = c.write(&one.repeat(REQUESTS_PER_CALL));
            server.handle_ready(at, &mut big);
            if server.fds_writable().count() == 1 {
                break;
            }
        }
        assert_eq!(server.fds_writable().count(), 1, "output never backed up");
        assert_eq!(server.poll_at(), Some(at + CONSOLE_REQUEST_TIMEOUT));
        server.handle_timeout(at + CONSOLE_REQUEST_TIMEOUT - Duration::from_millis(1));
        assert_eq!(server.clients(), 1);
        server.handle_timeout(at + CONSOLE_REQUEST_TIMEOUT);
        assert_eq!(server.clients(), 0);
    }

    /// However the daemon's close and the client's send interleave, `call`
    /// reports the `Busy` the daemon wrote, never "Broken pipe".
    #[test]
    fn call_reads_busy_even_when_its_send_fails() {
        let dir = TempDir::new();
        let path = dir.sock();
        let listener = UnixListener::bind(&path).unwrap();
        const N: usize = 50;
        let busy = std::thread::spawn(move || {
            let frame = encode_frame(&Response::Busy).unwrap();
            for _ in 0..N {
                let (s, _) = listener.accept().unwrap();
                let _ = send_nosignal(s.as_raw_fd(), &frame);
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        });
        // A largest request makes the send likely to meet the close.
        let req = Request::Unpublish {
            instance: "x".repeat(MAX_CONSOLE_MESSAGE - 8),
        };
        for i in 0..N {
            let r = call(&path, &req, Duration::from_secs(5));
            assert!(matches!(r, Ok(Response::Busy)), "try {i}: {r:?}");
        }
        busy.join().unwrap();
    }

    #[test]
    fn pipelined_requests_beyond_budget() {
        let dir = TempDir::new();
        let path = dir.sock();
        let mut server = ControlServer::bind(&path).unwrap();
        let mut c = connect(&path);
        let n = REQUESTS_PER_CALL * 3 + 1;
        let one = encode_frame(&Request::PublicKey).unwrap();
        c.write_all(&one.repeat(n)).unwrap();
        let mut calls = 0;
        let mut rounds = 0;
        while calls < n && rounds < 100 {
            let now = Instant::from_secs(1);
            if rounds > 0 {
                // Work left over is due at once.
                assert!(server.poll_at().is_some_and(|t| t <= now));
            }
            server.handle_ready(now, &mut |r| {
                calls += 1;
                answer(r)
            });
            rounds += 1;
        }
        assert_eq!(calls, n);
        assert!(rounds > 1);
        for _ in 0..n {
            assert_eq!(read_response(&mut c), Response::PublicKey([9; 32]));
        }
    }

    #[test]
    fn stale_socket_replaced() {
        let dir = TempDir::new();
        let path = dir.sock();
        drop(UnixListener::bind(&path).unwrap()); // leaves the file, nobody listens
        assert!(path.exists());
        let server = ControlServer::bind(&path).unwrap();
        let _c = connect(&path);
        drop(server);
        assert!(!path.exists());
    }

    #[test]
    fn live_socket_refused() {
        let dir = TempDir::new();
        let path = dir.sock();
        let first = ControlServer::bind(&path).unwrap();
        let err = ControlServer::bind(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert_eq!(
            err.to_string(),
            format!("another cloudy daemon is running on {}", path.display())
        );
        drop(first);
        // The refused attempt did not remove the first one's socket before.
        assert!(!path.exists());
        let _again = ControlServer::bind(&path).unwrap();
    }

    #[test]
    fn non_socket_file_refused_and_kept() {
        let dir = TempDir::new();
        let path = dir.sock();
        std::fs::write(&path, b"precious").unwrap();
        let err = ControlServer::bind(&path).unwrap_err();
        assert!(
            err.to_string().contains("exists and is not a socket"),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    }

    #[test]
    fn replaced_socket_not_removed_on_drop() {
        let dir = TempDir::new();
        let path = dir.sock();
        let server = ControlServer::bind(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let other = UnixListener::bind(&path).unwrap();
        drop(server);
        assert!(path.exists(), "removed someone else's socket");
        drop(other);
    }
}
