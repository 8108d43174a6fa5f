//! The store's client (IO): `put`, `get`, `check` and repair against
//! storage boxes over the overlay (docs/store.md, "Placement and
//! reading").
//!
//! One thread, no allocation per block: a put encodes a segment and
//! writes its N blocks to N connections in turn (the kernel's socket
//! buffers let every box work at once); a get keeps [`READ_AHEAD`] reads
//! outstanding on each of K connections and decodes segment after
//! segment. Memory is one segment's blocks, one frame buffer per
//! connection and the hash-tree state: it does not grow with the file.
//!
//! Failures: a box that refuses, breaks or times out loses its share(s);
//! a put succeeds while enough distinct boxes hold shares
//! (`shares_happy`), and a get moves to another holder of another share,
//! re-reading from the segment where the failure happened. A block that
//! fails its hash is never used.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::cap::{storage_index, ReadCap, Shape, StorageIndex, VerifyCap};
use super::file::{Blocks, Decoder, Encoder, FileError, Repairer, Verifier};
use super::net;
use super::proto::{
    self, emit_block_header, Answer, CheckEntry, CheckStatus, FrameReader, Hashes, Params, Request,
    HASH_LEN,
};
use super::tree::Hash;

/// Reads sent ahead on each connection of a get.
pub const READ_AHEAD: usize = 4;
/// How long a connect may take before the box is skipped.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A storage box the client may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Its node name (rendezvous hashing uses it: stable across clients).
    pub name: String,
    pub addr: SocketAddr,
    /// Overlay round-trip time; 0 for this box.
    pub rtt_us: u64,
}

/// Candidates in rendezvous order for `si`: highest SHA-256(SI ‖ name)
/// first. Every client computes the same order, so readers look where
/// writers put.
pub fn rendezvous_order(si: &StorageIndex, mut c: Vec<Candidate>) -> Vec<Candidate> {
    let score = |name: &str| -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(si);
        h.update(name.as_bytes());
        h.finalize().into()
    };
    c.sort_by_cached_key(|x| std::cmp::Reverse(score(&x.name)));
    c.dedup_by(|a, b| a.name == b.name);
    c
}

/// Why a store command failed.
#[derive(Debug)]
pub enum StoreError {
    NoBoxes,
    /// Fewer distinct boxes than `shares_happy` took a share.
    NotHappy {
        boxes: usize,
        want: usize,
        shares: usize,
        reasons: Vec<String>,
    },
    /// Fewer than K shares could be found or read.
    NotEnoughShares {
        found: usize,
        want: usize,
        reasons: Vec<String>,
    },
    Input(io::Error),
    Output(io::Error),
    File(FileError),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = |r: &[String]| {
            if r.is_empty() {
                String::new()
            } else {
                format!(" ({})", r.join("; "))
            }
        };
        match self {
            StoreError::NoBoxes => write!(
                f,
                "no storage box found in the micro cloud (none publishes _cloudy-store._tcp)"
            ),
            StoreError::NotHappy {
                boxes,
                want,
                shares,
                reasons,
            } => write!(
                f,
                "only {boxes} boxes took a share ({shares} shares), shares_happy wants {want}{}",
                why(reasons)
            ),
            StoreError::NotEnoughShares {
                found,
                want,
                reasons,
            } => write!(
                f,
                "only {found} good shares found, {want} needed{}",
                why(reasons)
            ),
            StoreError::Input(e) => write!(f, "reading the input: {e}"),
            StoreError::Output(e) => write!(f, "writing the output: {e}"),
            StoreError::File(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<FileError> for StoreError {
    fn from(e: FileError) -> Self {
        StoreError::File(e)
    }
}

fn params_of(shape: &Shape) -> Result<Params, String> {
    Params::new(shape.needed, shape.total, shape.size).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------
// One connection

/// A connection to one storage box: a frame reader and one frame buffer.
pub struct Conn {
    pub name: String,
    stream: TcpStream,
    reader: FrameReader,
    out: Box<[u8]>,
}

impl Conn {
    pub fn open(device: &str, c: &Candidate) -> Result<Conn, String> {
        let stream = net::connect(device, c.addr, CONNECT_TIMEOUT)
            .map_err(|e| format!("{}: {e}", c.name))?;
        Ok(Conn {
            name: c.name.clone(),
            stream,
            reader: FrameReader::new(),
            out: vec![0u8; proto::MAX_FRAME_BYTES].into_boxed_slice(),
        })
    }

    fn fail(&self, what: impl fmt::Display) -> String {
        format!("{}: {what}", self.name)
    }

    pub fn send(&mut self, req: &Request<'_>) -> Result<(), String> {
        let n = req.emit(&mut self.out).map_err(|e| self.fail(e))?;
        self.stream
            .write_all(&self.out[..n])
            .map_err(|e| self.fail(e))
    }

    /// A Block frame: header and data in one write.
    pub fn send_block(&mut self, segment: u32, data: &[u8]) -> Result<(), String> {
        let h = emit_block_header(&mut self.out, segment, data.len()).map_err(|e| self.fail(e))?;
        let end = h + data.len();
        let Some(room) = self.out.get_mut(h..end) else {
            return Err(self.fail("block larger than a frame"));
        };
        room.copy_from_slice(data);
        self.stream
            .write_all(&self.out[..end])
            .map_err(|e| self.fail(e))
    }

    /// The next answer (an Error answer comes back as `Err`).
    pub fn answer(&mut self) -> Result<Answer<'_>, String> {
        // Read until a frame is complete, then take it (two steps: a
        // borrowed frame cannot be returned out of the reading loop).
        while !self.reader.ready() {
            let spare = self.reader.spare_mut();
            let n = self
                .stream
                .read(spare)
                .map_err(|e| format!("{}: {e}", self.name))?;
            if n == 0 {
                return Err(self.fail("closed the connection"));
            }
            self.reader.filled(n);
        }
        let name = self.name.clone();
        let (kind, body) = match self.reader.next_frame() {
            Some(Ok(f)) => f,
            Some(Err(e)) => return Err(format!("{name}: {e}")),
            None => return Err(format!("{name}: frame vanished")),
        };
        match Answer::parse(kind, body) {
            Ok(Answer::Error { code, text }) => Err(format!("{name}: {code}: {text}")),
            Ok(a) => Ok(a),
            Err(e) => Err(format!("{name}: {e}")),
        }
    }

    /// Close the share being written with the file's `roots`: `Ok` once
    /// the box stored it.
    pub fn close_share(&mut self, roots: Hashes<'_>) -> Result<(), String> {
        let name = self.name.clone();
        match self.ask(&Request::Close { roots })? {
            Answer::Stored => Ok(()),
            other => Err(format!("{name}: unexpected answer {other:?}")),
        }
    }

    /// Send `req` and wait for its answer.
    pub fn ask(&mut self, req: &Request<'_>) -> Result<Answer<'_>, String> {
        self.send(req)?;
        self.answer()
    }
}

// ---------------------------------------------------------------------
// Put

/// What a put did.
#[derive(Debug)]
pub struct PutReport {
    pub cap: ReadCap,
    /// (share, box) of every share stored.
    pub placed: Vec<(u8, String)>,
    /// Distinct boxes holding a share.
    pub boxes: usize,
    /// Why shares were not placed (box: reason).
    pub failures: Vec<String>,
}

/// How to put.
#[derive(Clone, Debug)]
pub struct PutOptions {
    pub needed: u8,
    pub total: u8,
    pub happy: u8,
    /// The overlay device connections are bound to.
    pub device: String,
}

/// Chooses boxes for shares: rendezvous order, boxes without a share
/// first, boxes that failed never again.
struct Placer<'o> {
    device: &'o str,
    order: &'o [Candidate],
    /// Boxes (indexes into `order`) holding a share of this put.
    taken: Vec<usize>,
    dead: Vec<bool>,
    failures: Vec<String>,
}

impl<'o> Placer<'o> {
    fn new(device: &'o str, order: &'o [Candidate]) -> Placer<'o> {
        Placer {
            device,
            order,
            taken: Vec::new(),
            dead: vec![false; order.len()],
            failures: Vec::new(),
        }
    }

    /// Allocate `share` on the first box from `start` on that takes it.
    fn allocate(
        &mut self,
        start: usize,
        si: &StorageIndex,
        share: u8,
        params: Params,
    ) -> Option<(usize, Conn)> {
        let len = self.order.len();
        let ring = |fresh: bool| {
            let taken = self.taken.clone();
            (0..len)
                .map(move |i| (start + i) % len)
                .filter(move |i| taken.contains(i) != fresh)
        };
        let tries: Vec<usize> = ring(true).chain(ring(false)).collect();
        for i in tries {
            if self.dead[i] {
                continue;
            }
            let mut conn = match Conn::open(self.device, &self.order[i]) {
                Ok(c) => c,
                Err(e) => {
                    self.dead[i] = true;
                    self.failures.push(e);
                    continue;
                }
            };
            let name = conn.name.clone();
            match conn.ask(&Request::Allocate {
                si: *si,
                share,
                params,
            }) {
                Ok(Answer::Allocated) => {
                    self.taken.push(i);
                    return Some((i, conn));
                }
                Ok(other) => self
                    .failures
                    .push(format!("{name}: unexpected answer {other:?}")),
                Err(e) => self.failures.push(e),
            }
        }
        None
    }
}

/// Put `size` bytes from `input` on the boxes of `candidates`;
/// `progress` gets the bytes done after each segment.
pub fn put(
    input: &mut dyn Read,
    size: u64,
    candidates: Vec<Candidate>,
    opts: &PutOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<PutReport, StoreError> {
    if candidates.is_empty() {
        return Err(StoreError::NoBoxes);
    }
    let shape = Shape::new(opts.needed, opts.total, size)
        .map_err(|e| StoreError::File(FileError::Codec(e.to_string())))?;
    let params = params_of(&shape).map_err(|e| StoreError::File(FileError::Codec(e)))?;
    let key: [u8; 32] = super::super::overlay::noise::random_bytes();
    let si = storage_index(&key);
    let order = rendezvous_order(&si, candidates);
    let mut placer = Placer::new(&opts.device, &order);
    // Share i goes to box conns[i].0 through conns[i].1; None once lost.
    let mut conns: Vec<Option<(usize, Conn)>> = (0..shape.total)
        .map(|share| placer.allocate(usize::from(share) % order.len(), &si, share, params))
        .collect();
    let mut failures = std::mem::take(&mut placer.failures);
    let mut enc = Encoder::new(shape, key)?;
    let mut blocks = Blocks::new(&shape);
    let mut seg = vec![0u8; crate::limits::SEGMENT_SIZE];
    let mut done = 0u64;
    for s in 0..shape.segments() {
        let len = shape.segment_len(s);
        input
            .read_exact(&mut seg[..len])
            .map_err(StoreError::Input)?;
        enc.encode_segment(&seg[..len], &mut blocks)?;
        // At most 2^21 segments (MAX_FILE_SIZE / SEGMENT_SIZE): fits u32.
        let s32 = s as u32;
        for (share, slot) in conns.iter_mut().enumerate() {
            if let Some((_, conn)) = slot {
                if let Err(e) = conn.send_block(s32, blocks.block(share)) {
                    failures.push(e);
                    *slot = None;
                }
            }
        }
        done += len as u64;
        progress(done);
    }
    // Nothing may follow the declared size.
    let mut extra = [0u8; 1];
    if matches!(input.read(&mut extra), Ok(n) if n > 0) {
        return Err(StoreError::Input(io::Error::new(
            io::ErrorKind::InvalidData,
            "the input grew while it was being stored",
        )));
    }
    let (roots, cap) = enc.finish()?;
    let roots_ref = Hashes::from_arrays(&roots);
    let mut placed = Vec::new();
    for (share, slot) in conns.iter_mut().enumerate() {
        if let Some((i, conn)) = slot {
            match conn.close_share(roots_ref) {
                Ok(()) => placed.push((share as u8, order[*i].name.clone())),
                Err(e) => failures.push(e),
            }
        }
    }
    let mut boxes: Vec<&str> = placed.iter().map(|(_, b)| b.as_str()).collect();
    boxes.sort_unstable();
    boxes.dedup();
    let boxes = boxes.len();
    if boxes < usize::from(opts.happy) || placed.len() < usize::from(opts.needed) {
        return Err(StoreError::NotHappy {
            boxes,
            want: usize::from(opts.happy),
            shares: placed.len(),
            reasons: failures,
        });
    }
    Ok(PutReport {
        cap,
        placed,
        boxes,
        failures,
    })
}

// ---------------------------------------------------------------------
// Finding shares

/// Ask every box in `order` one question at once (a thread each, at most
/// `MAX_SHARES` boxes a time), each answer turned into `T` by `take`.
fn ask_all<T: Send>(
    device: &str,
    order: &[Candidate],
    request: &Request<'_>,
    take: fn(Answer<'_>) -> Result<T, String>,
) -> Vec<Result<T, String>> {
    let mut out = Vec::with_capacity(order.len());
    for chunk in order.chunks(crate::limits::MAX_SHARES) {
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|c| {
                    scope.spawn(move || {
                        let mut conn = Conn::open(device, c)?;
                        let a = conn.ask(request)?;
                        take(a).map_err(|e| format!("{}: {e}", c.name))
                    })
                })
                .collect();
            for h in handles {
                out.push(
                    h.join()
                        .unwrap_or_else(|_| Err("a query thread failed".into())),
                );
            }
        });
    }
    out
}

/// Who holds which share of a file, with the share roots checked
/// against the capability's root.
pub struct Holders {
    pub verifier: Verifier,
    /// share → candidate indexes (nearest first).
    pub by_share: BTreeMap<u8, Vec<usize>>,
    pub order: Vec<Candidate>,
    pub reasons: Vec<String>,
}

/// Ask every candidate which shares of `vcap`'s file it holds.
pub fn find(
    device: &str,
    vcap: &VerifyCap,
    candidates: Vec<Candidate>,
) -> Result<Holders, StoreError> {
    if candidates.is_empty() {
        return Err(StoreError::NoBoxes);
    }
    let order = rendezvous_order(&vcap.storage_index, candidates);
    let mut verifier = None;
    let mut by_share: BTreeMap<u8, Vec<usize>> = BTreeMap::new();
    let mut reasons = Vec::new();
    // Every box at once: a box that is gone costs one connect timeout,
    // not one each.
    let answers = ask_all(
        device,
        &order,
        &Request::Query {
            si: vcap.storage_index,
        },
        |a| match a {
            Answer::Holding { shares, roots, .. } => Ok((
                shares.to_vec(),
                roots.iter().copied().collect::<Vec<Hash>>(),
            )),
            other => Err(format!("unexpected answer {other:?}")),
        },
    );
    for (i, (c, answer)) in order.iter().zip(answers).enumerate() {
        let (shares, roots) = match answer {
            Ok(x) => x,
            Err(e) => {
                reasons.push(e);
                continue;
            }
        };
        if shares.is_empty() {
            continue;
        }
        if verifier.is_none() {
            match Verifier::new(vcap.shape, &vcap.root, &roots) {
                Ok(v) => verifier = Some(v),
                Err(e) => {
                    reasons.push(format!("{}: {e}", c.name));
                    continue;
                }
            }
        } else if verifier.as_ref().map(|v| v.share_roots()) != Some(&roots[..]) {
            reasons.push(format!(
                "{}: share roots do not match the capability",
                c.name
            ));
            continue;
        }
        for s in shares {
            by_share.entry(s).or_default().push(i);
        }
    }
    for holders in by_share.values_mut() {
        holders.sort_by_key(|&i| order[i].rtt_us);
    }
    let verifier = verifier.ok_or_else(|| StoreError::NotEnoughShares {
        found: 0,
        want: usize::from(vcap.shape.needed),
        reasons: reasons.clone(),
    })?;
    Ok(Holders {
        verifier,
        by_share,
        order,
        reasons,
    })
}

// ---------------------------------------------------------------------
// Reading K shares segment by segment

/// One share being read: its connection and how far it was asked.
struct Reading {
    share: u8,
    conn: Conn,
    /// Next segment to ask for; answers come in the order asked.
    asked: u64,
}

/// Reads segments from K shares, replacing a failing share by another.
struct ShareReader<'h> {
    holders: &'h Holders,
    si: StorageIndex,
    device: String,
    active: Vec<Reading>,
    /// (share, holder) pairs already tried.
    tried: Vec<(u8, usize)>,
    reasons: Vec<String>,
    /// The K blocks of the current segment (buffers reused).
    got: Vec<(u8, Vec<u8>)>,
    filled: usize,
}

impl<'h> ShareReader<'h> {
    fn new(holders: &'h Holders, si: StorageIndex, device: &str) -> Self {
        ShareReader {
            holders,
            si,
            device: device.to_string(),
            active: Vec::new(),
            tried: Vec::new(),
            reasons: holders.reasons.clone(),
            got: Vec::new(),
            filled: 0,
        }
    }

    fn shape(&self) -> Shape {
        *self.holders.verifier.shape()
    }

    /// Open one more share not yet active, data shares and near boxes
    /// first; its reads start at `from`.
    fn add_share(&mut self, from: u64) -> bool {
        let needed = self.shape().needed;
        let mut options: Vec<(u64, u8, usize)> = Vec::new();
        for (&share, hs) in &self.holders.by_share {
            if self.active.iter().any(|r| r.share == share) {
                continue;
            }
            for &h in hs {
                if !self.tried.contains(&(share, h)) {
                    // A data share needs no decoding: worth 0.5 ms of RTT.
                    let penalty = if share < needed { 0 } else { 500 };
                    options.push((self.holders.order[h].rtt_us + penalty, share, h));
                }
            }
        }
        options.sort_unstable();
        for (_, share, h) in options {
            self.tried.push((share, h));
            match Conn::open(&self.device, &self.holders.order[h]) {
                Ok(conn) => {
                    self.active.push(Reading {
                        share,
                        conn,
                        asked: from,
                    });
                    return true;
                }
                Err(e) => self.reasons.push(e),
            }
        }
        false
    }

    /// Block `s` of active reading `idx`, checked, into `self.got`.
    fn read_one(&mut self, idx: usize, s: u64) -> Result<(), String> {
        let segments = self.shape().segments();
        let r = &mut self.active[idx];
        while r.asked < segments && r.asked <= s + READ_AHEAD as u64 {
            // At most 2^21 segments: fits u32.
            r.conn.send(&Request::Read {
                si: self.si,
                share: r.share,
                segment: r.asked as u32,
            })?;
            r.asked += 1;
        }
        let share = r.share;
        let name = r.conn.name.clone();
        match r.conn.answer()? {
            Answer::BlockData {
                segment,
                proof,
                data,
            } if u64::from(segment) == s => {
                self.holders
                    .verifier
                    .check(share, s, data, proof.as_bytes())
                    .map_err(|e| format!("{name}: {e}"))?;
                if self.got.len() <= self.filled {
                    self.got.push((share, Vec::new()));
                }
                let slot = &mut self.got[self.filled];
                slot.0 = share;
                slot.1.clear();
                slot.1.extend_from_slice(data);
                self.filled += 1;
                Ok(())
            }
            other => Err(format!("{name}: unexpected answer {other:?}")),
        }
    }

    /// The K checked blocks of segment `s`: `self.got[..K]`. A share that
    /// fails is dropped and another takes its place from segment `s`.
    fn segment(&mut self, s: u64) -> Result<(), StoreError> {
        let k = usize::from(self.shape().needed);
        self.filled = 0;
        loop {
            while self.active.len() < k {
                if !self.add_share(s) {
                    return Err(StoreError::NotEnoughShares {
                        found: self.active.len(),
                        want: k,
                        reasons: std::mem::take(&mut self.reasons),
                    });
                }
            }
            let mut idx = 0;
            while idx < self.active.len() {
                let share = self.active[idx].share;
                if self.got[..self.filled].iter().any(|(sh, _)| *sh == share) {
                    idx += 1;
                    continue;
                }
                match self.read_one(idx, s) {
                    Ok(()) => idx += 1,
                    Err(e) => {
                        self.reasons.push(e);
                        self.active.remove(idx);
                    }
                }
            }
            if self.filled >= k {
                return Ok(());
            }
        }
    }

    /// The blocks of the segment read last, as the codec takes them.
    fn blocks(&self) -> Vec<(u8, &[u8])> {
        self.got[..self.filled]
            .iter()
            .map(|(sh, b)| (*sh, b.as_slice()))
            .collect()
    }
}

/// What a get did.
#[derive(Debug)]
pub struct GetReport {
    pub bytes: u64,
    /// Problems met and worked around.
    pub reasons: Vec<String>,
}

/// Get `cap`'s file from the boxes of `candidates` into `out`.
pub fn get(
    device: &str,
    cap: &ReadCap,
    candidates: Vec<Candidate>,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<GetReport, StoreError> {
    let vcap = cap.verify_cap();
    let holders = find(device, &vcap, candidates)?;
    let dec = Decoder::new(cap.clone())?;
    let mut blocks = Blocks::new(&cap.shape);
    let mut reader = ShareReader::new(&holders, vcap.storage_index, device);
    let mut done = 0u64;
    for s in 0..cap.shape.segments() {
        reader.segment(s)?;
        let plain = dec.decode_segment(s, &reader.blocks(), &mut blocks)?;
        out.write_all(plain).map_err(StoreError::Output)?;
        done += plain.len() as u64;
        progress(done);
    }
    out.flush().map_err(StoreError::Output)?;
    Ok(GetReport {
        bytes: done,
        reasons: reader.reasons,
    })
}

// ---------------------------------------------------------------------
// Check and repair

/// One box's view of its shares.
#[derive(Debug)]
pub struct BoxCheck {
    pub name: String,
    pub entries: Vec<CheckEntry>,
    pub error: Option<String>,
}

/// What `check` found.
#[derive(Debug)]
pub struct CheckReport {
    pub boxes: Vec<BoxCheck>,
    /// Shares with at least one good copy.
    pub good_shares: Vec<u8>,
    /// Shares re-created by repair (share, box).
    pub repaired: Vec<(u8, String)>,
    /// Why a repair could not place or finish a share (box: reason).
    pub problems: Vec<String>,
}

/// Ask every candidate to verify (and renew the lease of) its shares of
/// `vcap`'s file; with `repair`, re-create the shares with no good copy
/// on boxes that hold none of the file's shares (then any box).
pub fn check(
    device: &str,
    vcap: &VerifyCap,
    candidates: Vec<Candidate>,
    repair: bool,
) -> Result<CheckReport, StoreError> {
    let order = rendezvous_order(&vcap.storage_index, candidates.clone());
    let mut boxes = Vec::new();
    let mut good: Vec<u8> = Vec::new();
    let answers = ask_all(
        device,
        &order,
        &Request::Check {
            si: vcap.storage_index,
            renew: true,
        },
        |a| match a {
            Answer::Checked(ch) => Ok(ch.iter().collect::<Vec<_>>()),
            other => Err(format!("unexpected answer {other:?}")),
        },
    );
    for (c, answer) in order.iter().zip(answers) {
        let mut b = BoxCheck {
            name: c.name.clone(),
            entries: Vec::new(),
            error: None,
        };
        match answer {
            Ok(entries) => {
                for e in &entries {
                    if e.status == CheckStatus::Good && !good.contains(&e.share) {
                        good.push(e.share);
                    }
                }
                b.entries = entries;
            }
            Err(e) => b.error = Some(e),
        }
        boxes.push(b);
    }
    good.sort_unstable();
    let mut report = CheckReport {
        boxes,
        good_shares: good,
        repaired: Vec::new(),
        problems: Vec::new(),
    };
    let missing: Vec<u8> = (0..vcap.shape.total)
        .filter(|s| !report.good_shares.contains(s))
        .collect();
    if repair && !missing.is_empty() {
        repair_shares(device, vcap, candidates, &missing, &mut report)?;
    }
    Ok(report)
}

/// Re-create `missing` shares from K good ones, recording in `report`
/// the shares re-created (share, box) and why others were not.
fn repair_shares(
    device: &str,
    vcap: &VerifyCap,
    candidates: Vec<Candidate>,
    missing: &[u8],
    report: &mut CheckReport,
) -> Result<(), StoreError> {
    let holders = find(device, vcap, candidates)?;
    let shape = vcap.shape;
    let params = params_of(&shape).map_err(|e| StoreError::File(FileError::Codec(e)))?;
    // Boxes without any share of this file first, in rendezvous order.
    let holding: Vec<usize> = holders.by_share.values().flatten().copied().collect();
    let mut targets: Vec<usize> = (0..holders.order.len())
        .filter(|i| !holding.contains(i))
        .collect();
    targets.extend((0..holders.order.len()).filter(|i| holding.contains(i)));
    let ordered: Vec<Candidate> = targets.iter().map(|&i| holders.order[i].clone()).collect();
    let mut placer = Placer::new(device, &ordered);
    let mut conns: Vec<(u8, usize, Conn)> = Vec::new();
    for (j, &share) in missing.iter().enumerate() {
        let start = j % ordered.len().max(1);
        if let Some((i, conn)) = placer.allocate(start, &vcap.storage_index, share, params) {
            conns.push((share, i, conn));
        }
    }
    let mut failures = std::mem::take(&mut placer.failures);
    let rep = Repairer::new(vcap.clone())?;
    let mut blocks = Blocks::new(&shape);
    let mut reader = ShareReader::new(&holders, vcap.storage_index, device);
    for s in 0..shape.segments() {
        reader.segment(s)?;
        rep.recode_segment(s, &reader.blocks(), &mut blocks)?;
        conns.retain_mut(|(share, _, conn)| {
            match conn.send_block(s as u32, blocks.block(usize::from(*share))) {
                Ok(()) => true,
                Err(e) => {
                    failures.push(e);
                    false
                }
            }
        });
    }
    let roots: Vec<[u8; HASH_LEN]> = holders.verifier.share_roots().to_vec();
    for (share, i, conn) in &mut conns {
        match conn.close_share(Hashes::from_arrays(&roots)) {
            Ok(()) => report.repaired.push((*share, ordered[*i].name.clone())),
            Err(e) => failures.push(e),
        }
    }
    report.problems = failures;
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    fn cand(name: &str) -> Candidate {
        Candidate {
            name: name.into(),
            addr: "10.0.0.1:6557".parse().unwrap(),
            rtt_us: 0,
        }
    }

    #[test]
    fn rendezvous_order_is_stable_and_spreads() {
        let names: Vec<String> = (0..10).map(|i| format!("box{i}")).collect();
        let all: Vec<Candidate> = names.iter().map(|n| cand(n)).collect();
        let a = rendezvous_order(&[1; 16], all.clone());
        let mut rev = all.clone();
        rev.reverse();
        assert_eq!(
            a,
            rendezvous_order(&[1; 16], rev),
            "order independent of input order"
        );
        // Another file, another order; removing a box keeps the others' order.
        assert_ne!(a, rendezvous_order(&[2; 16], all.clone()));
        let without: Vec<Candidate> = all
            .iter()
            .filter(|c| c.name != a[0].name)
            .cloned()
            .collect();
        assert_eq!(rendezvous_order(&[1; 16], without), a[1..].to_vec());
        // Duplicates (one box seen twice) count once.
        let mut twice = all.clone();
        twice.push(cand("box3"));
        assert_eq!(rendezvous_order(&[1; 16], twice).len(), 10);
    }
}

/// The whole path on loopback: servers, chunk stores, client (root:
/// the sockets are bound to `lo`).
#[cfg(test)]
mod loopback {
    use super::*;
    use crate::store::chunkstore::ChunkStore;
    use crate::store::server::Server;
    use crate::testutil::TempDir;

    struct Grid {
        servers: Vec<Server>,
        _dirs: Vec<TempDir>,
    }

    /// `n` storage boxes on ports of `lo`; None (skipped) unless root.
    fn grid(test: &str, n: usize, quota: u64) -> Option<(Grid, Vec<Candidate>)> {
        if !nix::unistd::geteuid().is_root() {
            crate::testutil::skip(test, "store sockets bind to a device: needs root");
            return None;
        }
        let mut servers = Vec::new();
        let mut dirs = Vec::new();
        let mut cands = Vec::new();
        for i in 0..n {
            let d = TempDir::new(&format!("grid{i}"));
            let store = ChunkStore::open(d.path(), quota).expect("open store");
            let s = Server::start(store, "lo", 0).expect("start server");
            cands.push(Candidate {
                name: format!("box{i}"),
                addr: SocketAddr::from(([127, 0, 0, 1], s.port())),
                rtt_us: i as u64 * 100,
            });
            servers.push(s);
            dirs.push(d);
        }
        Some((
            Grid {
                servers,
                _dirs: dirs,
            },
            cands,
        ))
    }

    fn opts(k: u8, n: u8, h: u8) -> PutOptions {
        PutOptions {
            needed: k,
            total: n,
            happy: h,
            device: "lo".into(),
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 131 + i / 7) as u8).collect()
    }

    #[test]
    fn put_get_check_repair_on_ten_boxes() {
        let Some((mut g, cands)) = grid(
            "store::client::loopback::put_get_check_repair_on_ten_boxes",
            10,
            64 << 20,
        ) else {
            return;
        };
        let file = data(3 * crate::limits::SEGMENT_SIZE + 777);
        let r = put(
            &mut &file[..],
            file.len() as u64,
            cands.clone(),
            &opts(3, 10, 7),
            &mut |_| {},
        )
        .expect("put");
        assert_eq!(r.placed.len(), 10);
        assert_eq!(r.boxes, 10);
        let text = r.cap.to_text();
        let cap = ReadCap::parse(&text).unwrap();
        let mut out = Vec::new();
        get("lo", &cap, cands.clone(), &mut out, &mut |_| {}).expect("get");
        assert_eq!(out, file);
        // Seven boxes gone: any three still give the file back.
        let gone: Vec<String> = cands.iter().take(7).map(|c| c.name.clone()).collect();
        for s in g.servers.drain(..7) {
            s.stop();
        }
        let left: Vec<Candidate> = cands
            .iter()
            .filter(|c| !gone.contains(&c.name))
            .cloned()
            .collect();
        let mut out = Vec::new();
        get("lo", &cap, cands.clone(), &mut out, &mut |_| {}).expect("get with 3 of 10");
        assert_eq!(out, file);
        // Check sees three good shares; repair puts the seven back on the three.
        let c = check("lo", &cap.verify_cap(), left.clone(), false).expect("check");
        assert_eq!(c.good_shares.len(), 3, "{c:?}");
        let c = check("lo", &cap.verify_cap(), left.clone(), true).expect("repair");
        assert_eq!(c.repaired.len(), 7, "{c:?}");
        let c = check("lo", &cap.verify_cap(), left.clone(), false).expect("check");
        assert_eq!(c.good_shares.len(), 10, "{c:?}");
        let mut out = Vec::new();
        get("lo", &cap, left, &mut out, &mut |_| {}).expect("get after repair");
        assert_eq!(out, file);
    }

    #[test]
    fn small_files_and_unhappy_puts() {
        let Some((_g, cands)) = grid(
            "store::client::loopback::small_files_and_unhappy_puts",
            4,
            64 << 20,
        ) else {
            return;
        };
        for len in [
            0usize,
            1,
            2,
            crate::limits::SEGMENT_SIZE - 1,
            crate::limits::SEGMENT_SIZE,
            crate::limits::SEGMENT_SIZE + 1,
        ] {
            let file = data(len);
            let r = put(
                &mut &file[..],
                len as u64,
                cands.clone(),
                &opts(3, 10, 4),
                &mut |_| {},
            )
            .unwrap_or_else(|e| panic!("put {len}: {e}"));
            assert_eq!(r.boxes, 4);
            let mut out = Vec::new();
            get("lo", &r.cap, cands.clone(), &mut out, &mut |_| {})
                .unwrap_or_else(|e| panic!("get {len}: {e}"));
            assert_eq!(out, file, "len {len}");
        }
        let e = put(
            &mut &b"abc"[..],
            3,
            cands.clone(),
            &opts(3, 10, 7),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(e.to_string().contains("only 4 boxes took a share"), "{e}");
        // An input shorter than its declared size is an error, never a short file.
        let e = put(&mut &b""[..], 5, cands, &opts(3, 10, 1), &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("reading the input"), "{e}");
    }

    /// A member gone bad: it claims to hold share 0 (with the file's true
    /// roots, copied from an honest box) and answers every Read with
    /// bytes of the right length that are not the block. The get skips
    /// it (the block fails its hash) and returns the file; nothing it
    /// sent reaches the output.
    #[test]
    fn a_lying_box_is_skipped() {
        let Some((_g, mut cands)) = grid(
            "store::client::loopback::a_lying_box_is_skipped",
            4,
            64 << 20,
        ) else {
            return;
        };
        let file = data(2 * crate::limits::SEGMENT_SIZE + 5);
        let r = put(
            &mut &file[..],
            file.len() as u64,
            cands.clone(),
            &opts(2, 4, 4),
            &mut |_| {},
        )
        .expect("put");
        let si = r.cap.storage_index();
        let honest = cands[0].clone();
        let listener = crate::store::net::listen("lo", 0).expect("listen");
        let port = listener.local_addr().unwrap().port();
        let liar = std::thread::spawn(move || {
            // Serve connections until the test ends (bounded: 20).
            for _ in 0..20 {
                let Ok((mut s, _)) = listener.accept() else {
                    return;
                };
                let mut reader = FrameReader::new();
                let mut out = vec![0u8; proto::MAX_FRAME_BYTES];
                loop {
                    while !reader.ready() {
                        match s.read(reader.spare_mut()) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => reader.filled(n),
                        }
                    }
                    let Some(Ok((kind, body))) = reader.next_frame() else {
                        break;
                    };
                    let n = match Request::parse(kind, body) {
                        Ok(Request::Query { .. }) => {
                            // The honest box's answer, claimed as share 0.
                            let mut c = Conn::open("lo", &honest).unwrap();
                            let Answer::Holding { header, roots, .. } =
                                c.ask(&Request::Query { si }).unwrap()
                            else {
                                break;
                            };
                            let mut h = *header.unwrap();
                            h[40] = 0;
                            Answer::Holding {
                                shares: &[0],
                                header: Some(&h),
                                roots,
                            }
                            .emit(&mut out)
                            .unwrap()
                        }
                        Ok(Request::Read { segment, .. }) => {
                            let len =
                                Params::new(2, 4, (2 * crate::limits::SEGMENT_SIZE + 5) as u64)
                                    .unwrap()
                                    .block_len(segment)
                                    .unwrap();
                            let junk = vec![0x5a; len];
                            let proof = [[7u8; 32]; 2];
                            Answer::BlockData {
                                segment,
                                proof: Hashes::from_arrays(
                                    &proof[..super::super::tree::proof_len(u64::from(segment), 3)
                                        .unwrap()],
                                ),
                                data: &junk,
                            }
                            .emit(&mut out)
                            .unwrap()
                        }
                        _ => break,
                    };
                    if s.write_all(&out[..n]).is_err() {
                        break;
                    }
                }
            }
        });
        // The liar is the nearest box.
        cands.insert(
            0,
            Candidate {
                name: "liar".into(),
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                rtt_us: 0,
            },
        );
        for c in cands.iter_mut().skip(1) {
            c.rtt_us += 1000;
        }
        let mut out = Vec::new();
        let rep = get("lo", &r.cap, cands, &mut out, &mut |_| {}).expect("get past the liar");
        assert_eq!(out, file);
        assert!(
            rep.reasons
                .iter()
                .any(|r| r.contains("liar") && r.contains("hash root")),
            "{:?}",
            rep.reasons
        );
        drop(liar);
    }
}
