//! The store protocol's frames (docs/store.md, "Protocol"): parse and emit,
//! pure and sans-IO.
//!
//! A client talks to a storage box over TCP on the overlay. Every message
//! is one frame, `length u32 | type u8 | body`, big-endian, `length`
//! counting the type and the body, 1 ..= [`MAX_STORE_FRAME`]. Requests go
//! client → box, answers box → client with the request's type | 0x80
//! (errors: 0xFF). Layouts (byte counts; `si` is the storage index,
//! `params` the 16-byte [`Params`] block):
//!
//! ```text
//! params     version u8 = 1 | k u8 | n u8 | 0 u8 | segment size u32 | file size u64    16
//!
//! requests
//! 0x01 Allocate  si 16 | share u8 (< n) | params 16                                   33
//! 0x02 Block     segment u32 | data (1 ..= SEGMENT_SIZE)                    (no answer)
//! 0x03 Close     roots: count × 32 (1 ..= MAX_SHARES; count = n: checked by the box)
//! 0x04 Query     si 16                                                                16
//! 0x05 Read      si 16 | share u8 (< MAX_SHARES) | segment u32                        21
//! 0x06 Check     si 16 | renew u8 (0 or 1)                                            17
//! 0x07 Stat      —                                                                     0
//! 0x08 Abort     —  (ours: drop the share being written; no answer)                    0
//!
//! answers
//! 0x81 Allocated —
//! 0x83 Stored    —
//! 0x84 Holding   count u8 | count × share u8 (ascending, < n)
//!                | when count > 0: share header 64 (of the lowest share) | n × root 32
//! 0x85 BlockData segment u32 | proof count u8 (≤ MAX_PROOF) | proof × 32
//!                | data (1 ..= SEGMENT_SIZE)
//! 0x86 Checked   count u8 (≤ MAX_SHARES) | count × (share u8, status u8, bad segment u32)
//!                (shares ascending, < MAX_SHARES)
//! 0x87 StoreStat used u64 | quota u64 | shares u32 | files u32                         24
//! 0xFF Error     code u8 | text (UTF-8, ≤ 200 bytes)
//! ```
//!
//! 0x82 and 0x88 are unused: Block and Abort are not answered. A
//! Holding's header and roots are the share file's first 64 + n × 32
//! bytes (the roots' CRC32C stays on disk: the file root checks them); an
//! Error's text is cut before its first byte that is not UTF-8.
//! `MAX_STORE_FRAME` is `limits.rs`'s (128 KiB + 4096: the largest
//! BlockData with room to spare), not the "1 MiB + 64" docs/store.md says.
//!
//! Invariants:
//! - Parsing borrows from the input ([`Request`], [`Answer`] hold slices);
//!   every length is checked before it is read, and no input panics. A
//!   body must hold its fields exactly: a short one is
//!   [`ProtoError::Truncated`], a long one [`ProtoError::TrailingBytes`].
//! - Emitting writes one whole frame (length prefix included) into the
//!   caller's buffer and allocates nothing; a short buffer is
//!   [`ProtoError::ShortBuffer`]. What `emit` writes parses back to an
//!   equal message: a value the peer would refuse (a Block of 0 bytes, 65
//!   roots) is refused by `emit`. [`emit_block_header`] and
//!   [`emit_block_data_header`] write only the part before the data, so a
//!   sender can put the data behind it itself (a block read from disk
//!   straight into the frame buffer, or a second `write`).
//! - [`FrameReader`] holds one fixed buffer of [`MAX_FRAME_BYTES`], always
//!   enough to complete the frame at its front; a declared length of 0 or
//!   above [`MAX_STORE_FRAME`] is an error before any of the body is
//!   buffered, and after an error the stream is out of step for good.
//!
//! What the protocol cannot check, the caller does: a Close carries
//! exactly n roots, Blocks come in segment order with the right length
//! ([`Params::block_len`]), a Holding's header is the share file's
//! (magic, SI, CRC: `store::share`), a BlockData's proof leads to the root.

use core::fmt;

use crate::limits::{MAX_FILE_SIZE, MAX_SHARES, MAX_STORE_FRAME, SEGMENT_SIZE};

/// Bytes of the length prefix.
pub const LENGTH_LEN: usize = 4;
/// Largest frame on the wire: the prefix and the largest type + body.
pub const MAX_FRAME_BYTES: usize = LENGTH_LEN + MAX_STORE_FRAME;
/// Bytes of a storage index.
pub const SI_LEN: usize = 16;
/// Bytes of a hash (a share root, a proof node).
pub const HASH_LEN: usize = 32;
/// Bytes of the parameters block.
pub const PARAMS_LEN: usize = 16;
/// The only version of the parameters block.
pub const PARAMS_VERSION: u8 = 1;
/// Bytes of a share file's header (docs/store.md, "Share file").
pub const SHARE_HEADER_LEN: usize = 64;
/// Most proof hashes in a BlockData (`store::tree`'s bound). A file of
/// `MAX_FILE_SIZE` has 2^21 segments, so a real proof has at most 21.
pub use super::tree::MAX_PROOF;
/// Longest text of an Error answer, in bytes.
pub const MAX_ERROR_TEXT: usize = 200;
/// Bytes [`emit_block_header`] writes: prefix, type, segment.
pub const BLOCK_HEADER_LEN: usize = LENGTH_LEN + 1 + 4;
/// Bytes [`emit_block_data_header`] writes before the proof: prefix,
/// type, segment, proof count.
pub const BLOCK_DATA_HEADER_BASE: usize = LENGTH_LEN + 1 + 4 + 1;
/// Bytes of one Checked entry.
pub const CHECK_ENTRY_LEN: usize = 6;

/// Where the parameters and the share number lie in a share header.
const HEADER_PARAMS_AT: usize = 8;
const HEADER_SHARE_AT: usize = 40;

pub const TYPE_ALLOCATE: u8 = 0x01;
pub const TYPE_BLOCK: u8 = 0x02;
pub const TYPE_CLOSE: u8 = 0x03;
pub const TYPE_QUERY: u8 = 0x04;
pub const TYPE_READ: u8 = 0x05;
pub const TYPE_CHECK: u8 = 0x06;
pub const TYPE_STAT: u8 = 0x07;
pub const TYPE_ABORT: u8 = 0x08;
pub const TYPE_ALLOCATED: u8 = 0x81;
pub const TYPE_STORED: u8 = 0x83;
pub const TYPE_HOLDING: u8 = 0x84;
pub const TYPE_BLOCK_DATA: u8 = 0x85;
pub const TYPE_CHECKED: u8 = 0x86;
pub const TYPE_STORE_STAT: u8 = 0x87;
pub const TYPE_ERROR: u8 = 0xFF;

// The largest messages fit a frame: a BlockData of a 1-of-N segment with
// the longest proof, a Holding of 64 shares.
const _: () = assert!(1 + 4 + 1 + MAX_PROOF * HASH_LEN + SEGMENT_SIZE <= MAX_STORE_FRAME);
const _: () =
    assert!(1 + 1 + MAX_SHARES + SHARE_HEADER_LEN + MAX_SHARES * HASH_LEN <= MAX_STORE_FRAME);
const _: () = assert!(MAX_SHARES <= u8::MAX as usize && SEGMENT_SIZE <= u32::MAX as usize);

/// Why bytes were refused (parse, [`FrameReader`]) or a message was not
/// written (emit). After a frame error the stream is out of step and the
/// connection should be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtoError {
    /// A frame declared length 0: not even a type byte.
    EmptyFrame,
    /// A frame declared more than [`MAX_STORE_FRAME`] bytes.
    Oversized(u32),
    /// A type byte that no message of this direction has.
    UnknownType(u8),
    /// The body ends before its fields do.
    Truncated,
    /// The body goes on after its fields.
    TrailingBytes,
    /// A field out of range; names the field.
    Malformed(&'static str),
    /// A parameters block of a version other than [`PARAMS_VERSION`].
    Version(u8),
    /// The buffer given to an emitter is shorter than what it writes.
    ShortBuffer,
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::EmptyFrame => f.write_str("frame of length 0"),
            ProtoError::Oversized(n) => write!(
                f,
                "frame of {n} bytes exceeds the limit of {MAX_STORE_FRAME}"
            ),
            ProtoError::UnknownType(t) => write!(f, "unknown message type {t:#04x}"),
            ProtoError::Truncated => f.write_str("message ends before its fields"),
            ProtoError::TrailingBytes => f.write_str("bytes after the message"),
            ProtoError::Malformed(what) => write!(f, "malformed message: {what}"),
            ProtoError::Version(v) => write!(
                f,
                "parameters of version {v}, only {PARAMS_VERSION} is known"
            ),
            ProtoError::ShortBuffer => f.write_str("buffer too short for the message"),
        }
    }
}

impl std::error::Error for ProtoError {}

// ---------------------------------------------------------------------
// Parameters

/// The parameters block (docs/store.md, "Encryption, hashes,
/// capabilities"): `version u8 = 1 | K u8 | N u8 | 0 u8 | S u32 | size
/// u64`, big-endian, 16 bytes. The one definition of it: Allocate carries
/// it, the share header holds it at offset 8, the file root hashes it.
///
/// A `Params` is always valid: 1 ≤ k ≤ n ≤ [`MAX_SHARES`], S is
/// [`SEGMENT_SIZE`] (version 1 fixes it), size ≤ [`MAX_FILE_SIZE`]. So
/// [`Params::to_bytes`] always gives bytes [`Params::parse`] accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Params {
    k: u8,
    n: u8,
    size: u64,
}

impl Params {
    /// Checked parameters of a file of `size` bytes coded `k`-of-`n`.
    pub fn new(k: u8, n: u8, size: u64) -> Result<Params, ProtoError> {
        if k == 0 || k > n {
            return Err(ProtoError::Malformed("params: k"));
        }
        if usize::from(n) > MAX_SHARES {
            return Err(ProtoError::Malformed("params: n"));
        }
        if size > MAX_FILE_SIZE {
            return Err(ProtoError::Malformed("params: file size"));
        }
        Ok(Params { k, n, size })
    }

    /// Reads and checks a parameters block.
    pub fn parse(b: &[u8; PARAMS_LEN]) -> Result<Params, ProtoError> {
        let [version, k, n, reserved, s0, s1, s2, s3, z0, z1, z2, z3, z4, z5, z6, z7] = *b;
        if version != PARAMS_VERSION {
            return Err(ProtoError::Version(version));
        }
        if reserved != 0 {
            return Err(ProtoError::Malformed("params: reserved byte"));
        }
        let segment = u32::from_be_bytes([s0, s1, s2, s3]);
        if usize::try_from(segment) != Ok(SEGMENT_SIZE) {
            return Err(ProtoError::Malformed("params: segment size"));
        }
        Params::new(k, n, u64::from_be_bytes([z0, z1, z2, z3, z4, z5, z6, z7]))
    }

    /// The 16 bytes of the block.
    pub fn to_bytes(&self) -> [u8; PARAMS_LEN] {
        let mut b = [0u8; PARAMS_LEN];
        let (head, size) = b.split_at_mut(8);
        // SEGMENT_SIZE fits a u32 (asserted at compile time above).
        let [s0, s1, s2, s3] = (SEGMENT_SIZE as u32).to_be_bytes();
        head.copy_from_slice(&[PARAMS_VERSION, self.k, self.n, 0, s0, s1, s2, s3]);
        size.copy_from_slice(&self.size.to_be_bytes());
        b
    }

    /// Shares that rebuild a segment (K).
    pub fn k(&self) -> u8 {
        self.k
    }

    /// Shares made (N).
    pub fn n(&self) -> u8 {
        self.n
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Segments of the file: `max(1, ceil(size / S))` (a 0-byte file has
    /// one empty segment), at most 2^21.
    pub fn segments(&self) -> u32 {
        let s = self.size.div_ceil(SEGMENT_SIZE as u64).max(1);
        // size <= 2^38 and S = 2^17: at most 2^21 segments.
        u32::try_from(s).unwrap_or(u32::MAX)
    }

    /// Plaintext bytes of segment `segment`, `None` past the last.
    pub fn segment_len(&self, segment: u32) -> Option<usize> {
        if segment >= self.segments() {
            return None;
        }
        let start = u64::from(segment) * SEGMENT_SIZE as u64;
        let len = self.size.saturating_sub(start).min(SEGMENT_SIZE as u64);
        usize::try_from(len).ok()
    }

    /// Bytes of each block of segment `segment`: `max(1, ceil(L / K))`;
    /// `None` past the last segment. Every segment but the last has the
    /// same.
    pub fn block_len(&self, segment: u32) -> Option<usize> {
        let len = self.segment_len(segment)?;
        Some(len.div_ceil(usize::from(self.k)).max(1))
    }
}

// ---------------------------------------------------------------------
// Borrowed views

/// A run of 32-byte hashes (roots, proof nodes) borrowed from a frame or
/// from the caller; its length is a whole multiple of [`HASH_LEN`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hashes<'a>(&'a [u8]);

impl Hashes<'static> {
    /// No hashes.
    pub const EMPTY: Hashes<'static> = Hashes(&[]);
}

impl<'a> Hashes<'a> {
    /// `bytes` as hashes, `None` unless a whole multiple of 32 bytes.
    pub fn new(bytes: &'a [u8]) -> Option<Hashes<'a>> {
        (bytes.len() % HASH_LEN == 0).then_some(Hashes(bytes))
    }

    pub fn from_arrays(hashes: &'a [[u8; HASH_LEN]]) -> Hashes<'a> {
        Hashes(hashes.as_flattened())
    }

    pub fn len(&self) -> usize {
        self.0.len() / HASH_LEN
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&'a [u8; HASH_LEN]> {
        let at = i.checked_mul(HASH_LEN)?;
        let h = self.0.get(at..at.checked_add(HASH_LEN)?)?;
        <&[u8; HASH_LEN]>::try_from(h).ok()
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a [u8; HASH_LEN]> + 'a {
        // Every chunk is whole: the length is a multiple of HASH_LEN.
        self.0
            .chunks_exact(HASH_LEN)
            .filter_map(|h| <&[u8; HASH_LEN]>::try_from(h).ok())
    }

    /// The hashes back to back, as on the wire.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// Why a Check found a share bad (docs/store.md leaves the values open;
/// these are ours). Unknown values are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckStatus {
    /// Every block, the header and the roots check (bad segment 0).
    Good,
    /// A block fails its CRC or leaf hash; bad segment is the first one.
    BadBlock,
    /// The header, the roots or the tree does not check (bad segment 0).
    BadHeader,
    Unknown(u8),
}

impl CheckStatus {
    pub fn from_u8(v: u8) -> CheckStatus {
        match v {
            0 => CheckStatus::Good,
            1 => CheckStatus::BadBlock,
            2 => CheckStatus::BadHeader,
            v => CheckStatus::Unknown(v),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            CheckStatus::Good => 0,
            CheckStatus::BadBlock => 1,
            CheckStatus::BadHeader => 2,
            CheckStatus::Unknown(v) => v,
        }
    }
}

/// One share's result in a Checked answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckEntry {
    pub share: u8,
    pub status: CheckStatus,
    pub bad_segment: u32,
}

impl CheckEntry {
    fn to_bytes(self) -> [u8; CHECK_ENTRY_LEN] {
        let [a, b, c, d] = self.bad_segment.to_be_bytes();
        [self.share, self.status.to_u8(), a, b, c, d]
    }
}

/// The entries of a Checked answer, borrowed: [`CHECK_ENTRY_LEN`] bytes
/// each, at most [`MAX_SHARES`], shares ascending and below `MAX_SHARES`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checked<'a>(&'a [u8]);

impl<'a> Checked<'a> {
    /// Checks `entries` (the bytes after the count).
    pub fn new(entries: &'a [u8]) -> Result<Checked<'a>, ProtoError> {
        if entries.len() % CHECK_ENTRY_LEN != 0 {
            return Err(ProtoError::Truncated);
        }
        let c = Checked(entries);
        if c.len() > MAX_SHARES {
            return Err(ProtoError::Malformed("check count"));
        }
        let mut last = None;
        for e in c.iter() {
            if usize::from(e.share) >= MAX_SHARES || last.is_some_and(|l| e.share <= l) {
                return Err(ProtoError::Malformed("checked share order"));
            }
            last = Some(e.share);
        }
        Ok(c)
    }

    pub fn len(&self) -> usize {
        self.0.len() / CHECK_ENTRY_LEN
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = CheckEntry> + 'a {
        self.0
            .chunks_exact(CHECK_ENTRY_LEN)
            .filter_map(|e| match *e {
                [share, status, a, b, c, d] => Some(CheckEntry {
                    share,
                    status: CheckStatus::from_u8(status),
                    bad_segment: u32::from_be_bytes([a, b, c, d]),
                }),
                _ => None, // chunks_exact: never
            })
    }

    /// The entries back to back, as on the wire.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// A box's usage (the StoreStat answer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStat {
    /// Bytes of all share files.
    pub used: u64,
    pub quota: u64,
    /// Share files held.
    pub shares: u32,
    /// Distinct storage indexes held.
    pub files: u32,
}

/// The code of an Error answer. Unknown codes are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    Malformed,
    Quota,
    Exists,
    NoSuchShare,
    Disk,
    Busy,
    BadRoot,
    Unknown(u8),
}

impl ErrorCode {
    pub fn from_u8(v: u8) -> ErrorCode {
        match v {
            1 => ErrorCode::Malformed,
            2 => ErrorCode::Quota,
            3 => ErrorCode::Exists,
            4 => ErrorCode::NoSuchShare,
            5 => ErrorCode::Disk,
            6 => ErrorCode::Busy,
            7 => ErrorCode::BadRoot,
            v => ErrorCode::Unknown(v),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            ErrorCode::Malformed => 1,
            ErrorCode::Quota => 2,
            ErrorCode::Exists => 3,
            ErrorCode::NoSuchShare => 4,
            ErrorCode::Disk => 5,
            ErrorCode::Busy => 6,
            ErrorCode::BadRoot => 7,
            ErrorCode::Unknown(v) => v,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Malformed => f.write_str("malformed request"),
            ErrorCode::Quota => f.write_str("over quota"),
            ErrorCode::Exists => f.write_str("share exists"),
            ErrorCode::NoSuchShare => f.write_str("no such share"),
            ErrorCode::Disk => f.write_str("disk error"),
            ErrorCode::Busy => f.write_str("busy"),
            ErrorCode::BadRoot => f.write_str("bad root"),
            ErrorCode::Unknown(v) => write!(f, "error {v}"),
        }
    }
}

// ---------------------------------------------------------------------
// Messages

/// A request (client → box), borrowed from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// Reserve room for share `share` of the file `si`; its blocks follow.
    Allocate {
        si: [u8; SI_LEN],
        share: u8,
        params: Params,
    },
    /// The next block of the share being written.
    Block { segment: u32, data: &'a [u8] },
    /// The share's blocks are all sent: the file's N share roots.
    Close { roots: Hashes<'a> },
    /// Which shares of `si` the box holds.
    Query { si: [u8; SI_LEN] },
    /// Block `segment` of share `share` with its proof.
    Read {
        si: [u8; SI_LEN],
        share: u8,
        segment: u32,
    },
    /// Verify the box's shares of `si`, and renew their lease if `renew`.
    Check { si: [u8; SI_LEN], renew: bool },
    /// The box's usage.
    Stat,
    /// Drop the share being written (after Allocate, before Close) and
    /// its reservation; not answered. Ours: not in docs/store.md yet.
    Abort,
}

/// An answer (box → client), borrowed from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer<'a> {
    Allocated,
    Stored,
    /// The shares of the queried file the box holds, ascending; when there
    /// are any, the lowest one's share header and the file's N roots
    /// (`header` is `None` and `roots` empty exactly when `shares` is
    /// empty).
    Holding {
        shares: &'a [u8],
        header: Option<&'a [u8; SHARE_HEADER_LEN]>,
        roots: Hashes<'a>,
    },
    /// A block and its audit path, sibling hashes from the leaf up.
    BlockData {
        segment: u32,
        proof: Hashes<'a>,
        data: &'a [u8],
    },
    Checked(Checked<'a>),
    StoreStat(StoreStat),
    /// `text` is cut before the first byte that is not UTF-8.
    Error {
        code: ErrorCode,
        text: &'a str,
    },
}

/// Reads fields off the front of a body; never panics.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        let (head, rest) = self.0.split_at_checked(n).ok_or(ProtoError::Truncated)?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<&'a [u8; N], ProtoError> {
        <&[u8; N]>::try_from(self.take(N)?).map_err(|_| ProtoError::Truncated)
    }

    fn u8(&mut self) -> Result<u8, ProtoError> {
        let [b] = *self.array::<1>()?;
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32, ProtoError> {
        Ok(u32::from_be_bytes(*self.array()?))
    }

    fn u64(&mut self) -> Result<u64, ProtoError> {
        Ok(u64::from_be_bytes(*self.array()?))
    }

    fn hashes(&mut self, count: usize) -> Result<Hashes<'a>, ProtoError> {
        Ok(Hashes(self.take(count * HASH_LEN)?))
    }

    /// A block's data: the rest of the body, 1 ..= SEGMENT_SIZE bytes.
    fn block(&mut self) -> Result<&'a [u8], ProtoError> {
        let data = core::mem::take(&mut self.0);
        if data.is_empty() {
            return Err(ProtoError::Truncated);
        }
        if data.len() > SEGMENT_SIZE {
            return Err(ProtoError::Malformed("block length"));
        }
        Ok(data)
    }

    fn finish(self) -> Result<(), ProtoError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ProtoError::TrailingBytes)
        }
    }
}

/// Writes a frame into a caller's buffer; never panics.
struct Writer<'b> {
    buf: &'b mut [u8],
    at: usize,
}

impl<'b> Writer<'b> {
    /// Starts a frame of type `kind`; its length is written by `finish`.
    fn frame(buf: &'b mut [u8], kind: u8) -> Result<Writer<'b>, ProtoError> {
        let mut w = Writer {
            buf,
            at: LENGTH_LEN,
        };
        w.put(&[kind])?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), ProtoError> {
        let end = self
            .at
            .checked_add(bytes.len())
            .ok_or(ProtoError::ShortBuffer)?;
        let out = self
            .buf
            .get_mut(self.at..end)
            .ok_or(ProtoError::ShortBuffer)?;
        out.copy_from_slice(bytes);
        self.at = end;
        Ok(())
    }

    /// Writes the length prefix for `body_len` more bytes after what was
    /// written (data the caller adds itself); returns the bytes written.
    fn finish(self, body_len: usize) -> Result<usize, ProtoError> {
        let len = (self.at - LENGTH_LEN)
            .checked_add(body_len)
            .filter(|&l| l <= MAX_STORE_FRAME)
            .ok_or(ProtoError::Malformed("frame too long"))?;
        // len <= MAX_STORE_FRAME, which fits a u32.
        let prefix = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
        self.buf
            .get_mut(..LENGTH_LEN)
            .ok_or(ProtoError::ShortBuffer)?
            .copy_from_slice(&prefix);
        Ok(self.at)
    }
}

/// The type byte and body of the frame `emit` just wrote into `buf`.
fn written(buf: &[u8], len: usize) -> Result<(u8, &[u8]), ProtoError> {
    match buf.get(LENGTH_LEN..len) {
        Some([kind, body @ ..]) => Ok((*kind, body)),
        _ => Err(ProtoError::ShortBuffer),
    }
}

fn error_text(text: &str) -> &str {
    let mut end = text.len().min(MAX_ERROR_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1; // terminates: 0 is a char boundary
    }
    text.get(..end).unwrap_or_default()
}

impl<'a> Request<'a> {
    /// Parses the body of a frame of type `kind` (from
    /// [`FrameReader::next_frame`]).
    pub fn parse(kind: u8, body: &'a [u8]) -> Result<Request<'a>, ProtoError> {
        let mut c = Cursor(body);
        let request = match kind {
            TYPE_ALLOCATE => {
                let si = *c.array()?;
                let share = c.u8()?;
                let params = Params::parse(c.array()?)?;
                if share >= params.n() {
                    return Err(ProtoError::Malformed("share number"));
                }
                Request::Allocate { si, share, params }
            }
            TYPE_BLOCK => Request::Block {
                segment: c.u32()?,
                data: c.block()?,
            },
            TYPE_CLOSE => {
                let bytes = core::mem::take(&mut c.0);
                let roots = Hashes::new(bytes).ok_or(ProtoError::Truncated)?;
                if roots.is_empty() {
                    return Err(ProtoError::Truncated);
                }
                if roots.len() > MAX_SHARES {
                    return Err(ProtoError::Malformed("root count"));
                }
                Request::Close { roots }
            }
            TYPE_QUERY => Request::Query { si: *c.array()? },
            TYPE_READ => {
                let si = *c.array()?;
                let share = c.u8()?;
                if usize::from(share) >= MAX_SHARES {
                    return Err(ProtoError::Malformed("share number"));
                }
                Request::Read {
                    si,
                    share,
                    segment: c.u32()?,
                }
            }
            TYPE_CHECK => {
                let si = *c.array()?;
                let renew = match c.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(ProtoError::Malformed("renew flag")),
                };
                Request::Check { si, renew }
            }
            TYPE_STAT => Request::Stat,
            TYPE_ABORT => Request::Abort,
            t => return Err(ProtoError::UnknownType(t)),
        };
        c.finish()?;
        Ok(request)
    }
}

impl Request<'_> {
    pub fn kind(&self) -> u8 {
        match self {
            Request::Allocate { .. } => TYPE_ALLOCATE,
            Request::Block { .. } => TYPE_BLOCK,
            Request::Close { .. } => TYPE_CLOSE,
            Request::Query { .. } => TYPE_QUERY,
            Request::Read { .. } => TYPE_READ,
            Request::Check { .. } => TYPE_CHECK,
            Request::Stat => TYPE_STAT,
            Request::Abort => TYPE_ABORT,
        }
    }

    /// Bytes [`Request::emit`] writes: the whole frame, prefix included.
    pub fn buffer_len(&self) -> usize {
        LENGTH_LEN
            + 1
            + match self {
                Request::Allocate { .. } => SI_LEN + 1 + PARAMS_LEN,
                Request::Block { data, .. } => 4 + data.len(),
                Request::Close { roots } => roots.as_bytes().len(),
                Request::Query { .. } => SI_LEN,
                Request::Read { .. } => SI_LEN + 1 + 4,
                Request::Check { .. } => SI_LEN + 1,
                Request::Stat | Request::Abort => 0,
            }
    }

    /// Writes the frame to the front of `buf`; returns its length,
    /// [`Request::buffer_len`]. `ShortBuffer` when `buf` is shorter; an
    /// error when the box would refuse the message (it is then not fully
    /// written). Parsing what it wrote gives `self`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ProtoError> {
        if buf.len() < self.buffer_len() {
            return Err(ProtoError::ShortBuffer);
        }
        let mut w = Writer::frame(buf, self.kind())?;
        match self {
            Request::Allocate { si, share, params } => {
                w.put(si)?;
                w.put(&[*share])?;
                w.put(&params.to_bytes())?;
            }
            Request::Block { segment, data } => {
                w.put(&segment.to_be_bytes())?;
                w.put(data)?;
            }
            Request::Close { roots } => w.put(roots.as_bytes())?,
            Request::Query { si } => w.put(si)?,
            Request::Read { si, share, segment } => {
                w.put(si)?;
                w.put(&[*share])?;
                w.put(&segment.to_be_bytes())?;
            }
            Request::Check { si, renew } => {
                w.put(si)?;
                w.put(&[u8::from(*renew)])?;
            }
            Request::Stat | Request::Abort => {}
        }
        let len = w.finish(0)?;
        // What goes out must be what the box accepts.
        let (kind, body) = written(buf, len)?;
        Request::parse(kind, body)?;
        Ok(len)
    }
}

impl<'a> Answer<'a> {
    /// Parses the body of a frame of type `kind` (from
    /// [`FrameReader::next_frame`]).
    pub fn parse(kind: u8, body: &'a [u8]) -> Result<Answer<'a>, ProtoError> {
        let mut c = Cursor(body);
        let answer = match kind {
            TYPE_ALLOCATED => Answer::Allocated,
            TYPE_STORED => Answer::Stored,
            TYPE_HOLDING => {
                let count = usize::from(c.u8()?);
                if count > MAX_SHARES {
                    return Err(ProtoError::Malformed("share count"));
                }
                let shares = c.take(count)?;
                let ascending = shares.windows(2).all(|w| matches!(w, [a, b] if a < b));
                if !ascending {
                    return Err(ProtoError::Malformed("share order"));
                }
                match (shares.first(), shares.last()) {
                    (Some(lowest), Some(&highest)) => {
                        let header: &[u8; SHARE_HEADER_LEN] = c.array()?;
                        let params = header_params(header)?;
                        if highest >= params.n() {
                            return Err(ProtoError::Malformed("share number"));
                        }
                        if header.get(HEADER_SHARE_AT) != Some(lowest) {
                            return Err(ProtoError::Malformed("header share number"));
                        }
                        Answer::Holding {
                            shares,
                            header: Some(header),
                            roots: c.hashes(usize::from(params.n()))?,
                        }
                    }
                    _ => Answer::Holding {
                        shares,
                        header: None,
                        roots: Hashes::EMPTY,
                    },
                }
            }
            TYPE_BLOCK_DATA => {
                let segment = c.u32()?;
                let count = usize::from(c.u8()?);
                if count > MAX_PROOF {
                    return Err(ProtoError::Malformed("proof count"));
                }
                Answer::BlockData {
                    segment,
                    proof: c.hashes(count)?,
                    data: c.block()?,
                }
            }
            TYPE_CHECKED => {
                let count = usize::from(c.u8()?);
                if count > MAX_SHARES {
                    return Err(ProtoError::Malformed("check count"));
                }
                Answer::Checked(Checked::new(c.take(count * CHECK_ENTRY_LEN)?)?)
            }
            TYPE_STORE_STAT => Answer::StoreStat(StoreStat {
                used: c.u64()?,
                quota: c.u64()?,
                shares: c.u32()?,
                files: c.u32()?,
            }),
            TYPE_ERROR => {
                let code = ErrorCode::from_u8(c.u8()?);
                let raw = core::mem::take(&mut c.0);
                if raw.len() > MAX_ERROR_TEXT {
                    return Err(ProtoError::Malformed("error text length"));
                }
                let text = match core::str::from_utf8(raw) {
                    Ok(t) => t,
                    Err(e) => raw
                        .get(..e.valid_up_to())
                        .and_then(|t| core::str::from_utf8(t).ok())
                        .unwrap_or_default(),
                };
                Answer::Error { code, text }
            }
            t => return Err(ProtoError::UnknownType(t)),
        };
        c.finish()?;
        Ok(answer)
    }
}

/// The parameters in a share header (bytes 8..24), checked.
fn header_params(header: &[u8; SHARE_HEADER_LEN]) -> Result<Params, ProtoError> {
    let p = header
        .get(HEADER_PARAMS_AT..HEADER_PARAMS_AT + PARAMS_LEN)
        .and_then(|p| <&[u8; PARAMS_LEN]>::try_from(p).ok())
        .ok_or(ProtoError::Truncated)?;
    Params::parse(p)
}

impl Answer<'_> {
    pub fn kind(&self) -> u8 {
        match self {
            Answer::Allocated => TYPE_ALLOCATED,
            Answer::Stored => TYPE_STORED,
            Answer::Holding { .. } => TYPE_HOLDING,
            Answer::BlockData { .. } => TYPE_BLOCK_DATA,
            Answer::Checked(_) => TYPE_CHECKED,
            Answer::StoreStat(_) => TYPE_STORE_STAT,
            Answer::Error { .. } => TYPE_ERROR,
        }
    }

    /// Bytes [`Answer::emit`] writes: the whole frame, prefix included.
    pub fn buffer_len(&self) -> usize {
        LENGTH_LEN
            + 1
            + match self {
                Answer::Allocated | Answer::Stored => 0,
                Answer::Holding {
                    shares,
                    header,
                    roots,
                } => 1 + shares.len() + header.map_or(0, |h| h.len()) + roots.as_bytes().len(),
                Answer::BlockData { proof, data, .. } => {
                    4 + 1 + proof.as_bytes().len() + data.len()
                }
                Answer::Checked(c) => 1 + c.as_bytes().len(),
                Answer::StoreStat(_) => 24,
                Answer::Error { text, .. } => 1 + error_text(text).len(),
            }
    }

    /// Writes the frame to the front of `buf`; returns its length,
    /// [`Answer::buffer_len`]. `ShortBuffer` when `buf` is shorter; an
    /// error when the client would refuse the message (it is then not
    /// fully written). An Error's text is cut to [`MAX_ERROR_TEXT`] bytes
    /// at a character boundary. Parsing what it wrote gives `self` (but
    /// for that cut).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ProtoError> {
        if buf.len() < self.buffer_len() {
            return Err(ProtoError::ShortBuffer);
        }
        let mut w = Writer::frame(buf, self.kind())?;
        match self {
            Answer::Allocated | Answer::Stored => {}
            Answer::Holding {
                shares,
                header,
                roots,
            } => {
                let count =
                    u8::try_from(shares.len()).map_err(|_| ProtoError::Malformed("share count"))?;
                w.put(&[count])?;
                w.put(shares)?;
                if let Some(h) = header {
                    w.put(*h)?;
                }
                w.put(roots.as_bytes())?;
            }
            Answer::BlockData {
                segment,
                proof,
                data,
            } => {
                w.put(&segment.to_be_bytes())?;
                let count =
                    u8::try_from(proof.len()).map_err(|_| ProtoError::Malformed("proof count"))?;
                w.put(&[count])?;
                w.put(proof.as_bytes())?;
                w.put(data)?;
            }
            Answer::Checked(c) => {
                let count =
                    u8::try_from(c.len()).map_err(|_| ProtoError::Malformed("check count"))?;
                w.put(&[count])?;
                w.put(c.as_bytes())?;
            }
            Answer::StoreStat(s) => {
                w.put(&s.used.to_be_bytes())?;
                w.put(&s.quota.to_be_bytes())?;
                w.put(&s.shares.to_be_bytes())?;
                w.put(&s.files.to_be_bytes())?;
            }
            Answer::Error { code, text } => {
                w.put(&[code.to_u8()])?;
                w.put(error_text(text).as_bytes())?;
            }
        }
        let len = w.finish(0)?;
        // What goes out must be what the client accepts.
        let (kind, body) = written(buf, len)?;
        Answer::parse(kind, body)?;
        Ok(len)
    }
}

/// Writes the frame of a Block request up to its data: prefix, type and
/// segment ([`BLOCK_HEADER_LEN`] bytes, returned). The frame is complete
/// once the caller puts `data_len` bytes right behind (in `buf` or by a
/// second write). `data_len` must be 1 ..= [`SEGMENT_SIZE`].
pub fn emit_block_header(
    buf: &mut [u8],
    segment: u32,
    data_len: usize,
) -> Result<usize, ProtoError> {
    check_block_len(data_len)?;
    let mut w = Writer::frame(buf, TYPE_BLOCK)?;
    w.put(&segment.to_be_bytes())?;
    w.finish(data_len)
}

/// Writes the frame of a BlockData answer up to its data: prefix, type,
/// segment, proof count and proof (returns those bytes: 10 + 32 × proof
/// count). The frame is complete once the caller puts `data_len` bytes
/// right behind (a block read from disk into `buf`, or a second write).
/// `data_len` must be 1 ..= [`SEGMENT_SIZE`], the proof at most
/// [`MAX_PROOF`] hashes.
pub fn emit_block_data_header(
    buf: &mut [u8],
    segment: u32,
    proof: Hashes<'_>,
    data_len: usize,
) -> Result<usize, ProtoError> {
    check_block_len(data_len)?;
    let count = u8::try_from(proof.len())
        .ok()
        .filter(|&c| usize::from(c) <= MAX_PROOF)
        .ok_or(ProtoError::Malformed("proof count"))?;
    let mut w = Writer::frame(buf, TYPE_BLOCK_DATA)?;
    w.put(&segment.to_be_bytes())?;
    w.put(&[count])?;
    w.put(proof.as_bytes())?;
    w.finish(data_len)
}

/// Writes a Checked answer from its entries (which must be ascending by
/// share, below [`MAX_SHARES`]); returns the frame's length.
pub fn emit_checked(buf: &mut [u8], entries: &[CheckEntry]) -> Result<usize, ProtoError> {
    let count = u8::try_from(entries.len())
        .ok()
        .filter(|&c| usize::from(c) <= MAX_SHARES)
        .ok_or(ProtoError::Malformed("check count"))?;
    let mut w = Writer::frame(buf, TYPE_CHECKED)?;
    w.put(&[count])?;
    for e in entries {
        w.put(&e.to_bytes())?;
    }
    let len = w.finish(0)?;
    let (kind, body) = written(buf, len)?;
    Answer::parse(kind, body)?;
    Ok(len)
}

fn check_block_len(data_len: usize) -> Result<(), ProtoError> {
    match data_len {
        0 => Err(ProtoError::Malformed("empty block")),
        1..=SEGMENT_SIZE => Ok(()),
        _ => Err(ProtoError::Malformed("block length")),
    }
}

// ---------------------------------------------------------------------
// Frames from a byte stream

/// Compact the buffer before a read when less than this is free at its
/// end (and something was consumed), so reads are not tiny.
const MIN_READ: usize = 16 * 1024;

/// Cuts a byte stream into frames (sans-IO), in one fixed buffer of
/// [`MAX_FRAME_BYTES`].
///
/// ```text
/// loop {
///     let n = socket.read(reader.spare_mut())?;   // 0: closed
///     reader.filled(n);
///     while let Some(frame) = reader.next_frame() {
///         let (kind, body) = frame?;              // error: close
///         handle(Request::parse(kind, body)?);
///     }
/// }
/// ```
///
/// Invariants: `start <= start + pending <= end <= buf.len()`; the frame
/// handed out last (`pending` bytes at `start`) stays in place until the
/// next call of [`next_frame`](Self::next_frame) or
/// [`spare_mut`](Self::spare_mut). After `next_frame` returned `None`,
/// `spare_mut` is never empty (the buffer compacts so the frame at its
/// front fits). After an error, `next_frame` returns it again forever
/// and `spare_mut` is empty.
pub struct FrameReader {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    pending: usize,
    failed: Option<ProtoError>,
}

impl Default for FrameReader {
    fn default() -> Self {
        FrameReader::new()
    }
}

impl fmt::Debug for FrameReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameReader")
            .field("start", &self.start)
            .field("end", &self.end)
            .field("pending", &self.pending)
            .field("failed", &self.failed)
            .finish()
    }
}

impl FrameReader {
    /// A reader with its buffer (allocated once, here).
    pub fn new() -> FrameReader {
        FrameReader {
            buf: vec![0; MAX_FRAME_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            pending: 0,
            failed: None,
        }
    }

    /// Bytes received and not yet handed out as a frame (nonzero when the
    /// peer closes: it stopped mid-frame).
    pub fn buffered(&self) -> usize {
        self.end - self.start - self.pending
    }

    /// Drops the frame handed out last.
    fn consume(&mut self) {
        self.start += self.pending;
        self.pending = 0;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Bytes still missing to complete the frame at the front (0 when it
    /// is complete or its length is an error).
    fn missing(&self) -> usize {
        let held = self.buf.get(self.start..self.end).unwrap_or_default();
        match held {
            [a, b, c, d, ..] => {
                let len = u32::from_be_bytes([*a, *b, *c, *d]);
                match usize::try_from(len) {
                    Ok(l @ 1..=MAX_STORE_FRAME) => (LENGTH_LEN + l).saturating_sub(held.len()),
                    _ => 0,
                }
            }
            _ => LENGTH_LEN - held.len(),
        }
    }

    /// Where to read the next bytes into; then call [`filled`](Self::filled).
    pub fn spare_mut(&mut self) -> &mut [u8] {
        if self.failed.is_some() {
            return &mut [];
        }
        self.consume();
        let room = self.buf.len() - self.end;
        if self.start > 0 && room < self.missing().max(MIN_READ) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        self.buf.get_mut(self.end..).unwrap_or_default()
    }

    /// Records that `n` bytes were read into [`spare_mut`](Self::spare_mut)
    /// (more than it offered are ignored).
    pub fn filled(&mut self, n: usize) {
        self.end += n.min(self.buf.len() - self.end);
    }

    /// Whether [`next_frame`](Self::next_frame) has a frame (or an error)
    /// to give: lets a caller read in a loop and then take the frame
    /// outside it. Consumes the frame handed out last.
    pub fn ready(&mut self) -> bool {
        if self.failed.is_some() {
            return true;
        }
        self.consume();
        self.end - self.start >= LENGTH_LEN && self.missing() == 0
    }

    /// The next complete frame's type and body, `None` when more bytes are
    /// needed. The frame stays valid until the next call (which consumes
    /// it). A declared length of 0 or above [`MAX_STORE_FRAME`] is an
    /// error as soon as the 4 length bytes are in.
    pub fn next_frame(&mut self) -> Option<Result<(u8, &[u8]), ProtoError>> {
        if let Some(e) = self.failed {
            return Some(Err(e));
        }
        self.consume();
        let held = self.buf.get(self.start..self.end)?;
        let &[a, b, c, d, ..] = held else {
            return None;
        };
        let len = u32::from_be_bytes([a, b, c, d]);
        let body_len = match usize::try_from(len) {
            Ok(0) => Err(ProtoError::EmptyFrame),
            Ok(l @ 1..=MAX_STORE_FRAME) => Ok(l),
            _ => Err(ProtoError::Oversized(len)),
        };
        let total = match body_len {
            Ok(l) => LENGTH_LEN + l,
            Err(e) => {
                self.failed = Some(e);
                return Some(Err(e));
            }
        };
        if held.len() < total {
            return None;
        }
        self.pending = total;
        match self.buf.get(self.start + LENGTH_LEN..self.start + total)? {
            [kind, body @ ..] => Some(Ok((*kind, body))),
            [] => None, // total > LENGTH_LEN: never
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const SI: [u8; 16] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ];

    /// K 3, N 10, S 131072, size 0x0102_0304_05 (4328719365 bytes).
    const PARAMS_BYTES: [u8; 16] = [
        0x01, 0x03, 0x0a, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04,
        0x05,
    ];

    fn params() -> Params {
        Params::new(3, 10, 0x01_0203_0405).unwrap()
    }

    /// Frame bytes of every message, written out, and whether the body's
    /// last field is variable (a shorter body may still parse).
    fn request_fixtures() -> Vec<(Vec<u8>, Request<'static>, bool)> {
        static BLOCK: [u8; 3] = [0xde, 0xad, 0xbe];
        static ROOTS: [[u8; 32]; 2] = [[0xa0; 32], [0xb1; 32]];
        let mut allocate = vec![0, 0, 0, 34, 0x01];
        allocate.extend_from_slice(&SI);
        allocate.push(9);
        allocate.extend_from_slice(&PARAMS_BYTES);
        let mut close = vec![0, 0, 0, 65, 0x03];
        close.extend_from_slice(&[0xa0; 32]);
        close.extend_from_slice(&[0xb1; 32]);
        let mut query = vec![0, 0, 0, 17, 0x04];
        query.extend_from_slice(&SI);
        let mut read = vec![0, 0, 0, 22, 0x05];
        read.extend_from_slice(&SI);
        read.extend_from_slice(&[7, 0x00, 0x01, 0x00, 0x02]);
        let mut check = vec![0, 0, 0, 18, 0x06];
        check.extend_from_slice(&SI);
        check.push(1);
        vec![
            (
                allocate,
                Request::Allocate {
                    si: SI,
                    share: 9,
                    params: params(),
                },
                false,
            ),
            (
                vec![0, 0, 0, 8, 0x02, 0x00, 0x00, 0x01, 0x02, 0xde, 0xad, 0xbe],
                Request::Block {
                    segment: 0x0102,
                    data: &BLOCK,
                },
                true,
            ),
            (
                close,
                Request::Close {
                    roots: Hashes::from_arrays(&ROOTS),
                },
                true,
            ),
            (query, Request::Query { si: SI }, false),
            (
                read,
                Request::Read {
                    si: SI,
                    share: 7,
                    segment: 0x0001_0002,
                },
                false,
            ),
            (
                check,
                Request::Check {
                    si: SI,
                    renew: true,
                },
                false,
            ),
            (vec![0, 0, 0, 1, 0x07], Request::Stat, false),
            (vec![0, 0, 0, 1, 0x08], Request::Abort, false),
        ]
    }

    /// A share header as the box keeps it: magic, params, SI, share 2;
    /// the rest (segments, sizes, CRC) does not matter to the protocol.
    fn share_header() -> [u8; 64] {
        let mut h = [0u8; 64];
        h[..8].copy_from_slice(b"CLDYSHR1");
        h[8..24].copy_from_slice(&[1, 1, 3, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]);
        h[24..40].copy_from_slice(&SI);
        h[40] = 2;
        h[44..48].copy_from_slice(&[0, 0, 0, 1]);
        h[48..56].copy_from_slice(&[0, 0, 0, 5, 0, 0, 0, 5]);
        h[60..64].copy_from_slice(&[0xc1, 0xc2, 0xc3, 0xc4]);
        h
    }

    fn answer_fixtures() -> Vec<(Vec<u8>, Answer<'static>, bool)> {
        static HEADER: std::sync::OnceLock<[u8; 64]> = std::sync::OnceLock::new();
        static ROOTS: [[u8; 32]; 3] = [[0x10; 32], [0x20; 32], [0x30; 32]];
        static PROOF: [[u8; 32]; 2] = [[0x5a; 32], [0xa5; 32]];
        static CHECKED: [u8; 12] = [0, 0, 0, 0, 0, 0, 3, 1, 0, 0, 0x01, 0x00];
        let header = HEADER.get_or_init(share_header);
        // Holding: share 2 of a 1-of-3 file, its header, the three roots.
        let mut holding = vec![0, 0, 0, 1 + 1 + 1 + 64 + 96, 0x84, 1, 2];
        holding.extend_from_slice(header);
        holding.extend_from_slice(&[0x10; 32]);
        holding.extend_from_slice(&[0x20; 32]);
        holding.extend_from_slice(&[0x30; 32]);
        let mut block_data = vec![0, 0, 0, 72, 0x85, 0, 0, 0, 4, 2];
        block_data.extend_from_slice(&[0x5a; 32]);
        block_data.extend_from_slice(&[0xa5; 32]);
        block_data.extend_from_slice(&[0xca, 0xfe]);
        let mut checked = vec![0, 0, 0, 14, 0x86, 2];
        checked.extend_from_slice(&CHECKED);
        let stat = vec![
            0, 0, 0, 25, 0x87, // StoreStat
            0, 0, 0, 0, 0, 0, 0x10, 0x00, // used 4096
            0, 0, 0, 0, 0x40, 0, 0, 0, // quota 1 GiB
            0, 0, 0, 3, // shares
            0, 0, 0, 2, // files
        ];
        vec![
            (vec![0, 0, 0, 1, 0x81], Answer::Allocated, false),
            (vec![0, 0, 0, 1, 0x83], Answer::Stored, false),
            (
                vec![0, 0, 0, 2, 0x84, 0],
                Answer::Holding {
                    shares: &[],
                    header: None,
                    roots: Hashes::EMPTY,
                },
                false,
            ),
            (
                holding,
                Answer::Holding {
                    shares: &[2],
                    header: Some(header),
                    roots: Hashes::from_arrays(&ROOTS),
                },
                false,
            ),
            (
                block_data,
                Answer::BlockData {
                    segment: 4,
                    proof: Hashes::from_arrays(&PROOF),
                    data: &[0xca, 0xfe],
                },
                true,
            ),
            (
                checked,
                Answer::Checked(Checked::new(&CHECKED).unwrap()),
                false,
            ),
            (
                stat,
                Answer::StoreStat(StoreStat {
                    used: 4096,
                    quota: 1 << 30,
                    shares: 3,
                    files: 2,
                }),
                false,
            ),
            (
                vec![0, 0, 0, 6, 0xff, 0x02, b'f', b'u', b'l', b'l'],
                Answer::Error {
                    code: ErrorCode::Quota,
                    text: "full",
                },
                true,
            ),
        ]
    }

    fn split(frame: &[u8]) -> (u8, &[u8]) {
        (frame[4], &frame[5..])
    }

    #[test]
    fn params_fixture() {
        assert_eq!(params().to_bytes(), PARAMS_BYTES);
        assert_eq!(Params::parse(&PARAMS_BYTES), Ok(params()));
        let p = params();
        assert_eq!((p.k(), p.n(), p.size()), (3, 10, 0x01_0203_0405));
        let bad = |at: usize, v: u8| {
            let mut b = PARAMS_BYTES;
            b[at] = v;
            Params::parse(&b)
        };
        assert_eq!(bad(0, 2), Err(ProtoError::Version(2)));
        assert_eq!(bad(0, 0), Err(ProtoError::Version(0)));
        assert_eq!(bad(1, 0), Err(ProtoError::Malformed("params: k")));
        assert_eq!(bad(1, 11), Err(ProtoError::Malformed("params: k")));
        assert_eq!(bad(2, 65), Err(ProtoError::Malformed("params: n")));
        assert_eq!(
            bad(3, 1),
            Err(ProtoError::Malformed("params: reserved byte"))
        );
        assert_eq!(
            bad(6, 1),
            Err(ProtoError::Malformed("params: segment size"))
        );
        assert_eq!(
            bad(7, 1),
            Err(ProtoError::Malformed("params: segment size"))
        );
        assert_eq!(
            bad(11, 0x40),
            Err(ProtoError::Malformed("params: file size"))
        );
        // The extremes are accepted.
        assert!(Params::new(1, 1, 0).is_ok());
        assert!(Params::new(64, 64, MAX_FILE_SIZE).is_ok());
        assert!(Params::new(1, 65, 0).is_err());
        assert!(Params::new(1, 1, MAX_FILE_SIZE + 1).is_err());
        let p = Params::new(64, 64, MAX_FILE_SIZE).unwrap();
        assert_eq!(Params::parse(&p.to_bytes()), Ok(p));
    }

    #[test]
    fn params_segments_and_blocks() {
        let s = SEGMENT_SIZE as u64;
        let p = |k, size| Params::new(k, 10, size).unwrap();
        // A 0-byte file: one empty segment, blocks of 1 byte.
        assert_eq!(p(3, 0).segments(), 1);
        assert_eq!(p(3, 0).segment_len(0), Some(0));
        assert_eq!(p(3, 0).block_len(0), Some(1));
        assert_eq!(p(3, 0).block_len(1), None);
        assert_eq!(p(3, s).segments(), 1);
        assert_eq!(p(3, s + 1).segments(), 2);
        assert_eq!(p(3, s + 1).segment_len(1), Some(1));
        assert_eq!(p(3, s + 1).block_len(0), Some(43691)); // ceil(131072 / 3)
        assert_eq!(p(3, s + 1).block_len(1), Some(1));
        assert_eq!(p(1, s).block_len(0), Some(SEGMENT_SIZE));
        assert_eq!(p(3, 10).block_len(0), Some(4));
        let big = p(3, MAX_FILE_SIZE);
        assert_eq!(big.segments(), 1 << 21);
        assert_eq!(big.segment_len((1 << 21) - 1), Some(SEGMENT_SIZE));
        assert_eq!(big.segment_len(1 << 21), None);
        assert_eq!(big.block_len(u32::MAX), None);
    }

    #[test]
    fn requests_both_ways() {
        for (frame, req, _) in request_fixtures() {
            let (kind, body) = split(&frame);
            assert_eq!(Request::parse(kind, body), Ok(req), "{req:?}");
            assert_eq!(req.kind(), kind);
            assert_eq!(req.buffer_len(), frame.len());
            let mut out = vec![0u8; frame.len() + 3];
            assert_eq!(req.emit(&mut out), Ok(frame.len()));
            assert_eq!(&out[..frame.len()], &frame[..], "{req:?}");
            // Requests are not answers.
            assert_eq!(
                Answer::parse(kind, body),
                Err(ProtoError::UnknownType(kind))
            );
        }
    }

    #[test]
    fn answers_both_ways() {
        for (frame, ans, _) in answer_fixtures() {
            let (kind, body) = split(&frame);
            assert_eq!(Answer::parse(kind, body), Ok(ans), "{ans:?}");
            assert_eq!(ans.kind(), kind);
            assert_eq!(ans.buffer_len(), frame.len());
            let mut out = vec![0u8; frame.len()];
            assert_eq!(ans.emit(&mut out), Ok(frame.len()));
            assert_eq!(out, frame, "{ans:?}");
            assert_eq!(
                Request::parse(kind, body),
                Err(ProtoError::UnknownType(kind))
            );
        }
    }

    #[test]
    fn views() {
        let (frame, ..) = &answer_fixtures()[5];
        let Ok(Answer::Checked(c)) = Answer::parse(frame[4], &frame[5..]) else {
            panic!("not Checked");
        };
        let entries: Vec<_> = c.iter().collect();
        assert_eq!(
            entries,
            [
                CheckEntry {
                    share: 0,
                    status: CheckStatus::Good,
                    bad_segment: 0
                },
                CheckEntry {
                    share: 3,
                    status: CheckStatus::BadBlock,
                    bad_segment: 256
                },
            ]
        );
        let mut out = [0u8; 32];
        let n = emit_checked(&mut out, &entries).unwrap();
        assert_eq!(&out[..n], &frame[..]);
        let roots = [[1u8; 32], [2; 32]];
        let h = Hashes::from_arrays(&roots);
        assert_eq!((h.len(), h.get(1), h.get(2)), (2, Some(&[2; 32]), None));
        assert_eq!(h.iter().collect::<Vec<_>>(), [&[1; 32], &[2; 32]]);
        assert_eq!(Hashes::new(&[0; 33]), None);
        assert_eq!(h.get(usize::MAX), None);
    }

    #[test]
    fn codes_keep_unknown_values() {
        for v in 0..=255u8 {
            assert_eq!(ErrorCode::from_u8(v).to_u8(), v);
            assert_eq!(CheckStatus::from_u8(v).to_u8(), v);
        }
        assert_eq!(ErrorCode::from_u8(7), ErrorCode::BadRoot);
        assert_eq!(ErrorCode::from_u8(8), ErrorCode::Unknown(8));
        assert_eq!(ErrorCode::from_u8(0), ErrorCode::Unknown(0));
        let frame = [0, 0, 0, 2, 0xff, 0x42];
        assert_eq!(
            Answer::parse(frame[4], &frame[5..]),
            Ok(Answer::Error {
                code: ErrorCode::Unknown(0x42),
                text: ""
            })
        );
        assert_eq!(ErrorCode::NoSuchShare.to_string(), "no such share");
        assert_eq!(
            ProtoError::Oversized(1 << 30).to_string(),
            format!("frame of 1073741824 bytes exceeds the limit of {MAX_STORE_FRAME}")
        );
        assert_eq!(
            ProtoError::UnknownType(0x82).to_string(),
            "unknown message type 0x82"
        );
    }

    /// Every prefix of every body: an error, or (for a variable last
    /// field) a different, shorter message. Every prefix of every frame:
    /// no frame yet.
    #[test]
    fn truncation_at_every_length() {
        let reqs = request_fixtures();
        let answers = answer_fixtures();
        let all = reqs
            .iter()
            .map(|(f, _, v)| (f, *v))
            .chain(answers.iter().map(|(f, _, v)| (f, *v)));
        for (frame, variable) in all {
            let (kind, body) = split(frame);
            for cut in 0..body.len() {
                let short = &body[..cut];
                let parsed = if kind & 0x80 == 0 {
                    Request::parse(kind, short).map(|r| r.buffer_len())
                } else {
                    Answer::parse(kind, short).map(|a| a.buffer_len())
                };
                match parsed {
                    Err(_) => {}
                    Ok(len) => assert!(variable && len == 5 + cut, "{frame:02x?} at {cut}"),
                }
            }
            for cut in 0..frame.len() {
                let mut r = FrameReader::new();
                let spare = r.spare_mut();
                spare[..cut].copy_from_slice(&frame[..cut]);
                r.filled(cut);
                assert_eq!(r.next_frame(), None, "{frame:02x?} at {cut}");
                assert_eq!(r.buffered(), cut);
            }
        }
    }

    #[test]
    fn trailing_and_malformed() {
        for (frame, ..) in &request_fixtures() {
            let (kind, body) = split(frame);
            let mut long = body.to_vec();
            long.push(0);
            match Request::parse(kind, &long) {
                Err(ProtoError::TrailingBytes) => {}
                Ok(Request::Block { .. }) => {}
                // 65 bytes of roots: a partial root.
                Err(ProtoError::Truncated) if kind == TYPE_CLOSE => {}
                other => panic!("{kind}: {other:?}"),
            }
        }
        let p = PARAMS_BYTES;
        let alloc = |share: u8| {
            let mut b = SI.to_vec();
            b.push(share);
            b.extend_from_slice(&p);
            b
        };
        assert!(Request::parse(TYPE_ALLOCATE, &alloc(9)).is_ok());
        assert_eq!(
            Request::parse(TYPE_ALLOCATE, &alloc(10)),
            Err(ProtoError::Malformed("share number"))
        );
        let mut read = SI.to_vec();
        read.extend_from_slice(&[64, 0, 0, 0, 0]);
        assert_eq!(
            Request::parse(TYPE_READ, &read),
            Err(ProtoError::Malformed("share number"))
        );
        let mut check = SI.to_vec();
        check.push(2);
        assert_eq!(
            Request::parse(TYPE_CHECK, &check),
            Err(ProtoError::Malformed("renew flag"))
        );
        assert_eq!(
            Request::parse(TYPE_BLOCK, &[0, 0, 0, 0]),
            Err(ProtoError::Truncated)
        );
        let big = vec![0u8; 4 + SEGMENT_SIZE + 1];
        assert_eq!(
            Request::parse(TYPE_BLOCK, &big),
            Err(ProtoError::Malformed("block length"))
        );
        assert!(Request::parse(TYPE_BLOCK, &big[..4 + SEGMENT_SIZE]).is_ok());
        assert_eq!(Request::parse(TYPE_CLOSE, &[]), Err(ProtoError::Truncated));
        assert_eq!(
            Request::parse(TYPE_CLOSE, &[0; 31]),
            Err(ProtoError::Truncated)
        );
        assert!(Request::parse(TYPE_CLOSE, &[0; 64 * 32]).is_ok());
        assert_eq!(
            Request::parse(TYPE_CLOSE, &[0; 65 * 32]),
            Err(ProtoError::Malformed("root count"))
        );
        for t in [0x00, 0x09, 0x81, 0xff] {
            assert_eq!(Request::parse(t, &[]), Err(ProtoError::UnknownType(t)));
        }
        for t in [0x00, 0x01, 0x80, 0x82, 0x88, 0xfe] {
            assert_eq!(Answer::parse(t, &[]), Err(ProtoError::UnknownType(t)));
        }
    }

    #[test]
    fn answers_malformed() {
        let header = share_header();
        let holding = |shares: &[u8], header: &[u8], roots: usize| {
            let mut b = vec![shares.len() as u8];
            b.extend_from_slice(shares);
            b.extend_from_slice(header);
            b.extend(std::iter::repeat_n(0x77, roots * 32));
            b
        };
        // The fixture holds share 2 of N = 3.
        assert!(Answer::parse(TYPE_HOLDING, &holding(&[2], &header, 3)).is_ok());
        let cases: [(Vec<u8>, ProtoError); 7] = [
            (holding(&[2], &header, 2), ProtoError::Truncated),
            (holding(&[2], &header, 4), ProtoError::TrailingBytes),
            (
                holding(&[2, 2], &header, 3),
                ProtoError::Malformed("share order"),
            ),
            (
                holding(&[2, 3], &header, 3),
                ProtoError::Malformed("share number"),
            ),
            (
                holding(&[1, 2], &header, 3),
                ProtoError::Malformed("header share number"),
            ),
            (holding(&[], &header, 0), ProtoError::TrailingBytes),
            (vec![65], ProtoError::Malformed("share count")),
        ];
        for (body, want) in cases {
            assert_eq!(Answer::parse(TYPE_HOLDING, &body), Err(want), "{body:02x?}");
        }
        let mut bad_params = header;
        bad_params[8] = 2;
        assert_eq!(
            Answer::parse(TYPE_HOLDING, &holding(&[2], &bad_params, 3)),
            Err(ProtoError::Version(2))
        );
        // BlockData: 41 proof hashes, proof cut, no data, too much data.
        let mut b = vec![0, 0, 0, 0, 41];
        b.extend_from_slice(&[0; 41 * 32 + 1]);
        assert_eq!(
            Answer::parse(TYPE_BLOCK_DATA, &b),
            Err(ProtoError::Malformed("proof count"))
        );
        assert_eq!(
            Answer::parse(TYPE_BLOCK_DATA, &[0, 0, 0, 0, 1, 0, 0]),
            Err(ProtoError::Truncated)
        );
        assert_eq!(
            Answer::parse(TYPE_BLOCK_DATA, &[0, 0, 0, 0, 0]),
            Err(ProtoError::Truncated)
        );
        let mut b = vec![0, 0, 0, 0, 0];
        b.resize(5 + SEGMENT_SIZE + 1, 0);
        assert_eq!(
            Answer::parse(TYPE_BLOCK_DATA, &b),
            Err(ProtoError::Malformed("block length"))
        );
        // Checked: count beyond its entries, shares out of order or range.
        assert_eq!(
            Answer::parse(TYPE_CHECKED, &[2, 0, 0, 0, 0, 0, 0]),
            Err(ProtoError::Truncated)
        );
        assert_eq!(
            Answer::parse(TYPE_CHECKED, &[2, 5, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0]),
            Err(ProtoError::Malformed("checked share order"))
        );
        assert_eq!(
            Answer::parse(TYPE_CHECKED, &[1, 64, 0, 0, 0, 0, 0]),
            Err(ProtoError::Malformed("checked share order"))
        );
        assert_eq!(
            Answer::parse(TYPE_CHECKED, &[65]),
            Err(ProtoError::Malformed("check count"))
        );
        // Error: text too long; text not UTF-8 is cut before the bad byte.
        let mut e = vec![1];
        e.extend_from_slice(&[b'x'; 201]);
        assert_eq!(
            Answer::parse(TYPE_ERROR, &e),
            Err(ProtoError::Malformed("error text length"))
        );
        assert!(Answer::parse(TYPE_ERROR, &e[..201]).is_ok());
        assert_eq!(
            Answer::parse(TYPE_ERROR, &[4, b'n', b'o', 0xc3, 0x28, b'x']),
            Ok(Answer::Error {
                code: ErrorCode::NoSuchShare,
                text: "no"
            })
        );
        assert_eq!(Answer::parse(TYPE_ERROR, &[]), Err(ProtoError::Truncated));
        assert_eq!(
            Answer::parse(TYPE_STORE_STAT, &[0; 23]),
            Err(ProtoError::Truncated)
        );
    }

    #[test]
    fn emit_refuses_what_the_peer_would() {
        let mut buf = vec![0u8; MAX_FRAME_BYTES + 64];
        let too_big = vec![0u8; SEGMENT_SIZE + 1];
        let roots = vec![[0u8; 32]; 65];
        let proof = vec![[0u8; 32]; 41];
        let bad: [(Result<usize, ProtoError>, ProtoError); 9] = [
            (
                Request::Block {
                    segment: 0,
                    data: &[],
                }
                .emit(&mut buf),
                ProtoError::Truncated,
            ),
            (
                Request::Block {
                    segment: 0,
                    data: &too_big,
                }
                .emit(&mut buf),
                ProtoError::Malformed("block length"),
            ),
            (
                Request::Close {
                    roots: Hashes::from_arrays(&roots),
                }
                .emit(&mut buf),
                ProtoError::Malformed("root count"),
            ),
            (
                Request::Read {
                    si: SI,
                    share: 64,
                    segment: 0,
                }
                .emit(&mut buf),
                ProtoError::Malformed("share number"),
            ),
            (
                Answer::BlockData {
                    segment: 0,
                    proof: Hashes::from_arrays(&proof),
                    data: &[1],
                }
                .emit(&mut buf),
                ProtoError::Malformed("proof count"),
            ),
            (
                Answer::Holding {
                    shares: &[1],
                    header: None,
                    roots: Hashes::EMPTY,
                }
                .emit(&mut buf),
                ProtoError::Truncated,
            ),
            (
                emit_block_header(&mut buf, 0, 0),
                ProtoError::Malformed("empty block"),
            ),
            (
                emit_block_data_header(&mut buf, 0, Hashes::from_arrays(&proof), 1),
                ProtoError::Malformed("proof count"),
            ),
            (
                emit_checked(
                    &mut buf,
                    &[
                        CheckEntry {
                            share: 1,
                            status: CheckStatus::Good,
                            bad_segment: 0,
                        },
                        CheckEntry {
                            share: 1,
                            status: CheckStatus::Good,
                            bad_segment: 0,
                        },
                    ],
                ),
                ProtoError::Malformed("checked share order"),
            ),
        ];
        for (i, (got, want)) in bad.into_iter().enumerate() {
            assert_eq!(got, Err(want), "case {i}");
        }
        // A long error text is cut at a character boundary.
        let long = "é".repeat(150);
        let e = Answer::Error {
            code: ErrorCode::Disk,
            text: &long,
        };
        let n = e.emit(&mut buf).unwrap();
        assert_eq!(n, e.buffer_len());
        assert_eq!(n, 4 + 1 + 1 + 200);
        let Ok(Answer::Error { text, .. }) = Answer::parse(buf[4], &buf[5..n]) else {
            panic!("not an error");
        };
        assert_eq!(text, "é".repeat(100));
    }

    #[test]
    fn emitters_never_panic_on_short_buffers() {
        let reqs = request_fixtures();
        let answers = answer_fixtures();
        for (frame, req, _) in &reqs {
            for n in 0..frame.len() {
                let mut buf = vec![0u8; n];
                assert_eq!(req.emit(&mut buf), Err(ProtoError::ShortBuffer));
            }
        }
        for (frame, ans, _) in &answers {
            for n in 0..frame.len() {
                let mut buf = vec![0u8; n];
                assert_eq!(ans.emit(&mut buf), Err(ProtoError::ShortBuffer));
            }
        }
        let proof = [[3u8; 32]; 2];
        for n in 0..BLOCK_HEADER_LEN {
            assert_eq!(
                emit_block_header(&mut vec![0; n], 1, 10),
                Err(ProtoError::ShortBuffer)
            );
        }
        for n in 0..10 + 64 {
            assert_eq!(
                emit_block_data_header(&mut vec![0; n], 1, Hashes::from_arrays(&proof), 10),
                Err(ProtoError::ShortBuffer)
            );
        }
        for n in 0..6 + 6 {
            let e = CheckEntry {
                share: 0,
                status: CheckStatus::Good,
                bad_segment: 0,
            };
            assert_eq!(
                emit_checked(&mut vec![0; n], &[e]),
                Err(ProtoError::ShortBuffer)
            );
        }
    }

    /// The header helpers with the data put behind them give the frames
    /// `emit` gives.
    #[test]
    fn header_then_data() {
        let data: Vec<u8> = (0..SEGMENT_SIZE).map(|i| i as u8).collect();
        let mut buf = vec![0u8; MAX_FRAME_BYTES];
        let h = emit_block_header(&mut buf, 77, data.len()).unwrap();
        assert_eq!(h, BLOCK_HEADER_LEN);
        buf[h..h + data.len()].copy_from_slice(&data);
        let mut want = vec![0u8; MAX_FRAME_BYTES];
        let block = Request::Block {
            segment: 77,
            data: &data,
        };
        let n = block.emit(&mut want).unwrap();
        assert_eq!(n, h + data.len());
        assert_eq!(buf[..n], want[..n]);
        assert_eq!(Request::parse(buf[4], &buf[5..n]), Ok(block));

        // The largest BlockData: 40 proof hashes, a block of a whole segment.
        let proof: Vec<[u8; 32]> = (0..MAX_PROOF).map(|i| [i as u8; 32]).collect();
        let proof = Hashes::from_arrays(&proof);
        let h = emit_block_data_header(&mut buf, 9, proof, data.len()).unwrap();
        assert_eq!(h, 10 + 40 * 32);
        buf[h..h + data.len()].copy_from_slice(&data);
        let answer = Answer::BlockData {
            segment: 9,
            proof,
            data: &data,
        };
        let n = answer.emit(&mut want).unwrap();
        assert_eq!(n, h + data.len());
        assert_eq!(buf[..n], want[..n]);
        assert!(n <= MAX_FRAME_BYTES);
        let mut r = FrameReader::new();
        r.spare_mut()[..n].copy_from_slice(&want[..n]);
        r.filled(n);
        let (kind, body) = r.next_frame().unwrap().unwrap();
        assert_eq!(Answer::parse(kind, body), Ok(answer));
        // The header helpers need room for the header only.
        assert_eq!(emit_block_header(&mut [0; BLOCK_HEADER_LEN], 1, 5), Ok(9));
    }

    /// All fixtures back to back.
    fn stream() -> (Vec<u8>, Vec<Vec<u8>>) {
        let frames: Vec<Vec<u8>> = request_fixtures()
            .into_iter()
            .map(|(f, ..)| f)
            .chain(answer_fixtures().into_iter().map(|(f, ..)| f))
            .collect();
        (frames.concat(), frames)
    }

    /// Feeds `bytes` in reads of at most `chunk(i)` bytes; returns the
    /// frames seen, re-framed.
    fn read_all(bytes: &[u8], mut chunk: impl FnMut(usize) -> usize) -> Vec<Vec<u8>> {
        let mut r = FrameReader::new();
        let mut got = Vec::new();
        let mut at = 0;
        let mut i = 0;
        while at < bytes.len() {
            let spare = r.spare_mut();
            assert!(!spare.is_empty(), "stalled at {at}");
            let n = spare.len().min(chunk(i)).min(bytes.len() - at).max(1);
            spare[..n].copy_from_slice(&bytes[at..at + n]);
            r.filled(n);
            at += n;
            i += 1;
            while let Some(f) = r.next_frame() {
                let (kind, body) = f.unwrap();
                let mut frame = ((body.len() + 1) as u32).to_be_bytes().to_vec();
                frame.push(kind);
                frame.extend_from_slice(body);
                got.push(frame);
            }
        }
        assert_eq!(r.buffered(), 0);
        got
    }

    #[test]
    fn reader_byte_by_byte() {
        let (bytes, frames) = stream();
        assert_eq!(read_all(&bytes, |_| 1), frames);
    }

    #[test]
    fn reader_many_frames_in_one_read() {
        let (bytes, frames) = stream();
        assert_eq!(read_all(&bytes, |_| usize::MAX), frames);
        for size in [2, 3, 7, 64, 1000] {
            assert_eq!(read_all(&bytes, |_| size), frames, "reads of {size}");
        }
    }

    /// Small frames, then largest ones that start deep in the buffer: the
    /// reader compacts and never stalls, and the buffer never grows.
    #[test]
    fn reader_compacts() {
        let mut bytes = Vec::new();
        let mut frames = Vec::new();
        let big = |fill: u8| {
            let mut f = (MAX_STORE_FRAME as u32).to_be_bytes().to_vec();
            f.push(0x42);
            f.resize(MAX_FRAME_BYTES, fill);
            f
        };
        for i in 0..3u8 {
            for (f, ..) in request_fixtures() {
                bytes.extend_from_slice(&f);
                frames.push(f);
            }
            bytes.extend_from_slice(&big(i));
            frames.push(big(i));
        }
        let mut x = 7u32;
        let sizes = move |_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % 70_000) as usize
        };
        assert_eq!(read_all(&bytes, sizes), frames);
        assert_eq!(read_all(&bytes, |_| usize::MAX), frames);
        let mut r = FrameReader::new();
        assert_eq!(r.spare_mut().len(), MAX_FRAME_BYTES);
        r.filled(usize::MAX); // more than offered: clamped
        assert_eq!(r.spare_mut().len(), 0);
        assert_eq!(r.buffered(), MAX_FRAME_BYTES);
    }

    #[test]
    fn reader_refuses_bad_lengths_before_buffering() {
        for (head, want) in [
            ([0, 0, 0, 0], ProtoError::EmptyFrame),
            (
                ((MAX_STORE_FRAME + 1) as u32).to_be_bytes(),
                ProtoError::Oversized(MAX_STORE_FRAME as u32 + 1),
            ),
            ([0xff; 4], ProtoError::Oversized(u32::MAX)),
        ] {
            let mut r = FrameReader::new();
            // A good frame first, then the bad length with no body.
            let mut bytes = vec![0, 0, 0, 1, TYPE_STAT];
            bytes.extend_from_slice(&head);
            r.spare_mut()[..bytes.len()].copy_from_slice(&bytes);
            r.filled(bytes.len());
            assert_eq!(r.next_frame(), Some(Ok((TYPE_STAT, &[][..]))));
            assert_eq!(r.next_frame(), Some(Err(want)));
            assert_eq!(r.next_frame(), Some(Err(want)), "sticky");
            assert!(r.spare_mut().is_empty());
        }
        // The largest length is accepted (its type is for the parser).
        let mut r = FrameReader::new();
        r.spare_mut()[..4].copy_from_slice(&(MAX_STORE_FRAME as u32).to_be_bytes());
        r.filled(4);
        assert_eq!(r.next_frame(), None);
        assert_eq!(r.spare_mut().len(), MAX_STORE_FRAME);
    }

    /// Deterministic pseudo-random bodies of every type, as the fuzz
    /// target does: no panics, and what parses re-emits and parses equal.
    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 0x1234_5678;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let mut buf = vec![0u8; MAX_FRAME_BYTES];
        for _ in 0..20_000 {
            let kind = next() as u8;
            let len = (next() % 300) as usize;
            let mut body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Make counts plausible now and then.
            if let Some(b) = body.first_mut() {
                if next() % 2 == 0 {
                    *b %= 4;
                }
            }
            if let Ok(r) = Request::parse(kind & 0x0f, &body) {
                let n = r.emit(&mut buf).unwrap();
                assert_eq!(&buf[5..n], &body[..]);
                assert_eq!(Request::parse(buf[4], &buf[5..n]), Ok(r));
            }
            if let Ok(a) = Answer::parse(kind | 0x80, &body) {
                let n = a.emit(&mut buf).unwrap();
                assert_eq!(Answer::parse(buf[4], &buf[5..n]), Ok(a));
            }
            let _ = Answer::parse(kind, &body);
            let mut r = FrameReader::new();
            let n = body.len().min(r.spare_mut().len());
            r.spare_mut()[..n].copy_from_slice(&body[..n]);
            r.filled(n);
            while let Some(Ok((k, b))) = r.next_frame() {
                let _ = Request::parse(k, b);
            }
        }
    }
}

#[cfg(test)]
mod seeds {
    use super::*;

    /// Writes the store_proto fuzz seeds, one per message type (a tool, run
    /// by hand: `cargo test -p cloudy write_store_proto_seeds -- --ignored`).
    #[test]
    #[ignore = "a tool: writes fuzz/corpus/store_proto"]
    fn write_store_proto_seeds() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/store_proto");
        std::fs::create_dir_all(&dir).unwrap();
        let mut buf = vec![0u8; MAX_FRAME_BYTES];
        let put = |name: &str, len: Result<usize, ProtoError>, buf: &[u8]| {
            std::fs::write(dir.join(name), &buf[..len.unwrap()]).unwrap();
        };
        let si = [0x5e; SI_LEN];
        let params = Params::new(3, 10, 300_000).unwrap();
        let roots = [[0x11; 32], [0x22; 32], [0x33; 32]];
        let block = [0xb0; 100];
        let requests: [(&str, Request<'_>); 8] = [
            (
                "allocate",
                Request::Allocate {
                    si,
                    share: 2,
                    params,
                },
            ),
            (
                "block",
                Request::Block {
                    segment: 1,
                    data: &block,
                },
            ),
            (
                "close",
                Request::Close {
                    roots: Hashes::from_arrays(&roots),
                },
            ),
            ("query", Request::Query { si }),
            (
                "read",
                Request::Read {
                    si,
                    share: 2,
                    segment: 1,
                },
            ),
            ("check", Request::Check { si, renew: true }),
            ("stat", Request::Stat),
            ("abort", Request::Abort),
        ];
        for (name, r) in requests {
            let n = r.emit(&mut buf);
            put(name, n, &buf);
        }
        let mut header = [0u8; SHARE_HEADER_LEN];
        header[..8].copy_from_slice(b"CLDYSHR1");
        header[8..24].copy_from_slice(&Params::new(2, 3, 300_000).unwrap().to_bytes());
        header[24..40].copy_from_slice(&si);
        header[40] = 1;
        let checked = [
            CheckEntry {
                share: 1,
                status: CheckStatus::Good,
                bad_segment: 0,
            },
            CheckEntry {
                share: 2,
                status: CheckStatus::BadBlock,
                bad_segment: 1,
            },
        ];
        let n = emit_checked(&mut buf, &checked);
        put("checked", n, &buf);
        let answers: [(&str, Answer<'_>); 7] = [
            ("allocated", Answer::Allocated),
            ("stored", Answer::Stored),
            (
                "holding",
                Answer::Holding {
                    shares: &[1, 2],
                    header: Some(&header),
                    roots: Hashes::from_arrays(&roots),
                },
            ),
            (
                "holding_none",
                Answer::Holding {
                    shares: &[],
                    header: None,
                    roots: Hashes::EMPTY,
                },
            ),
            (
                "block_data",
                Answer::BlockData {
                    segment: 1,
                    proof: Hashes::from_arrays(&roots[..2]),
                    data: &block,
                },
            ),
            (
                "store_stat",
                Answer::StoreStat(StoreStat {
                    used: 1 << 20,
                    quota: 1 << 30,
                    shares: 12,
                    files: 4,
                }),
            ),
            (
                "error",
                Answer::Error {
                    code: ErrorCode::Quota,
                    text: "quota: 1 MiB free",
                },
            ),
        ];
        for (name, a) in answers {
            let n = a.emit(&mut buf);
            put(name, n, &buf);
        }
    }
}
