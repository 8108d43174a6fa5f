//! The chunk store of a storage box: share files on disk, written
//! atomically, counted against a quota, kept under leases (IO; runs on the
//! store's worker threads, never on the event loop).
//!
//! On disk (docs/store.md, "Share file"):
//!
//! ```text
//! <path>/lock                      held (flock) while a ChunkStore is open
//! <path>/shares/<SI hex>/<n>       share n of the file SI (share.rs layout)
//! <path>/shares/<SI hex>/lease     expiry u64 (Unix seconds) | CRC32C u32
//! <path>/incoming/<SI hex>.<n>.<t> a share being written (emptied at open)
//! <path>/incoming/<SI hex>.lease.<t>  a lease being written
//! ```
//!
//! A share is written to `incoming/`, its leaves hashed as its blocks
//! arrive and its upper tree levels built at close (a level is read back
//! in pieces of [`NODE_BUF`] nodes: memory does not grow with the file),
//! refused unless its root is the client's `R_<share>`, fsynced, renamed
//! into place, and the directory fsynced: `kill -9` at any point leaves
//! either no share or a complete one. The lease is extended before the
//! share is renamed into place, so every share in place has a lease.
//!
//! Invariants (one `ChunkStore`, cloned to up to `MAX_STORE_CONNECTIONS`
//! worker threads; the accounting state sits behind one mutex, and file
//! IO happens outside it except the one `stat` in [`ChunkStore::allocate`]):
//! - `used` is the bytes of the share files in place, `reserved` the full
//!   size of every share being written; an allocation needs
//!   `used + reserved + size ≤ quota`, and its reservation is released when
//!   its [`Writer`] closes or is dropped.
//! - Two writers of one (SI, share) never both succeed: a writer is
//!   registered under the mutex from `allocate` until after its file is in
//!   place (or removed), and `allocate` looks for both a registered writer
//!   (`busy`) and a file in place (`exists`) under the mutex.
//! - A share directory changes (lease written, share renamed in, directory
//!   removed) only by a thread holding that SI's directory lock; a sweep
//!   passes over an SI with a writer in flight or a lock held.
//! - A share whose header is broken is counted (its bytes are on the disk),
//!   logged at open, reported by `check`, never removed except by its
//!   lease expiring.
//! - Time is the caller's (Unix seconds): nothing here reads the clock.

use core::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::share::{
    crc32c, emit_roots, hash_pairs, leaf_hash, parse_roots, root_at, Hash, Params, RootBuilder,
    ShareError, ShareHeader, CRC_LEN, HASH_LEN, HEADER_LEN, MAX_HEAD_LEN, MAX_PROOF, SI_LEN,
};
use crate::limits::{MAX_SHARES, MAX_STORE_CONNECTIONS, SEGMENT_SIZE, STORE_LEASE};

/// A storage index.
pub type Si = [u8; SI_LEN];

/// Leaf hashes buffered by a writer, and read at once by `check` (4 KiB).
pub const LEAF_BUF: usize = 128;
/// Children read at once when a tree level is built or checked (8 KiB;
/// even, so that no pair straddles two pieces).
pub const NODE_BUF: usize = 256;
/// Shares being written at once (each connection writes one at a time).
pub const MAX_WRITERS: usize = 2 * MAX_STORE_CONNECTIONS;
/// SI directory locks held at once: one per thread at most (workers,
/// the sweep, a little slack); a thread finding the table full waits.
const MAX_SI_LOCKS: usize = MAX_WRITERS + MAX_STORE_CONNECTIONS + 2;
/// Bytes of a lease file.
pub const LEASE_LEN: usize = 12;
const LEASE_NAME: &str = "lease";
const LOCK_NAME: &str = "lock";

/// Why a store directory could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    Missing,
    NotDirectory,
    /// A file cannot be created in it.
    ReadOnly(io::ErrorKind),
    /// Another ChunkStore (this process or another) has it open.
    Locked,
    /// What failed, and how.
    Io(&'static str, io::ErrorKind),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Missing => write!(f, "store directory does not exist"),
            OpenError::NotDirectory => write!(f, "store path is not a directory"),
            OpenError::ReadOnly(k) => write!(f, "store directory is not writable ({k})"),
            OpenError::Locked => write!(f, "store directory is in use by another store"),
            OpenError::Io(what, k) => write!(f, "store directory: {what}: {k}"),
        }
    }
}

/// Why a store operation failed. [`StoreError::code`] is the protocol's
/// error code (docs/store.md, "Protocol").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// A request that cannot be right: block out of order or of the wrong
    /// length, close too early, wrong number of roots, no such segment.
    Malformed(&'static str),
    /// Parameters, SI or share number that make no valid share header.
    BadParams(ShareError),
    Quota,
    Exists,
    NoSuchShare,
    Disk(io::ErrorKind),
    /// A writer of this (SI, share) is in flight, or too many writers are.
    Busy,
    /// The share's tree root is not the client's `R_<share>`.
    BadRoot,
    /// A block failed its CRC32C or could not be read whole.
    Corrupt(u32),
    /// The share file's header is broken or names another share.
    CorruptHeader,
}

impl StoreError {
    /// The protocol's error code: 1 malformed, 2 quota, 3 exists, 4 no
    /// such share, 5 disk error, 6 busy, 7 bad root.
    pub fn code(&self) -> u8 {
        match self {
            StoreError::Malformed(_) | StoreError::BadParams(_) => 1,
            StoreError::Quota => 2,
            StoreError::Exists => 3,
            StoreError::NoSuchShare => 4,
            StoreError::Disk(_) | StoreError::Corrupt(_) | StoreError::CorruptHeader => 5,
            StoreError::Busy => 6,
            StoreError::BadRoot => 7,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Malformed(what) => write!(f, "malformed: {what}"),
            StoreError::BadParams(e) => write!(f, "bad parameters: {e}"),
            StoreError::Quota => write!(f, "quota exceeded"),
            StoreError::Exists => write!(f, "share exists"),
            StoreError::NoSuchShare => write!(f, "no such share"),
            StoreError::Disk(k) => write!(f, "disk error: {k}"),
            StoreError::Busy => write!(f, "busy"),
            StoreError::BadRoot => write!(f, "bad root"),
            StoreError::Corrupt(s) => write!(f, "corrupt segment {s}"),
            StoreError::CorruptHeader => write!(f, "corrupt share header"),
        }
    }
}

fn disk(e: io::Error) -> StoreError {
    crate::debug!("disk error: {e}");
    StoreError::Disk(e.kind())
}

/// An internal layout lookup that cannot fail for a validated header.
fn layout<T>(v: Option<T>) -> io::Result<T> {
    v.ok_or_else(|| io::Error::other("share layout out of range"))
}

/// The SI as 32 lowercase hex digits (its directory name).
pub fn si_hex(si: &Si) -> String {
    si.iter().map(|b| format!("{b:02x}")).collect()
}

/// A directory name that is an SI (exactly 32 lowercase hex digits).
pub fn parse_si_hex(name: &str) -> Option<Si> {
    let b = name.as_bytes();
    if b.len() != 2 * SI_LEN {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut si = [0u8; SI_LEN];
    for (i, pair) in b.chunks(2).enumerate() {
        si[i] = digit(pair[0])? << 4 | digit(*pair.get(1)?)?;
    }
    Some(si)
}

/// A file name that is a share number ("0" … "63", no leading zero).
pub fn parse_share_name(name: &str) -> Option<u8> {
    let digits = name.bytes().all(|c| c.is_ascii_digit());
    if !digits || name.is_empty() || name.len() > 2 || (name.len() > 1 && name.starts_with('0')) {
        return None;
    }
    let n: u8 = name.parse().ok()?;
    (usize::from(n) < MAX_SHARES).then_some(n)
}

/// The lease file: `expiry u64 | CRC32C u32`, big-endian.
pub fn emit_lease(expiry: u64) -> [u8; LEASE_LEN] {
    let mut b = [0u8; LEASE_LEN];
    b[..8].copy_from_slice(&expiry.to_be_bytes());
    let crc = crc32c(&b[..8]);
    b[8..].copy_from_slice(&crc.to_be_bytes());
    b
}

/// The expiry of a lease file; `None` if its length or CRC is wrong.
pub fn parse_lease(b: &[u8]) -> Option<u64> {
    let b: &[u8; LEASE_LEN] = b.try_into().ok()?;
    let mut e = [0u8; 8];
    e.copy_from_slice(&b[..8]);
    let mut c = [0u8; 4];
    c.copy_from_slice(&b[8..]);
    (crc32c(&e) == u32::from_be_bytes(c)).then_some(u64::from_be_bytes(e))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lease {
    Missing,
    Corrupt,
    At(u64),
}

fn read_lease(dir: &Path) -> io::Result<Lease> {
    match fs::read(dir.join(LEASE_NAME)) {
        Ok(b) => Ok(parse_lease(&b).map_or(Lease::Corrupt, Lease::At)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Lease::Missing),
        Err(e) => Err(e),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A set of share numbers (0..64).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShareSet(u64);

impl ShareSet {
    pub fn insert(&mut self, share: u8) {
        if usize::from(share) < MAX_SHARES {
            self.0 |= 1 << share;
        }
    }
    pub fn contains(&self, share: u8) -> bool {
        usize::from(share) < MAX_SHARES && self.0 & (1 << share) != 0
    }
    pub fn count(&self) -> u32 {
        self.0.count_ones()
    }
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
    /// The members, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        // MAX_SHARES = 64 fits a u8.
        (0..MAX_SHARES as u8).filter(|&s| self.contains(s))
    }
}

/// Counts of the store (the protocol's StoreStat, and what is reserved).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStat {
    /// Bytes of the share files in place.
    pub used: u64,
    /// Bytes reserved by writers in flight.
    pub reserved: u64,
    pub quota: u64,
    /// Share files in place.
    pub shares: u32,
    /// SI directories (files some share of which this box holds).
    pub files: u32,
}

/// What [`ChunkStore::holding`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holding {
    /// Shares held whose header is sound and names them.
    pub shares: ShareSet,
    head: [u8; MAX_HEAD_LEN],
    head_len: usize,
}

impl Holding {
    /// Header (64 bytes) and the N × 32 roots (without their CRC, which was
    /// checked) of the lowest share whose header and roots are sound; empty
    /// if there is none.
    pub fn head(&self) -> &[u8] {
        &self.head[..self.head_len]
    }
}

/// Which check a bad share failed first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The file is not as long as its header says.
    Length,
    /// The roots area fails its CRC32C.
    Roots,
    /// A block fails its CRC32C.
    Crc,
    /// A block could not be read.
    Io,
    /// A stored leaf or node is not the hash of what it covers.
    Tree,
    /// The tree's root is not `R_<share>` of the header.
    Root,
}

/// A share's state after [`ChunkStore::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareStatus {
    Ok,
    /// `segment`: the lowest segment found bad (0 for faults of the whole
    /// share: length, roots, root; the first leaf under a bad node).
    Bad {
        segment: u32,
        fault: Fault,
    },
    /// Cannot be opened, or its header is broken or names another share.
    Unreadable,
}

impl ShareStatus {
    /// Status byte for the protocol's Checked answer: 0 ok, 1 bad,
    /// 2 unreadable; and the bad segment (0 unless bad).
    pub fn code(&self) -> (u8, u32) {
        match self {
            ShareStatus::Ok => (0, 0),
            ShareStatus::Bad { segment, .. } => (1, *segment),
            ShareStatus::Unreadable => (2, 0),
        }
    }
}

/// What [`ChunkStore::check`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Every share file of the SI, lowest first.
    pub shares: heapless::Vec<(u8, ShareStatus), MAX_SHARES>,
    /// The lease's expiry after a renewal.
    pub renewed: Option<u64>,
}

/// What [`ChunkStore::sweep`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// SI directories removed.
    pub files: u32,
    pub shares: u32,
    pub bytes: u64,
}

/// Where [`ShareReader::read_block`] put a block and its proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRead {
    /// Block bytes at the start of the data buffer.
    pub len: usize,
    /// Proof nodes at the start of the proof array (leaf level first).
    pub proof_len: usize,
}

struct State {
    used: u64,
    reserved: u64,
    shares: u32,
    files: u32,
    writers: heapless::Vec<(Si, u8), MAX_WRITERS>,
    /// SIs whose directory a thread is changing.
    locked: heapless::Vec<Si, MAX_SI_LOCKS>,
    next_tmp: u64,
}

struct Inner {
    shares: PathBuf,
    incoming: PathBuf,
    quota: u64,
    state: Mutex<State>,
    /// Signalled when an SI lock is released.
    unlocked: Condvar,
    /// Holds the flock on `<path>/lock` (released when closed).
    _lock: File,
}

/// The chunk store: a cheap handle (clone it to each worker thread).
#[derive(Clone)]
pub struct ChunkStore {
    inner: Arc<Inner>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // The state is plain counters, updated without panicking paths in
        // between; a poisoned lock leaves them consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tmp_id(&self) -> u64 {
        let mut st = self.state();
        st.next_tmp = st.next_tmp.wrapping_add(1);
        st.next_tmp
    }

    fn si_dir(&self, si: &Si) -> PathBuf {
        self.shares.join(si_hex(si))
    }

    /// Waits for, then takes, the directory lock of `si`.
    fn lock_si(&self, si: Si) -> SiLock<'_> {
        let mut st = self.state();
        while st.locked.contains(&si) || st.locked.is_full() {
            st = self.unlocked.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        // Not full: checked above.
        let _ = st.locked.push(si);
        SiLock { inner: self, si }
    }

    /// The lock of `si` for a sweep: `None` if it is held or a writer of
    /// the SI is in flight.
    fn try_lock_idle_si(&self, si: Si) -> Option<SiLock<'_>> {
        let mut st = self.state();
        if st.locked.contains(&si) || st.writers.iter().any(|w| w.0 == si) {
            return None;
        }
        st.locked.push(si).ok()?;
        Some(SiLock { inner: self, si })
    }

    /// Extends the lease of the SI directory `dir` to at least `expiry`
    /// (atomically: a temporary file renamed over it). Needs the SI's lock;
    /// the caller fsyncs `dir`. Returns the expiry now in force.
    fn extend_lease(&self, lock: &SiLock<'_>, dir: &Path, expiry: u64) -> io::Result<u64> {
        if let Lease::At(e) = read_lease(dir)? {
            if e >= expiry {
                return Ok(e);
            }
        }
        let tmp = self
            .incoming
            .join(format!("{}.lease.{}", si_hex(&lock.si), self.tmp_id()));
        let result = (|| {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            io::Write::write_all(&mut f, &emit_lease(expiry))?;
            f.sync_all()?;
            fs::rename(&tmp, dir.join(LEASE_NAME))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map(|()| expiry)
    }
}

/// The directory lock of one SI (released on drop).
struct SiLock<'a> {
    inner: &'a Inner,
    si: Si,
}

impl Drop for SiLock<'_> {
    fn drop(&mut self) {
        let mut st = self.inner.state();
        if let Some(i) = st.locked.iter().position(|s| *s == self.si) {
            st.locked.swap_remove(i);
        }
        drop(st);
        self.inner.unlocked.notify_all();
    }
}

fn lease_expiry(now: u64) -> u64 {
    now.saturating_add(STORE_LEASE.as_secs())
}

impl ChunkStore {
    /// Opens the store at `path` (an existing, writable directory), holding
    /// at most `quota` bytes of share files: takes its lock, creates
    /// `shares/` and `incoming/`, empties `incoming/`, counts the shares.
    pub fn open(path: &Path, quota: u64) -> Result<ChunkStore, OpenError> {
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(OpenError::NotDirectory),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(OpenError::Missing),
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                return Err(OpenError::NotDirectory)
            }
            Err(e) => return Err(OpenError::Io("stat", e.kind())),
        }
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path.join(LOCK_NAME))
            .map_err(|e| OpenError::ReadOnly(e.kind()))?;
        // `Flock` (the non-deprecated form) panics when unlocking fails on
        // drop; closing the file releases the lock as well.
        #[allow(deprecated)]
        match nix::fcntl::flock(
            lock.as_raw_fd(),
            nix::fcntl::FlockArg::LockExclusiveNonblock,
        ) {
            Ok(()) => {}
            Err(nix::errno::Errno::EWOULDBLOCK) => return Err(OpenError::Locked),
            Err(e) => return Err(OpenError::Io("lock", io::Error::from(e).kind())),
        }
        // A directory whose files can be rewritten but where none can be
        // made (mode 0555 with an old lock file) is read-only for us too.
        let probe = path.join(format!(".probe.{}", std::process::id()));
        let _ = fs::remove_file(&probe);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
            .map_err(|e| OpenError::ReadOnly(e.kind()))?;
        fs::remove_file(&probe).map_err(|e| OpenError::ReadOnly(e.kind()))?;

        let shares = path.join("shares");
        let incoming = path.join("incoming");
        for dir in [&shares, &incoming] {
            match fs::create_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if !dir.is_dir() {
                        return Err(OpenError::Io("shares/ or incoming/", e.kind()));
                    }
                }
                Err(e) => return Err(OpenError::Io("create shares/, incoming/", e.kind())),
            }
        }
        empty_incoming(&incoming).map_err(|e| OpenError::Io("empty incoming/", e.kind()))?;
        let (used, count, files) =
            scan(&shares).map_err(|e| OpenError::Io("read shares/", e.kind()))?;
        if used > quota {
            crate::warn!("store: {used} bytes of shares, over the quota of {quota}");
        }
        Ok(ChunkStore {
            inner: Arc::new(Inner {
                shares,
                incoming,
                quota,
                state: Mutex::new(State {
                    used,
                    reserved: 0,
                    shares: count,
                    files,
                    writers: heapless::Vec::new(),
                    locked: heapless::Vec::new(),
                    next_tmp: 0,
                }),
                unlocked: Condvar::new(),
                _lock: lock,
            }),
        })
    }

    /// Counts (used, quota, shares, SI directories).
    pub fn stat(&self) -> StoreStat {
        let st = self.inner.state();
        StoreStat {
            used: st.used,
            reserved: st.reserved,
            quota: self.inner.quota,
            shares: st.shares,
            files: st.files,
        }
    }

    fn share_path(&self, si: &Si, share: u8) -> PathBuf {
        self.inner.si_dir(si).join(share.to_string())
    }

    /// Starts writing share `share` of the file `params` under `si`:
    /// `exists` if it is stored, `busy` if another writer has it (or
    /// [`MAX_WRITERS`] are in flight), `quota` if its whole size does not
    /// fit. The size stays reserved until the writer closes or drops.
    pub fn allocate(&self, si: Si, share: u8, params: Params) -> Result<Writer, StoreError> {
        let header = ShareHeader::new(params, si, share).map_err(StoreError::BadParams)?;
        let len = header.file_len();
        let target = self.share_path(&si, share);
        let id = {
            let mut st = self.inner.state();
            if st.writers.contains(&(si, share)) {
                return Err(StoreError::Busy);
            }
            // Under the lock, so that a writer closing now is seen either
            // as registered or as its file in place.
            match fs::symlink_metadata(&target) {
                Ok(_) => return Err(StoreError::Exists),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(disk(e)),
            }
            let total = st
                .used
                .checked_add(st.reserved)
                .and_then(|u| u.checked_add(len));
            if total.is_none_or(|t| t > self.inner.quota) {
                return Err(StoreError::Quota);
            }
            if st.writers.push((si, share)).is_err() {
                return Err(StoreError::Busy);
            }
            st.reserved += len; // ≤ quota: checked above
            st.next_tmp = st.next_tmp.wrapping_add(1);
            st.next_tmp
        };
        let reservation = Reservation {
            inner: Arc::clone(&self.inner),
            si,
            share,
            len,
            settled: false,
        };
        let tmp = self
            .inner
            .incoming
            .join(format!("{}.{share}.{id}", si_hex(&si)));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(disk)?;
        let w = Writer {
            reservation,
            file,
            tmp,
            header,
            next: 0,
            leaves: [[0; HASH_LEN]; LEAF_BUF],
            buffered: 0,
            done: false,
        };
        preallocate(&w.file, len)?;
        w.file.write_all_at(&header.emit(), 0).map_err(disk)?;
        Ok(w)
    }

    /// Opens a stored share for reading (its header checked).
    pub fn open_share(&self, si: Si, share: u8) -> Result<ShareReader, StoreError> {
        let file = match File::open(self.share_path(&si, share)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::NoSuchShare),
            Err(e) => return Err(disk(e)),
        };
        let mut head = [0u8; HEADER_LEN];
        match file.read_exact_at(&mut head, 0) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(StoreError::CorruptHeader)
            }
            Err(e) => return Err(disk(e)),
        }
        let header = ShareHeader::parse(&head).map_err(|_| StoreError::CorruptHeader)?;
        if header.si() != si || header.share() != share {
            return Err(StoreError::CorruptHeader);
        }
        Ok(ShareReader { file, header })
    }

    /// Reads block `segment` of a share and its proof into the caller's
    /// buffers (see [`ShareReader::read_block`]); opens the file each call.
    pub fn read_block(
        &self,
        si: Si,
        share: u8,
        segment: u32,
        data: &mut [u8],
        proof: &mut [Hash; MAX_PROOF],
    ) -> Result<BlockRead, StoreError> {
        self.open_share(si, share)?.read_block(segment, data, proof)
    }

    /// The share files of `si`, by name (unreadable ones included).
    fn present(&self, si: &Si) -> Result<ShareSet, StoreError> {
        let mut set = ShareSet::default();
        let dir = match fs::read_dir(self.inner.si_dir(si)) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(set),
            Err(e) => return Err(disk(e)),
        };
        for entry in dir {
            let entry = entry.map_err(disk)?;
            if let Some(n) = entry.file_name().to_str().and_then(parse_share_name) {
                set.insert(n);
            }
        }
        Ok(set)
    }

    /// The shares of `si` held here (with a sound header), and the header
    /// and roots of the lowest one (the protocol's Holding).
    pub fn holding(&self, si: Si) -> Result<Holding, StoreError> {
        let mut h = Holding {
            shares: ShareSet::default(),
            head: [0; MAX_HEAD_LEN],
            head_len: 0,
        };
        for share in self.present(&si)?.iter() {
            let Ok(r) = self.open_share(si, share) else {
                continue;
            };
            h.shares.insert(share);
            if h.head_len != 0 {
                continue;
            }
            let n = usize::from(r.header.params().n);
            let roots = &mut h.head[HEADER_LEN..HEADER_LEN + r.header.roots_len()];
            if r.file.read_exact_at(roots, r.header.roots_offset()).is_ok()
                && parse_roots(roots, r.header.params().n).is_ok()
            {
                h.head[..HEADER_LEN].copy_from_slice(&r.header.emit());
                h.head_len = HEADER_LEN + n * HASH_LEN;
            }
        }
        Ok(h)
    }

    /// Checks every share of `si` from its bytes up: header, roots, each
    /// block's CRC32C, each leaf and node recomputed, the root against
    /// `R_<share>`. With `renew`, extends the lease to `now` + `STORE_LEASE`
    /// if any share is held. Reads every share whole: a worker's job.
    pub fn check(&self, si: Si, renew: bool, now: u64) -> Result<CheckReport, StoreError> {
        let mut report = CheckReport::default();
        let present = self.present(&si)?;
        let mut buf = vec![0u8; SEGMENT_SIZE + CRC_LEN];
        for share in present.iter() {
            let status = match File::open(self.share_path(&si, share)) {
                Ok(f) => check_file(&f, si, share, &mut buf),
                Err(_) => ShareStatus::Unreadable,
            };
            // At most MAX_SHARES share numbers.
            let _ = report.shares.push((share, status));
        }
        if renew && !present.is_empty() {
            let lock = self.inner.lock_si(si);
            let dir = self.inner.si_dir(&si);
            let expiry = self
                .inner
                .extend_lease(&lock, &dir, lease_expiry(now))
                .map_err(disk)?;
            sync_dir(&dir).map_err(disk)?;
            report.renewed = Some(expiry);
        }
        Ok(report)
    }

    /// Removes the SI directories whose lease expired by `now` (or that
    /// have none: a put that never finished); passes over those with a
    /// writer in flight and those whose lease file is corrupt (logged:
    /// a `check` with renew rewrites it).
    pub fn sweep(&self, now: u64) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        for entry in fs::read_dir(&self.inner.shares).map_err(disk)? {
            let entry = entry.map_err(disk)?;
            let Some(si) = entry.file_name().to_str().and_then(parse_si_hex) else {
                continue;
            };
            let Some(lock) = self.inner.try_lock_idle_si(si) else {
                continue;
            };
            let dir = entry.path();
            match read_lease(&dir) {
                Ok(Lease::At(e)) if e > now => continue,
                Ok(Lease::At(_)) | Ok(Lease::Missing) => {}
                Ok(Lease::Corrupt) => {
                    crate::warn!("store: {}: corrupt lease, kept", dir.display());
                    continue;
                }
                Err(e) => {
                    crate::warn!("store: {}: lease: {e}", dir.display());
                    continue;
                }
            }
            let (shares, bytes, removed) = remove_si_dir(&dir);
            {
                let mut st = self.inner.state();
                st.used = st.used.saturating_sub(bytes);
                st.shares = st.shares.saturating_sub(shares);
                if removed {
                    st.files = st.files.saturating_sub(1);
                }
            }
            drop(lock);
            report.shares += shares;
            report.bytes += bytes;
            report.files += u32::from(removed);
        }
        Ok(report)
    }
}

/// Asks the file system for the whole share up front, so a full disk
/// refuses the allocation rather than a block later. File systems that
/// cannot (EOPNOTSUPP) are written sparsely.
fn preallocate(file: &File, len: u64) -> Result<(), StoreError> {
    let Ok(len) = libc::off_t::try_from(len) else {
        return Ok(());
    };
    match nix::fcntl::posix_fallocate(file.as_raw_fd(), 0, len) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EOPNOTSUPP | nix::errno::Errno::EINVAL) => Ok(()),
        Err(e) => Err(disk(io::Error::from(e))),
    }
}

fn empty_incoming(incoming: &Path) -> io::Result<()> {
    for entry in fs::read_dir(incoming)? {
        let entry = entry?;
        let path = entry.path();
        crate::debug!("store: removing unfinished {}", path.display());
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Counts (bytes, share files, SI directories) under `shares/`, logging
/// what looks wrong.
fn scan(shares: &Path) -> io::Result<(u64, u32, u32)> {
    let (mut used, mut count, mut files) = (0u64, 0u32, 0u32);
    for entry in fs::read_dir(shares)? {
        let entry = entry?;
        let path = entry.path();
        let si = entry.file_name().to_str().and_then(parse_si_hex);
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let (Some(si), true) = (si, is_dir) else {
            crate::warn!("store: {}: not a share directory, ignored", path.display());
            continue;
        };
        let dir = match fs::read_dir(&path) {
            Ok(d) => d,
            Err(e) => {
                crate::warn!("store: {}: {e}, ignored", path.display());
                continue;
            }
        };
        files += 1;
        for f in dir {
            let f = f?;
            let name = f.file_name();
            if name == LEASE_NAME {
                continue;
            }
            let fpath = f.path();
            let share = name.to_str().and_then(parse_share_name);
            let meta = match f.metadata() {
                Ok(m) => m,
                Err(e) => {
                    crate::warn!("store: {}: {e}, ignored", fpath.display());
                    continue;
                }
            };
            let (Some(share), true) = (share, meta.is_file()) else {
                crate::warn!("store: {}: not a share file, ignored", fpath.display());
                continue;
            };
            used = used.saturating_add(meta.len());
            count += 1;
            if let Err(why) = header_of(&fpath, si, share, meta.len()) {
                crate::warn!("store: {}: {why}; kept, check reports it", fpath.display());
            }
        }
    }
    Ok((used, count, files))
}

/// Is the share file at `path` plausible (header sound, names it, length)?
fn header_of(path: &Path, si: Si, share: u8, len: u64) -> Result<(), String> {
    let f = File::open(path).map_err(|e| e.to_string())?;
    let mut head = [0u8; HEADER_LEN];
    f.read_exact_at(&mut head, 0).map_err(|e| e.to_string())?;
    let h = ShareHeader::parse(&head).map_err(|e| e.to_string())?;
    if h.si() != si || h.share() != share {
        return Err("header names another share".into());
    }
    if h.file_len() != len {
        return Err(format!("{len} bytes, header says {}", h.file_len()));
    }
    Ok(())
}

/// Removes an SI directory's shares, then its lease, then itself; unknown
/// files are kept (and the directory with them). Returns (shares, bytes,
/// directory removed).
fn remove_si_dir(dir: &Path) -> (u32, u64, bool) {
    let (mut shares, mut bytes) = (0u32, 0u64);
    let entries = match fs::read_dir(dir) {
        Ok(d) => d,
        Err(e) => {
            crate::warn!("store: sweep {}: {e}", dir.display());
            return (0, 0, false);
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(_) = entry.file_name().to_str().and_then(parse_share_name) else {
            continue;
        };
        let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
        match fs::remove_file(&path) {
            Ok(()) => {
                shares += 1;
                bytes = bytes.saturating_add(len);
            }
            Err(e) => crate::warn!("store: sweep {}: {e}", path.display()),
        }
    }
    let _ = fs::remove_file(dir.join(LEASE_NAME));
    let removed = match fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) => {
            crate::warn!("store: sweep {}: {e}, kept", dir.display());
            false
        }
    };
    (shares, bytes, removed)
}

/// Walks the tree's upper levels bottom-up: for each piece of a level,
/// reads its children (at most [`NODE_BUF`]) from the level below, hashes
/// them in pairs, and hands `(level, index of the first parent, parents)`
/// to `each`, which returns whether to go on. Returns the top node as
/// stored once the walk is done (the leaf itself for one segment), `None`
/// if `each` stopped it.
fn walk_levels(
    file: &File,
    header: &ShareHeader,
    mut each: impl FnMut(usize, u32, &[Hash]) -> io::Result<bool>,
) -> io::Result<Option<Hash>> {
    let levels = header.levels();
    let mut children = [[0u8; HASH_LEN]; NODE_BUF];
    let mut parents = [[0u8; HASH_LEN]; NODE_BUF / 2];
    for level in 1..levels.count() {
        let below = layout(levels.size(level - 1))?;
        let mut i = 0u32;
        while i < below {
            // NODE_BUF fits a u32.
            let take = (below - i).min(NODE_BUF as u32);
            let piece = &mut children[..take as usize];
            file.read_exact_at(
                piece.as_flattened_mut(),
                layout(header.node_offset(level - 1, i))?,
            )?;
            let p = layout(hash_pairs(piece, &mut parents))?;
            if !each(level, i / 2, &parents[..p])? {
                return Ok(None);
            }
            i += take;
        }
    }
    let mut top = [0u8; HASH_LEN];
    file.read_exact_at(&mut top, layout(header.node_offset(levels.count() - 1, 0))?)?;
    Ok(Some(top))
}

/// Keeps the lowest bad segment.
fn note(first: &mut Option<(u32, Fault)>, segment: u32, fault: Fault) {
    if first.is_none_or(|(s0, _)| segment < s0) {
        *first = Some((segment, fault));
    }
}

/// Checks one share file (see [`ChunkStore::check`]); `buf` holds a block
/// and its CRC.
fn check_file(file: &File, si: Si, share: u8, buf: &mut [u8]) -> ShareStatus {
    let mut head = [0u8; HEADER_LEN];
    if file.read_exact_at(&mut head, 0).is_err() {
        return ShareStatus::Unreadable;
    }
    let Ok(h) = ShareHeader::parse(&head) else {
        return ShareStatus::Unreadable;
    };
    if h.si() != si || h.share() != share {
        return ShareStatus::Unreadable;
    }
    match file.metadata() {
        Ok(m) if m.len() == h.file_len() => {}
        Ok(_) => {
            return ShareStatus::Bad {
                segment: 0,
                fault: Fault::Length,
            }
        }
        Err(_) => return ShareStatus::Unreadable,
    }
    let mut first: Option<(u32, Fault)> = None;

    let mut roots = [0u8; MAX_HEAD_LEN - HEADER_LEN];
    let roots = &mut roots[..h.roots_len()];
    let want = match file.read_exact_at(roots, h.roots_offset()) {
        Ok(()) => parse_roots(roots, h.params().n)
            .ok()
            .and_then(|r| root_at(r, share)),
        Err(_) => None,
    };
    if want.is_none() {
        note(&mut first, 0, Fault::Roots);
    }

    // Blocks and leaves, up to the first bad one.
    let mut builder = RootBuilder::new();
    let mut stored = [[0u8; HASH_LEN]; LEAF_BUF];
    for s in 0..h.segments() {
        let at = s as usize % LEAF_BUF;
        if at == 0 {
            // LEAF_BUF fits a u32.
            let n = (h.segments() - s).min(LEAF_BUF as u32) as usize;
            let Some(off) = h.node_offset(0, s) else {
                return ShareStatus::Unreadable;
            };
            if file
                .read_exact_at(stored[..n].as_flattened_mut(), off)
                .is_err()
            {
                note(&mut first, s, Fault::Io);
                break;
            }
        }
        let (Some(len), Some(off)) = (h.block_len(s), h.block_offset(s)) else {
            return ShareStatus::Unreadable;
        };
        let Some(block) = buf.get_mut(..len + CRC_LEN) else {
            return ShareStatus::Unreadable;
        };
        if file.read_exact_at(block, off).is_err() {
            note(&mut first, s, Fault::Io);
            break;
        }
        let (data, crc) = block.split_at(len);
        if crc32c(data).to_be_bytes() != crc {
            note(&mut first, s, Fault::Crc);
            break;
        }
        let leaf = leaf_hash(data);
        if leaf != stored[at] {
            note(&mut first, s, Fault::Tree);
            break;
        }
        builder.push(leaf);
    }

    // Upper levels: every stored node against the hash of its stored
    // children, up to the lowest level with a bad node (below it, all is
    // sound, so that node is the altered one; its parents would only
    // repeat it).
    let mut node = [[0u8; HASH_LEN]; NODE_BUF / 2];
    let walked = walk_levels(file, &h, |level, index, parents| {
        let stored = &mut node[..parents.len()];
        let off = layout(h.node_offset(level, index))?;
        file.read_exact_at(stored.as_flattened_mut(), off)?;
        let Some(i) = stored.iter().zip(parents).position(|(a, b)| a != b) else {
            return Ok(true);
        };
        // The first leaf under the bad node (level < 33: no overflow).
        let leaf = (u64::from(index) + i as u64) << level;
        let s = u32::try_from(leaf).unwrap_or(u32::MAX);
        note(&mut first, s.min(h.segments() - 1), Fault::Tree);
        Ok(false)
    });
    let top = match walked {
        Ok(top) => top,
        Err(_) => {
            note(&mut first, 0, Fault::Io);
            None
        }
    };

    if first.is_none() && (builder.root() != want || top != want) {
        note(&mut first, 0, Fault::Root);
    }
    match first {
        None => ShareStatus::Ok,
        Some((segment, fault)) => ShareStatus::Bad { segment, fault },
    }
}

/// The reservation and registration of a writer in flight; released on
/// drop unless settled by a successful close.
struct Reservation {
    inner: Arc<Inner>,
    si: Si,
    share: u8,
    len: u64,
    settled: bool,
}

impl Reservation {
    /// Ends the reservation: counts the file if it is in place, the SI
    /// directory if it was made, and unregisters the writer.
    fn settle(&mut self, stored: bool, new_dir: bool) {
        if self.settled {
            return;
        }
        self.settled = true;
        let mut st = self.inner.state();
        st.reserved = st.reserved.saturating_sub(self.len);
        if stored {
            st.used = st.used.saturating_add(self.len);
            st.shares += 1;
        }
        if new_dir {
            st.files += 1;
        }
        let me = (self.si, self.share);
        if let Some(i) = st.writers.iter().position(|w| *w == me) {
            st.writers.swap_remove(i);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.settle(false, false);
    }
}

/// A share being written: blocks in segment order, then [`Writer::close`].
/// Dropped before a successful close, it removes its temporary file and
/// releases its reservation. After an error, drop it.
pub struct Writer {
    // Dropped after the file is removed (see Drop).
    reservation: Reservation,
    file: File,
    tmp: PathBuf,
    header: ShareHeader,
    next: u32,
    /// Leaf hashes not yet written, of segments `next - buffered ..`.
    leaves: [Hash; LEAF_BUF],
    buffered: usize,
    done: bool,
}

impl Writer {
    pub fn header(&self) -> &ShareHeader {
        &self.header
    }

    /// The segment the next block must be.
    pub fn next_segment(&self) -> u32 {
        self.next
    }

    /// Writes block `segment` (the next one, of its exact length) and its
    /// CRC32C, and hashes its leaf.
    pub fn write_block(&mut self, segment: u32, data: &[u8]) -> Result<(), StoreError> {
        if segment != self.next {
            return Err(StoreError::Malformed("block out of order"));
        }
        let (Some(len), Some(off)) = (
            self.header.block_len(segment),
            self.header.block_offset(segment),
        ) else {
            return Err(StoreError::Malformed("block past the last segment"));
        };
        if data.len() != len {
            return Err(StoreError::Malformed("block of the wrong length"));
        }
        self.file.write_all_at(data, off).map_err(disk)?;
        self.file
            .write_all_at(&crc32c(data).to_be_bytes(), off + len as u64)
            .map_err(disk)?;
        if self.buffered == LEAF_BUF {
            self.flush_leaves()?;
        }
        self.leaves[self.buffered] = leaf_hash(data);
        self.buffered += 1;
        self.next += 1;
        Ok(())
    }

    fn flush_leaves(&mut self) -> Result<(), StoreError> {
        if self.buffered == 0 {
            return Ok(());
        }
        // buffered ≤ LEAF_BUF ≤ next.
        let first = self.next - self.buffered as u32;
        let off = layout(self.header.node_offset(0, first)).map_err(disk)?;
        self.file
            .write_all_at(self.leaves[..self.buffered].as_flattened(), off)
            .map_err(disk)?;
        self.buffered = 0;
        Ok(())
    }

    /// Finishes the share: writes `roots` (all N of them), builds the tree,
    /// refuses the share (`bad root`, file discarded) unless its root is
    /// `roots[share]`, fsyncs, extends the SI's lease to `now` +
    /// `STORE_LEASE`, renames the file into place and fsyncs the directory.
    pub fn close(mut self, roots: &[Hash], now: u64) -> Result<(), StoreError> {
        let h = self.header;
        if self.next != h.segments() {
            return Err(StoreError::Malformed("close before the last block"));
        }
        if roots.len() != usize::from(h.params().n) {
            return Err(StoreError::Malformed("wrong number of roots"));
        }
        self.flush_leaves()?;
        let file = &self.file;
        let root = walk_levels(file, &h, |level, index, parents| {
            let off = layout(h.node_offset(level, index))?;
            file.write_all_at(parents.as_flattened(), off)?;
            Ok(true)
        })
        .map_err(disk)?;
        if root.as_ref() != roots.get(usize::from(h.share())) {
            return Err(StoreError::BadRoot);
        }
        let mut area = [0u8; MAX_HEAD_LEN - HEADER_LEN];
        let len = emit_roots(roots, &mut area).ok_or(StoreError::Malformed("too many roots"))?;
        file.write_all_at(&area[..len], h.roots_offset())
            .map_err(disk)?;
        file.sync_all().map_err(disk)?;

        let inner = Arc::clone(&self.reservation.inner);
        let si = h.si();
        let dir = inner.si_dir(&si);
        let lock = inner.lock_si(si);
        let mut new_dir = false;
        let mut stored = false;
        let result = (|| {
            match fs::create_dir(&dir) {
                Ok(()) => {
                    new_dir = true;
                    sync_dir(&inner.shares)?;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            inner.extend_lease(&lock, &dir, lease_expiry(now))?;
            fs::rename(&self.tmp, dir.join(h.share().to_string()))?;
            stored = true;
            sync_dir(&dir)
        })();
        // Count what is in place before anyone may see the writer gone.
        self.done = stored;
        self.reservation.settle(stored, new_dir);
        drop(lock);
        result.map_err(disk)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
        // Then the reservation's own drop releases it.
    }
}

/// A stored share open for reading.
pub struct ShareReader {
    file: File,
    header: ShareHeader,
}

impl ShareReader {
    pub fn header(&self) -> &ShareHeader {
        &self.header
    }

    /// Reads block `segment` into `data` (at least the block's length)
    /// and its proof (sibling hashes, leaf level first, per
    /// [`super::share::audit_path`]) into `proof`; checks the block's
    /// CRC32C (`corrupt segment N`). No allocation.
    pub fn read_block(
        &self,
        segment: u32,
        data: &mut [u8],
        proof: &mut [Hash; MAX_PROOF],
    ) -> Result<BlockRead, StoreError> {
        let h = &self.header;
        let (Some(len), Some(off)) = (h.block_len(segment), h.block_offset(segment)) else {
            return Err(StoreError::Malformed("no such segment"));
        };
        let data = data
            .get_mut(..len)
            .ok_or(StoreError::Malformed("buffer shorter than the block"))?;
        let read = |buf: &mut [u8], at: u64| match self.file.read_exact_at(buf, at) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(StoreError::Corrupt(segment)),
            Err(e) => Err(disk(e)),
        };
        read(data, off)?;
        let mut crc = [0u8; CRC_LEN];
        read(&mut crc, off + len as u64)?;
        if crc32c(data).to_be_bytes() != crc {
            return Err(StoreError::Corrupt(segment));
        }
        let path = super::share::audit_path(h.segments(), segment)
            .ok_or(StoreError::Malformed("no such segment"))?;
        for (slot, node) in proof.iter_mut().zip(path.as_slice()) {
            let at = h
                .node_offset(usize::from(node.level), node.index)
                .ok_or(StoreError::Corrupt(segment))?;
            read(slot, at)?;
        }
        Ok(BlockRead {
            len,
            proof_len: path.len(),
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::store::share::{root_from_proof, root_of};
    use crate::testutil::TempDir;

    const S: u64 = SEGMENT_SIZE as u64;
    const NOW: u64 = 1_700_000_000;
    const GB: u64 = 1 << 30;

    fn bad(segment: u32, fault: Fault) -> ShareStatus {
        ShareStatus::Bad { segment, fault }
    }

    fn si(n: u8) -> Si {
        [n; SI_LEN]
    }

    /// Deterministic block bytes.
    fn block(seed: u32, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    struct Made {
        header: ShareHeader,
        blocks: Vec<Vec<u8>>,
        roots: Vec<Hash>,
    }

    /// The blocks and roots of share `share` of a file of `segments`
    /// segments (64-of-64: small blocks) or of `size` bytes.
    fn make(si: Si, share: u8, params: Params) -> Made {
        let header = ShareHeader::new(params, si, share).unwrap();
        let blocks: Vec<Vec<u8>> = (0..header.segments())
            .map(|s| block(s * 64 + u32::from(share), header.block_len(s).unwrap()))
            .collect();
        let mut leaves: Vec<Hash> = blocks.iter().map(|b| leaf_hash(b)).collect();
        let mut roots = vec![[0xEE; 32]; usize::from(params.n)];
        roots[usize::from(share)] = root_of(&mut leaves).unwrap();
        Made {
            header,
            blocks,
            roots,
        }
    }

    fn segs(n: u32) -> Params {
        // The last segment 5 bytes long (one byte for an empty file).
        Params::new(64, 64, u64::from(n - 1) * S + 5)
    }

    fn put(store: &ChunkStore, m: &Made) -> Result<(), StoreError> {
        let h = m.header;
        let mut w = store.allocate(h.si(), h.share(), h.params())?;
        for (s, b) in m.blocks.iter().enumerate() {
            w.write_block(s as u32, b)?;
        }
        w.close(&m.roots, NOW)
    }

    fn open(dir: &TempDir) -> ChunkStore {
        ChunkStore::open(dir.path(), 100 * GB).unwrap()
    }

    fn share_file(dir: &TempDir, si: &Si, share: u8) -> PathBuf {
        dir.path()
            .join("shares")
            .join(si_hex(si))
            .join(share.to_string())
    }

    fn flip(path: &Path, at: u64) {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let mut b = [0u8];
        f.read_exact_at(&mut b, at).unwrap();
        b[0] ^= 0x10;
        f.write_all_at(&b, at).unwrap();
    }

    fn incoming_is_empty(dir: &TempDir) -> bool {
        fs::read_dir(dir.path().join("incoming")).unwrap().count() == 0
    }

    #[test]
    fn round_trip_of_odd_trees() {
        let dir = TempDir::new("chunk-round");
        let store = open(&dir);
        let mut used = 0;
        let mut data = vec![0u8; SEGMENT_SIZE];
        let mut proof = [[0u8; 32]; MAX_PROOF];
        for (i, n) in [1u32, 2, 3, 5, 8, 9].into_iter().enumerate() {
            let si = si(i as u8);
            let m = make(si, 7, segs(n));
            put(&store, &m).unwrap();
            used += m.header.file_len();
            let path = share_file(&dir, &si, 7);
            assert_eq!(fs::metadata(&path).unwrap().len(), m.header.file_len());
            let root = m.roots[7];
            let r = store.open_share(si, 7).unwrap();
            for s in 0..n {
                let got = r.read_block(s, &mut data, &mut proof).unwrap();
                assert_eq!(&data[..got.len], &m.blocks[s as usize][..]);
                let leaf = leaf_hash(&data[..got.len]);
                assert_eq!(
                    root_from_proof(n, s, &leaf, &proof[..got.proof_len]),
                    Some(root),
                    "{n} segments, segment {s}"
                );
            }
            assert_eq!(
                r.read_block(n, &mut data, &mut proof),
                Err(StoreError::Malformed("no such segment"))
            );
            let report = store.check(si, false, NOW).unwrap();
            assert_eq!(&report.shares[..], &[(7, ShareStatus::Ok)]);
            let holding = store.holding(si).unwrap();
            assert_eq!(holding.shares.iter().collect::<Vec<_>>(), [7]);
            let head = holding.head();
            assert_eq!(head.len(), 64 + 64 * 32);
            assert_eq!(ShareHeader::parse_prefix(head), Ok(m.header));
            assert_eq!(&head[64 + 7 * 32..64 + 8 * 32], &root);
        }
        // A 1-of-1 share: full 128 KiB blocks and a short last one.
        let m = make(si(99), 0, Params::new(1, 1, 2 * S + 1000));
        put(&store, &m).unwrap();
        used += m.header.file_len();
        let got = store
            .read_block(si(99), 0, 1, &mut data, &mut proof)
            .unwrap();
        assert_eq!(&data[..got.len], &m.blocks[1][..]);
        assert_eq!(
            store.stat(),
            StoreStat {
                used,
                reserved: 0,
                quota: 100 * GB,
                shares: 7,
                files: 7
            }
        );
        assert!(incoming_is_empty(&dir));
        assert_eq!(store.holding(si(200)).unwrap().shares.count(), 0);
        assert!(store.holding(si(200)).unwrap().head().is_empty());
        assert_eq!(
            store.open_share(si(200), 0).err(),
            Some(StoreError::NoSuchShare)
        );
    }

    #[test]
    fn many_segments_cross_the_buffers() {
        // 300 leaves: more than NODE_BUF children and 2 × LEAF_BUF leaves.
        let dir = TempDir::new("chunk-many");
        let store = open(&dir);
        let n = 300;
        let m = make(si(1), 0, segs(n));
        put(&store, &m).unwrap();
        assert_eq!(
            store.check(si(1), false, NOW).unwrap().shares[0].1,
            ShareStatus::Ok
        );
        let mut data = vec![0u8; SEGMENT_SIZE];
        let mut proof = [[0u8; 32]; MAX_PROOF];
        for s in [0, 127, 128, 255, 256, 299] {
            let got = store
                .read_block(si(1), 0, s, &mut data, &mut proof)
                .unwrap();
            let leaf = leaf_hash(&data[..got.len]);
            let root = root_from_proof(n, s, &leaf, &proof[..got.proof_len]);
            assert_eq!(root, Some(m.roots[0]), "segment {s}");
        }
        let path = share_file(&dir, &si(1), 0);
        flip(&path, m.header.node_offset(1, 140).unwrap());
        assert_eq!(
            store.check(si(1), false, NOW).unwrap().shares[0].1,
            bad(280, Fault::Tree)
        );
        flip(&path, m.header.node_offset(0, 200).unwrap());
        assert_eq!(
            store.check(si(1), false, NOW).unwrap().shares[0].1,
            bad(200, Fault::Tree)
        );
    }

    #[test]
    fn several_shares_of_one_file() {
        let dir = TempDir::new("chunk-several");
        let store = open(&dir);
        let p = Params::new(2, 5, 3 * S);
        for share in [4u8, 1, 3] {
            put(&store, &make(si(1), share, p)).unwrap();
        }
        let h = store.holding(si(1)).unwrap();
        assert_eq!(h.shares.iter().collect::<Vec<_>>(), [1, 3, 4]);
        let lowest = ShareHeader::parse_prefix(h.head()).unwrap();
        assert_eq!(lowest.share(), 1);
        assert_eq!(h.head().len(), 64 + 5 * 32);
        assert_eq!(store.stat().files, 1);
        assert_eq!(store.stat().shares, 3);
        let report = store.check(si(1), false, NOW).unwrap();
        assert_eq!(report.shares.len(), 3);
        assert!(report.shares.iter().all(|(_, s)| *s == ShareStatus::Ok));
    }

    #[test]
    fn flipped_block_byte_is_found() {
        let dir = TempDir::new("chunk-flip-block");
        let store = open(&dir);
        let m = make(si(1), 2, segs(5));
        put(&store, &m).unwrap();
        let path = share_file(&dir, &si(1), 2);
        flip(&path, m.header.block_offset(3).unwrap() + 100);
        let mut data = vec![0u8; SEGMENT_SIZE];
        let mut proof = [[0u8; 32]; MAX_PROOF];
        assert!(store.read_block(si(1), 2, 2, &mut data, &mut proof).is_ok());
        let e = store
            .read_block(si(1), 2, 3, &mut data, &mut proof)
            .unwrap_err();
        assert_eq!(e, StoreError::Corrupt(3));
        assert_eq!(e.to_string(), "corrupt segment 3");
        assert_eq!(e.code(), 5);
        let report = store.check(si(1), false, NOW).unwrap();
        assert_eq!(&report.shares[..], &[(2, bad(3, Fault::Crc))]);
        assert_eq!(report.shares[0].1.code(), (1, 3));
        // A block and its CRC altered together: the leaf catches it.
        let m = make(si(2), 0, segs(5));
        put(&store, &m).unwrap();
        let path = share_file(&dir, &si(2), 0);
        let off = m.header.block_offset(1).unwrap();
        let mut b = m.blocks[1].clone();
        b[0] ^= 1;
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&b, off).unwrap();
        f.write_all_at(&crc32c(&b).to_be_bytes(), off + b.len() as u64)
            .unwrap();
        assert!(store.read_block(si(2), 0, 1, &mut data, &mut proof).is_ok());
        assert_eq!(
            store.check(si(2), false, NOW).unwrap().shares[0].1,
            bad(1, Fault::Tree)
        );
    }

    #[test]
    fn flipped_tree_byte_is_found() {
        let dir = TempDir::new("chunk-flip-tree");
        let store = open(&dir);
        let check = |si: Si| store.check(si, false, NOW).unwrap().shares[0].1;
        // 9 segments: levels 9, 5, 3, 2, 1.
        let cases: [(usize, u32, ShareStatus); 4] = [
            (0, 6, bad(6, Fault::Tree)),
            (1, 2, bad(4, Fault::Tree)),
            (3, 1, bad(8, Fault::Tree)),
            // The root itself.
            (4, 0, bad(0, Fault::Tree)),
        ];
        for (i, (level, index, want)) in cases.into_iter().enumerate() {
            let si = si(i as u8);
            let m = make(si, 0, segs(9));
            put(&store, &m).unwrap();
            let at = m.header.node_offset(level, index).unwrap() + 31;
            flip(&share_file(&dir, &si, 0), at);
            assert_eq!(check(si), want, "level {level} node {index}");
        }
        // Roots rewritten with a sound CRC: the tree no longer leads to R_0.
        let m = make(si(9), 0, segs(3));
        put(&store, &m).unwrap();
        let mut roots = m.roots.clone();
        roots[0][0] ^= 1;
        let mut area = [0u8; MAX_HEAD_LEN];
        let len = emit_roots(&roots, &mut area).unwrap();
        let f = OpenOptions::new()
            .write(true)
            .open(share_file(&dir, &si(9), 0))
            .unwrap();
        f.write_all_at(&area[..len], 64).unwrap();
        assert_eq!(check(si(9)), bad(0, Fault::Root));
        // The roots area.
        let m = make(si(10), 0, segs(3));
        put(&store, &m).unwrap();
        flip(&share_file(&dir, &si(10), 0), 64 + 40 * 32);
        assert_eq!(check(si(10)), bad(0, Fault::Roots));
        // Still listed (header sound) but not the head of a Holding.
        let h = store.holding(si(10)).unwrap();
        assert_eq!(h.shares.count(), 1);
        assert!(h.head().is_empty());
        // The header: unreadable, and no longer held.
        let m = make(si(11), 0, segs(3));
        put(&store, &m).unwrap();
        flip(&share_file(&dir, &si(11), 0), 50);
        assert_eq!(check(si(11)), ShareStatus::Unreadable);
        assert_eq!(store.holding(si(11)).unwrap().shares.count(), 0);
        let mut data = vec![0u8; SEGMENT_SIZE];
        let mut proof = [[0u8; 32]; MAX_PROOF];
        assert_eq!(
            store.read_block(si(11), 0, 0, &mut data, &mut proof),
            Err(StoreError::CorruptHeader)
        );
        // A truncated file.
        let m = make(si(12), 0, segs(3));
        put(&store, &m).unwrap();
        let f = OpenOptions::new()
            .write(true)
            .open(share_file(&dir, &si(12), 0))
            .unwrap();
        f.set_len(m.header.file_len() - 1).unwrap();
        assert_eq!(check(si(12)), bad(0, Fault::Length));
        // The last block's proof read from a truncated tree.
        f.set_len(m.header.tree_offset() + 10).unwrap();
        assert_eq!(
            store.read_block(si(12), 0, 2, &mut data, &mut proof),
            Err(StoreError::Corrupt(2))
        );
    }

    #[test]
    fn quota_refused_and_released_on_drop() {
        let dir = TempDir::new("chunk-quota");
        let m = make(si(1), 0, segs(3));
        let len = m.header.file_len();
        let store = ChunkStore::open(dir.path(), 2 * len + len / 2).unwrap();
        let w1 = store.allocate(si(1), 0, segs(3)).unwrap();
        let w2 = store.allocate(si(1), 1, segs(3)).unwrap();
        assert_eq!(store.stat().reserved, 2 * len);
        let e = store.allocate(si(1), 2, segs(3)).err();
        assert_eq!(e, Some(StoreError::Quota));
        assert_eq!(StoreError::Quota.code(), 2);
        drop(w1);
        assert_eq!(store.stat().reserved, len);
        let w3 = store.allocate(si(1), 2, segs(3)).unwrap();
        drop((w2, w3));
        assert_eq!(store.stat().reserved, 0);
        // A stored share counts as used.
        put(&store, &m).unwrap();
        assert_eq!(store.stat().used, len);
        let w = store.allocate(si(1), 1, segs(3)).unwrap();
        assert_eq!(
            store.allocate(si(1), 2, segs(3)).err(),
            Some(StoreError::Quota)
        );
        drop(w);
        assert!(incoming_is_empty(&dir));
        assert_eq!(store.stat().reserved, 0);
    }

    #[test]
    fn exists_and_busy() {
        let dir = TempDir::new("chunk-exists");
        let store = open(&dir);
        let m = make(si(1), 3, segs(2));
        let w = store.allocate(si(1), 3, segs(2)).unwrap();
        assert_eq!(
            store.allocate(si(1), 3, segs(2)).err(),
            Some(StoreError::Busy)
        );
        drop(w);
        put(&store, &m).unwrap();
        assert_eq!(
            store.allocate(si(1), 3, segs(2)).err(),
            Some(StoreError::Exists)
        );
        assert_eq!(put(&store, &m), Err(StoreError::Exists));
        // Bad parameters.
        assert!(matches!(
            store.allocate(si(1), 64, segs(2)),
            Err(StoreError::BadParams(ShareError::BadShare(64)))
        ));
        assert!(matches!(
            store.allocate(si(1), 0, Params::new(4, 3, 10)),
            Err(StoreError::BadParams(_))
        ));
    }

    #[test]
    fn writers_in_flight_are_bounded() {
        let dir = TempDir::new("chunk-bounded");
        let store = open(&dir);
        let ws: Vec<Writer> = (0..MAX_WRITERS as u8)
            .map(|i| store.allocate(si(i), 0, segs(1)).unwrap())
            .collect();
        assert_eq!(
            store.allocate(si(200), 0, segs(1)).err(),
            Some(StoreError::Busy)
        );
        drop(ws);
        assert!(store.allocate(si(200), 0, segs(1)).is_ok());
    }

    #[test]
    fn bad_blocks_and_bad_close() {
        let dir = TempDir::new("chunk-bad");
        let store = open(&dir);
        let m = make(si(1), 0, segs(3));
        let mut w = store.allocate(si(1), 0, segs(3)).unwrap();
        assert_eq!(
            w.write_block(1, &m.blocks[1]),
            Err(StoreError::Malformed("block out of order"))
        );
        assert_eq!(
            w.write_block(0, &m.blocks[0][1..]),
            Err(StoreError::Malformed("block of the wrong length"))
        );
        w.write_block(0, &m.blocks[0]).unwrap();
        assert_eq!(w.next_segment(), 1);
        assert_eq!(
            w.write_block(1, &m.blocks[2]),
            Err(StoreError::Malformed("block of the wrong length"))
        );
        w.write_block(1, &m.blocks[1]).unwrap();
        w.write_block(2, &m.blocks[2]).unwrap();
        assert_eq!(
            w.write_block(3, &m.blocks[2]),
            Err(StoreError::Malformed("block past the last segment"))
        );
        assert_eq!(
            w.close(&m.roots[..63], NOW),
            Err(StoreError::Malformed("wrong number of roots"))
        );
        let w = store.allocate(si(1), 0, segs(3)).unwrap();
        assert_eq!(
            w.close(&m.roots, NOW),
            Err(StoreError::Malformed("close before the last block"))
        );
        // A root that is not the tree's: refused, nothing kept.
        let mut w = store.allocate(si(1), 0, segs(3)).unwrap();
        for (s, b) in m.blocks.iter().enumerate() {
            w.write_block(s as u32, b).unwrap();
        }
        let mut roots = m.roots.clone();
        roots[0][5] ^= 1;
        let e = w.close(&roots, NOW).unwrap_err();
        assert_eq!(
            (e, e.code(), e.to_string()),
            (StoreError::BadRoot, 7, "bad root".into())
        );
        assert!(incoming_is_empty(&dir));
        assert!(!share_file(&dir, &si(1), 0).exists());
        assert_eq!(
            store.stat(),
            StoreStat {
                quota: 100 * GB,
                ..StoreStat::default()
            }
        );
        put(&store, &m).unwrap();
    }

    #[test]
    fn restart_keeps_shares_and_counts() {
        let dir = TempDir::new("chunk-restart");
        let store = open(&dir);
        let a = make(si(1), 0, segs(5));
        let b = make(si(1), 1, segs(5));
        let c = make(si(2), 9, segs(2));
        for m in [&a, &b, &c] {
            put(&store, m).unwrap();
        }
        let before = store.stat();
        // A second store on the same directory is refused while it is open.
        assert_eq!(
            ChunkStore::open(dir.path(), GB).err(),
            Some(OpenError::Locked)
        );
        drop(store);
        let store = open(&dir);
        assert_eq!(store.stat(), before);
        assert_eq!(before.shares, 3);
        assert_eq!(before.files, 2);
        assert_eq!(
            before.used,
            a.header.file_len() + b.header.file_len() + c.header.file_len()
        );
        let mut data = vec![0u8; SEGMENT_SIZE];
        let mut proof = [[0u8; 32]; MAX_PROOF];
        let got = store
            .read_block(si(1), 1, 4, &mut data, &mut proof)
            .unwrap();
        assert_eq!(&data[..got.len], &b.blocks[4][..]);
        // A broken share and stray files are counted or ignored, never
        // removed, at open.
        flip(&share_file(&dir, &si(2), 9), 3);
        fs::write(dir.path().join("shares/not-an-si"), b"x").unwrap();
        fs::write(
            dir.path().join("shares").join(si_hex(&si(2))).join("07"),
            b"x",
        )
        .unwrap();
        drop(store);
        let store = open(&dir);
        assert_eq!(store.stat(), before);
        assert!(share_file(&dir, &si(2), 9).exists());
        assert_eq!(
            store.check(si(2), false, NOW).unwrap().shares[..],
            [(9, ShareStatus::Unreadable)]
        );
    }

    #[test]
    fn incoming_is_emptied_at_open() {
        let dir = TempDir::new("chunk-incoming");
        drop(open(&dir));
        let inc = dir.path().join("incoming");
        fs::write(inc.join("0101.0.1"), b"half a share").unwrap();
        fs::create_dir(inc.join("junk")).unwrap();
        fs::write(inc.join("junk/x"), b"x").unwrap();
        let store = open(&dir);
        assert!(incoming_is_empty(&dir));
        assert_eq!(store.stat().used, 0);
    }

    #[test]
    fn kill_in_the_middle_leaves_nothing_served() {
        let dir = TempDir::new("chunk-kill");
        let store = open(&dir);
        let m = make(si(1), 0, segs(5));
        let mut w = store.allocate(si(1), 0, segs(5)).unwrap();
        for s in 0..3 {
            w.write_block(s, &m.blocks[s as usize]).unwrap();
        }
        // What a kill -9 would leave: the temporary file as it is now.
        let tmp = fs::read_dir(dir.path().join("incoming"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let partial = fs::read(&tmp).unwrap();
        // Nothing is served while it is written.
        assert_eq!(store.holding(si(1)).unwrap().shares.count(), 0);
        assert_eq!(
            store.open_share(si(1), 0).err(),
            Some(StoreError::NoSuchShare)
        );
        drop(w);
        assert!(incoming_is_empty(&dir));
        assert_eq!(store.stat().reserved, 0);
        drop(store);
        fs::write(&tmp, partial).unwrap();
        let store = open(&dir);
        assert!(incoming_is_empty(&dir));
        assert_eq!(store.stat().used, 0);
        assert_eq!(store.holding(si(1)).unwrap().shares.count(), 0);
        assert!(store.check(si(1), true, NOW).unwrap().shares.is_empty());
        put(&store, &m).unwrap();
    }

    #[test]
    fn leases_expire_and_are_swept() {
        let dir = TempDir::new("chunk-lease");
        let store = open(&dir);
        let lease = STORE_LEASE.as_secs();
        let a = make(si(1), 0, segs(2));
        let b = make(si(2), 0, segs(2));
        let c = make(si(3), 0, segs(2));
        put(&store, &a).unwrap();
        let mut w = store.allocate(si(2), 0, segs(2)).unwrap();
        for (s, blk) in b.blocks.iter().enumerate() {
            w.write_block(s as u32, blk).unwrap();
        }
        w.close(&b.roots, NOW + 1000).unwrap();
        put(&store, &c).unwrap();
        let lease_of = |si: &Si| {
            parse_lease(
                &fs::read(dir.path().join("shares").join(si_hex(si)).join("lease")).unwrap(),
            )
        };
        assert_eq!(lease_of(&si(1)), Some(NOW + lease));
        // Renewed by a check, never shortened.
        let r = store.check(si(3), true, NOW + 5000).unwrap();
        assert_eq!(r.renewed, Some(NOW + 5000 + lease));
        assert_eq!(lease_of(&si(3)), Some(NOW + 5000 + lease));
        assert_eq!(
            store.check(si(3), true, NOW).unwrap().renewed,
            Some(NOW + 5000 + lease)
        );
        assert_eq!(store.check(si(9), true, NOW).unwrap().renewed, None);
        assert!(!dir.path().join("shares").join(si_hex(&si(9))).exists());

        let total = store.stat().used;
        assert_eq!(
            store.sweep(NOW + lease - 1).unwrap(),
            SweepReport::default()
        );
        // Only si(1) has expired at NOW + lease.
        let r = store.sweep(NOW + lease).unwrap();
        assert_eq!(
            r,
            SweepReport {
                files: 1,
                shares: 1,
                bytes: a.header.file_len()
            }
        );
        assert!(!dir.path().join("shares").join(si_hex(&si(1))).exists());
        assert_eq!(store.stat().used, total - a.header.file_len());
        assert_eq!(store.stat().files, 2);
        assert_eq!(store.holding(si(1)).unwrap().shares.count(), 0);
        // A writer in flight holds its SI back; a corrupt lease is kept.
        let w = store.allocate(si(2), 1, segs(2)).unwrap();
        fs::write(
            dir.path().join("shares").join(si_hex(&si(3))).join("lease"),
            b"garbage",
        )
        .unwrap();
        assert_eq!(store.sweep(u64::MAX).unwrap(), SweepReport::default());
        drop(w);
        let r = store.sweep(u64::MAX).unwrap();
        assert_eq!((r.files, r.shares), (1, 1));
        // A check with renew repairs the corrupt lease.
        assert!(store.check(si(3), true, NOW).unwrap().renewed.is_some());
        assert_eq!(store.sweep(u64::MAX).unwrap().files, 1);
        assert_eq!(
            store.stat(),
            StoreStat {
                quota: 100 * GB,
                ..StoreStat::default()
            }
        );
        // A share directory without a lease (a put cut before it) goes.
        fs::create_dir(dir.path().join("shares").join(si_hex(&si(4)))).unwrap();
        assert_eq!(store.sweep(0).unwrap().files, 1);
    }

    #[test]
    fn lease_bytes() {
        let b = emit_lease(0x0102_0304_0506_0708);
        assert_eq!(&b[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(parse_lease(&b), Some(0x0102_0304_0506_0708));
        let mut m = b;
        m[3] ^= 1;
        assert_eq!(parse_lease(&m), None);
        assert_eq!(parse_lease(&b[..11]), None);
    }

    #[test]
    fn names() {
        let s: Si = core::array::from_fn(|i| i as u8 * 17);
        let hex = si_hex(&s);
        assert_eq!(hex, "00112233445566778899aabbccddeeff");
        assert_eq!(parse_si_hex(&hex), Some(s));
        assert_eq!(parse_si_hex(&hex.to_uppercase()), None);
        assert_eq!(parse_si_hex(&hex[1..]), None);
        assert_eq!(parse_si_hex("g0112233445566778899aabbccddeeff"), None);
        assert_eq!(parse_share_name("0"), Some(0));
        assert_eq!(parse_share_name("63"), Some(63));
        for bad in ["", "64", "07", "-1", "lease", "100", "+1"] {
            assert_eq!(parse_share_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn unusable_paths_are_refused() {
        let dir = TempDir::new("chunk-paths");
        assert_eq!(
            ChunkStore::open(&dir.path().join("none"), GB).err(),
            Some(OpenError::Missing)
        );
        let file = dir.path().join("file");
        fs::write(&file, b"x").unwrap();
        assert_eq!(
            ChunkStore::open(&file, GB).err(),
            Some(OpenError::NotDirectory)
        );
        assert_eq!(
            ChunkStore::open(&file.join("below"), GB).err(),
            Some(OpenError::NotDirectory)
        );
        // A directory where no file can be made.
        assert!(matches!(
            ChunkStore::open(Path::new("/proc/self"), GB),
            Err(OpenError::ReadOnly(_))
        ));
        assert!(OpenError::ReadOnly(io::ErrorKind::ReadOnlyFilesystem)
            .to_string()
            .contains("not writable"));
    }

    #[test]
    fn read_only_directory_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let test = "chunkstore::read_only_directory_is_refused";
        let dir = TempDir::new("chunk-ro");
        // With a lock file already there (a store that was writable).
        drop(open(&dir));
        if nix::unistd::geteuid().is_root() {
            // Root writes through mode bits: use a read-only mount.
            let mnt = dir.path().join("ro");
            fs::create_dir(&mnt).unwrap();
            let Some(_m) = Mount::tmpfs(test, &mnt, "size=64k,ro") else {
                return;
            };
            assert!(matches!(
                ChunkStore::open(&mnt, GB),
                Err(OpenError::ReadOnly(io::ErrorKind::ReadOnlyFilesystem))
            ));
        } else {
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o555)).unwrap();
            let e = ChunkStore::open(dir.path(), GB).err();
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
            assert!(matches!(e, Some(OpenError::ReadOnly(_))), "{e:?}");
        }
    }

    /// A tmpfs mounted for a test, unmounted on drop (root only).
    struct Mount(PathBuf);

    impl Mount {
        fn tmpfs(test: &str, at: &Path, options: &str) -> Option<Mount> {
            if !nix::unistd::geteuid().is_root() {
                crate::testutil::skip(test, "needs root (mounts a tmpfs)");
                return None;
            }
            let ok = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", options, "cloudy-test"])
                .arg(at)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                crate::testutil::skip(test, "cannot mount a tmpfs");
                return None;
            }
            Some(Mount(at.to_path_buf()))
        }
    }

    impl Drop for Mount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }

    #[test]
    fn full_disk_refuses_and_cleans_up() {
        let test = "chunkstore::full_disk_refuses_and_cleans_up";
        let dir = TempDir::new("chunk-full");
        let mnt = dir.path().join("small");
        fs::create_dir(&mnt).unwrap();
        let Some(_m) = Mount::tmpfs(test, &mnt, "size=256k") else {
            return;
        };
        // A quota far beyond the disk: the disk refuses first.
        let store = ChunkStore::open(&mnt, 100 * GB).unwrap();
        let big = Params::new(1, 1, 3 * S); // about 384 KiB
        let e = store.allocate(si(1), 0, big).err();
        assert_eq!(e, Some(StoreError::Disk(io::ErrorKind::StorageFull)));
        assert_eq!(e.unwrap().code(), 5);
        assert_eq!(store.stat().reserved, 0);
        assert!(fs::read_dir(mnt.join("incoming")).unwrap().count() == 0);
        // What fits still goes in.
        let m = make(si(2), 0, Params::new(1, 1, S + 10));
        put(&store, &m).unwrap();
        assert_eq!(
            store.check(si(2), false, NOW).unwrap().shares[0].1,
            ShareStatus::Ok
        );
        drop(store);
    }

    #[test]
    fn concurrent_writers_of_one_share_one_wins() {
        let dir = TempDir::new("chunk-race");
        let store = open(&dir);
        let m = Arc::new(make(si(1), 5, segs(9)));
        let handles: Vec<_> = (0..MAX_STORE_CONNECTIONS)
            .map(|i| {
                let store = store.clone();
                let m = Arc::clone(&m);
                crate::testutil::spawn_named(move || {
                    if i % 2 == 0 {
                        // Others write other shares meanwhile.
                        let other = make(si(1), i as u8 + 20, segs(9));
                        put(&store, &other).unwrap();
                    }
                    put(&store, &m)
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert!(results
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(StoreError::Busy | StoreError::Exists))));
        let st = store.stat();
        assert_eq!((st.shares, st.files, st.reserved), (5, 1, 0));
        assert!(incoming_is_empty(&dir));
        let report = store.check(si(1), true, NOW).unwrap();
        assert_eq!(report.shares.len(), 5);
        assert!(report.shares.iter().all(|(_, s)| *s == ShareStatus::Ok));
    }

    #[test]
    fn store_is_shareable() {
        fn sync_send<T: Sync + Send>() {}
        sync_send::<ChunkStore>();
        fn send<T: Send>() {}
        send::<Writer>();
        send::<ShareReader>();
    }
}

#[cfg(test)]
mod seeds {
    /// Writes the store_share fuzz seeds (a tool, run by hand:
    /// `cargo test -p cloudy write_store_share_seeds -- --ignored`):
    /// whole share files made by a ChunkStore, and cut ones.
    #[test]
    #[ignore = "a tool: writes fuzz/corpus/store_share seeds"]
    fn write_store_share_seeds() {
        use super::*;
        use crate::store::share::root_of;
        let out =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/store_share");
        fs::create_dir_all(&out).unwrap();
        let dir = crate::testutil::TempDir::new("store-seeds");
        let store = ChunkStore::open(dir.path(), 1 << 30).unwrap();
        let s = SEGMENT_SIZE as u64;
        let cases: [(&str, Params, u8); 5] = [
            ("k1n1_empty", Params::new(1, 1, 0), 0),
            ("k1n1_10b", Params::new(1, 1, 10), 0),
            ("k3n10_100b", Params::new(3, 10, 100), 9),
            ("k64n64_2seg", Params::new(64, 64, s + 3), 5),
            ("k64n64_3seg", Params::new(64, 64, 2 * s + 100), 63),
        ];
        for (i, (name, p, share)) in cases.into_iter().enumerate() {
            let si = [i as u8 + 1; SI_LEN];
            let h = ShareHeader::new(p, si, share).unwrap();
            let blocks: Vec<Vec<u8>> = (0..h.segments())
                .map(|s| vec![s as u8 ^ 0x5A; h.block_len(s).unwrap()])
                .collect();
            let mut leaves: Vec<Hash> = blocks.iter().map(|b| leaf_hash(b)).collect();
            let mut roots = vec![[i as u8; 32]; usize::from(p.n)];
            roots[usize::from(share)] = root_of(&mut leaves).unwrap();
            let mut w = store.allocate(si, share, p).unwrap();
            for (s, b) in blocks.iter().enumerate() {
                w.write_block(s as u32, b).unwrap();
            }
            w.close(&roots, 1_700_000_000).unwrap();
            let file = dir
                .path()
                .join("shares")
                .join(si_hex(&si))
                .join(share.to_string());
            let bytes = fs::read(file).unwrap();
            fs::write(out.join(name), &bytes).unwrap();
            if i == 2 {
                fs::write(out.join(format!("{name}_header")), &bytes[..64]).unwrap();
                fs::write(out.join(format!("{name}_cut")), &bytes[..bytes.len() - 7]).unwrap();
            }
        }
        // A header of the largest file, and its roots: offsets only.
        let h = ShareHeader::new(
            Params::new(64, 64, crate::limits::MAX_FILE_SIZE),
            [0xFF; SI_LEN],
            63,
        )
        .unwrap();
        let mut b = h.emit().to_vec();
        let mut area = [0u8; MAX_HEAD_LEN];
        let n = emit_roots(&[[7; 32]; 64], &mut area).unwrap();
        b.extend_from_slice(&area[..n]);
        fs::write(out.join("largest_head"), b).unwrap();
    }
}
