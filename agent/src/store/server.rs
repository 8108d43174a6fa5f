//! A storage box's side of the store protocol (docs/store.md,
//! "Protocol"): the listener thread and one worker thread per client (IO).
//!
//! Disk and hashing never run on the daemon's event loop: the listener
//! blocks in `accept` on its own thread and each connection gets a worker
//! thread with fixed buffers (one frame reader, one frame to send, one
//! block), allocated once per connection, never per request. At most
//! [`MAX_STORE_CONNECTIONS`] workers run; a client beyond that is
//! answered `busy` and closed. A malformed frame, a frame out of place or
//! a disk error is answered with an Error and the connection closed;
//! the writer of an unfinished share is dropped with it, so nothing half
//! written is ever served.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::chunkstore::{ChunkStore, StoreError, Writer};
use super::proto::{
    self, emit_block_data_header, emit_checked, Answer, CheckEntry, CheckStatus, ErrorCode,
    FrameReader, Hashes, Request, StoreStat,
};
use super::tree::MAX_PROOF;
use crate::limits::{MAX_STORE_CONNECTIONS, SEGMENT_SIZE};
use crate::{debug, info, warn};

/// Stack of a worker thread: the chunk store's check and close use about
/// 22 KiB; buffers are on the heap.
const WORKER_STACK: usize = 128 * 1024;

/// How often expired leases are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// Counters shown by `cloudy status` (shared with the workers).
#[derive(Debug, Default)]
pub struct ServerStats {
    pub connections: AtomicUsize,
    pub refused_busy: AtomicUsize,
    pub errors: AtomicUsize,
    pub shares_stored: AtomicUsize,
    pub blocks_served: AtomicUsize,
}

/// The running server: its listener thread and what it shares.
pub struct Server {
    stop: Arc<AtomicBool>,
    pub stats: Arc<ServerStats>,
    pub store: ChunkStore,
    port: u16,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Server {
    /// Listen on `port` of the overlay device `device` and serve `store`.
    pub fn start(store: ChunkStore, device: &str, port: u16) -> Result<Server, String> {
        let listener = super::net::listen(device, port)
            .map_err(|e| format!("store: cannot listen on port {port} of {device}: {e}"))?;
        // Port 0 (tests): the one the kernel chose.
        let port = listener.local_addr().map_or(port, |a| a.port());
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ServerStats::default());
        let thread = {
            let (stop, stats, store) = (stop.clone(), stats.clone(), store.clone());
            std::thread::Builder::new()
                .name("store-listen".into())
                .stack_size(WORKER_STACK)
                .spawn(move || accept_loop(listener, store, stats, stop))
                .map_err(|e| format!("store: cannot start its thread: {e}"))?
        };
        info!("store: serving on port {port} of {device}");
        Ok(Server {
            stop,
            stats,
            store,
            port,
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stop accepting; connections in progress end by themselves (their
    /// unfinished shares are dropped).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept: a connection to ourselves on loopback would
        // not pass the device binding, so the listener polls instead.
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn accept_loop(
    listener: TcpListener,
    store: ChunkStore,
    stats: Arc<ServerStats>,
    stop: Arc<AtomicBool>,
) {
    // Non-blocking accept after a poll of at most 200 ms, so `stop` is
    // seen and a connection is taken at once.
    if let Err(e) = listener.set_nonblocking(true) {
        warn!("store: listener: {e}");
        return;
    }
    let active = Arc::new(AtomicUsize::new(0));
    // Expired leases: at start, then hourly, on this thread (never the
    // event loop's).
    let mut next_sweep = std::time::Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if std::time::Instant::now() >= next_sweep {
            next_sweep = std::time::Instant::now() + SWEEP_INTERVAL;
            match store.sweep(unix_now()) {
                Ok(r) if r.files > 0 => info!(
                    "store: {} expired files removed ({} shares, {} bytes)",
                    r.files, r.shares, r.bytes
                ),
                Ok(_) => {}
                Err(e) => warn!("store: sweeping expired leases: {e}"),
            }
        }
        {
            use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
            use std::os::fd::AsFd;
            let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
            if !matches!(poll(&mut fds, PollTimeout::from(200u16)), Ok(n) if n > 0) {
                continue;
            }
        }
        let (stream, from) = match listener.accept() {
            Ok(x) => x,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                debug!("store: accept: {e}");
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        stats.connections.fetch_add(1, Ordering::Relaxed);
        if stream.set_nonblocking(false).is_err()
            || stream
                .set_read_timeout(Some(super::net::IO_TIMEOUT))
                .is_err()
            || stream
                .set_write_timeout(Some(super::net::IO_TIMEOUT))
                .is_err()
        {
            continue;
        }
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_STORE_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            stats.refused_busy.fetch_add(1, Ordering::Relaxed);
            let mut s = stream;
            let mut buf = [0u8; 64];
            if let Ok(n) = (Answer::Error {
                code: ErrorCode::Busy,
                text: "every store connection is taken; try again",
            })
            .emit(&mut buf)
            {
                let _ = s.write_all(&buf[..n]);
            }
            continue;
        }
        let (store, stats2, active2) = (store.clone(), stats.clone(), active.clone());
        let spawned = std::thread::Builder::new()
            .name("store-worker".into())
            .stack_size(WORKER_STACK)
            .spawn(move || {
                let mut w = Worker::new(store, stats2);
                w.serve(stream);
                active2.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            active.fetch_sub(1, Ordering::SeqCst);
            warn!("store: cannot start a worker for {from}: {e}");
        }
    }
}

/// One connection's state and buffers.
struct Worker {
    store: ChunkStore,
    stats: Arc<ServerStats>,
    reader: FrameReader,
    out: Box<[u8]>,
    proof: Box<[[u8; 32]; MAX_PROOF]>,
    writer: Option<Writer>,
}

/// Why a connection ends: the error to send, if any.
struct End(Option<(ErrorCode, String)>);

impl From<StoreError> for End {
    fn from(e: StoreError) -> End {
        End(Some((ErrorCode::from_u8(e.code()), e.to_string())))
    }
}

fn malformed(what: impl ToString) -> End {
    End(Some((ErrorCode::Malformed, what.to_string())))
}

impl Worker {
    fn new(store: ChunkStore, stats: Arc<ServerStats>) -> Worker {
        Worker {
            store,
            stats,
            reader: FrameReader::new(),
            out: vec![0u8; proto::MAX_FRAME_BYTES].into_boxed_slice(),
            proof: Box::new([[0u8; 32]; MAX_PROOF]),
            writer: None,
        }
    }

    fn serve(&mut self, mut stream: TcpStream) {
        let end = self.serve_frames(&mut stream);
        self.writer = None;
        if let End(Some((code, text))) = end {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            debug!("store: closing a connection: {code}: {text}");
            let text: String = text.chars().take(proto::MAX_ERROR_TEXT / 4).collect();
            if let Ok(n) = (Answer::Error { code, text: &text }).emit(&mut self.out) {
                let _ = stream.write_all(&self.out[..n]);
            }
        }
    }

    fn serve_frames(&mut self, stream: &mut TcpStream) -> End {
        loop {
            while !self.reader.ready() {
                let spare = self.reader.spare_mut();
                match stream.read(spare) {
                    Ok(0) => return End(None),
                    Ok(n) => self.reader.filled(n),
                    Err(_) => return End(None),
                }
            }
            let (kind, body) = match self.reader.next_frame() {
                Some(Ok(f)) => f,
                Some(Err(e)) => return malformed(e),
                None => continue,
            };
            let request = match Request::parse(kind, body) {
                Ok(r) => r,
                Err(e) => return malformed(e),
            };
            // Answers borrow `self.out`; the request borrows the reader.
            let answer_len = match handle(
                &self.store,
                &self.stats,
                &mut self.writer,
                &mut self.out,
                &mut self.proof,
                request,
            ) {
                Ok(n) => n,
                Err(end) => return end,
            };
            if answer_len > 0 && stream.write_all(&self.out[..answer_len]).is_err() {
                return End(None);
            }
        }
    }
}

/// Do what `request` asks; returns the length of the answer written to
/// `out` (0: none).
fn handle(
    store: &ChunkStore,
    stats: &ServerStats,
    writer: &mut Option<Writer>,
    out: &mut [u8],
    proof: &mut [[u8; 32]; MAX_PROOF],
    request: Request<'_>,
) -> Result<usize, End> {
    let emit = |a: Answer<'_>, out: &mut [u8]| a.emit(out).map_err(malformed);
    match request {
        Request::Allocate { si, share, params } => {
            if writer.is_some() {
                return Err(malformed("Allocate while a share is being written"));
            }
            let p = super::share::Params::new(params.k(), params.n(), params.size());
            *writer = Some(store.allocate(si, share, p)?);
            emit(Answer::Allocated, out)
        }
        Request::Block { segment, data } => {
            let w = writer
                .as_mut()
                .ok_or_else(|| malformed("Block without Allocate"))?;
            w.write_block(segment, data)?;
            Ok(0)
        }
        Request::Close { roots } => {
            let w = writer
                .take()
                .ok_or_else(|| malformed("Close without Allocate"))?;
            let roots: heapless::Vec<[u8; 32], { crate::limits::MAX_SHARES }> =
                roots.iter().copied().collect();
            w.close(&roots, unix_now())?;
            stats.shares_stored.fetch_add(1, Ordering::Relaxed);
            emit(Answer::Stored, out)
        }
        Request::Abort => {
            *writer = None;
            Ok(0)
        }
        Request::Query { si } => {
            let h = store.holding(si)?;
            let shares: heapless::Vec<u8, { crate::limits::MAX_SHARES }> =
                h.shares.iter().collect();
            let head = h.head();
            let (header, roots) = match head.split_first_chunk::<{ proto::SHARE_HEADER_LEN }>() {
                Some((header, roots)) if !shares.is_empty() => {
                    (Some(header), Hashes::new(roots).unwrap_or_default())
                }
                _ => (None, Hashes::default()),
            };
            let shares: &[u8] = if header.is_some() { &shares } else { &[] };
            emit(
                Answer::Holding {
                    shares,
                    header,
                    roots,
                },
                out,
            )
        }
        Request::Read { si, share, segment } => {
            // The block goes straight behind the frame header in `out`.
            let reader = store.open_share(si, share)?;
            let block_len = reader
                .header()
                .block_len(segment)
                .ok_or_else(|| End::from(StoreError::Malformed("no such segment")))?;
            let segments = reader.header().segments();
            let proof_len = crate::store::tree::proof_len(u64::from(segment), u64::from(segments))
                .map_err(malformed)?;
            let head = proto::BLOCK_DATA_HEADER_BASE + proof_len * 32;
            let (_, data) = out
                .split_at_mut_checked(head)
                .ok_or_else(|| malformed("frame"))?;
            let got = reader.read_block(segment, data, proof)?;
            debug_assert!(got.len == block_len && got.proof_len == proof_len);
            let proof_bytes: &[u8] = proof[..got.proof_len].as_flattened();
            let h = emit_block_data_header(
                out,
                segment,
                Hashes::new(proof_bytes).unwrap_or_default(),
                got.len,
            )
            .map_err(malformed)?;
            stats.blocks_served.fetch_add(1, Ordering::Relaxed);
            Ok(h + got.len)
        }
        Request::Check { si, renew } => {
            let report = store.check(si, renew, unix_now())?;
            let entries: heapless::Vec<CheckEntry, { crate::limits::MAX_SHARES }> = report
                .shares
                .iter()
                .map(|(share, status)| {
                    let (code, bad_segment) = status.code();
                    CheckEntry {
                        share: *share,
                        status: CheckStatus::from_u8(code),
                        bad_segment,
                    }
                })
                .collect();
            emit_checked(out, &entries).map_err(malformed)
        }
        Request::Stat => {
            let s = store.stat();
            emit(
                Answer::StoreStat(StoreStat {
                    used: s.used,
                    quota: s.quota,
                    shares: s.shares,
                    files: s.files,
                }),
                out,
            )
        }
    }
}

// A block of a 1-of-N segment and its header fit the frame buffer.
const _: () = assert!(SEGMENT_SIZE + 64 + MAX_PROOF * 32 <= proto::MAX_FRAME_BYTES);
