//! DNS messages as mDNS uses them: parse and emit (RFC 1035 §4, with the
//! mDNS changes of RFC 6762 §18).
//!
//! ```text
//! header      id u16 | flags u16 (QR opcode AA TC RD RA Z AD CD rcode) | qd an ns ar: u16
//! question    name | qtype u16 | QU bit (top of qclass, §5.4) + qclass (15 bits)
//! record      name | type u16 | cache-flush bit (top of rrclass, §10.2) + class (15 bits)
//!             | ttl u32 | rdlength u16 | rdata
//! ```
//!
//! [`Message::parse`] returns an owned, validated [`Message`]; after it
//! succeeds nothing can panic. Names are decompressed (RFC 1035 §4.1.4)
//! with a loop guard: every pointer must point strictly before itself and
//! at most [`MAX_POINTER_HOPS`] are followed; a name longer than 255
//! bytes, a label longer than 63, a truncated name, counts that cannot fit
//! the packet, more than [`MDNS_MAX_RECORDS_PER_MESSAGE`] entries, RDATA
//! not matching its rdlength, RDATA beyond [`MDNS_MAX_RDATA`] all give a
//! typed [`WireError`]. Names inside SRV and NSEC RDATA may be compressed
//! (§18.14) and are accepted so.
//!
//! RDATA kept typed: A, AAAA, PTR, SRV, TXT, NSEC (window 0 only, which is
//! all mDNS uses, §6.1); anything else is kept as opaque bytes.
//!
//! [`Writer`] emits with name compression for owner names, PTR and SRV
//! targets (§18.14); [`Writer::set_compress_rdata`] turns it off inside
//! RDATA for legacy unicast answers (RFC 2782 forbids it in SRV for
//! conventional resolvers). NSEC names are never compressed. Each write that
//! does not fit the size limit is rolled back and reported as
//! [`WireError::NoSpace`], so callers can truncate cleanly.

use core::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::name::{Name, MAX_NAME_LEN};
use crate::limits::{MDNS_MAX_RDATA, MDNS_MAX_RECORDS_PER_MESSAGE};

pub const TYPE_A: u16 = 1;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
pub const TYPE_NSEC: u16 = 47;
/// QTYPE `*` (RFC 1035 §3.2.3).
pub const TYPE_ANY: u16 = 255;
pub const CLASS_IN: u16 = 1;
/// QCLASS `*`.
pub const CLASS_ANY: u16 = 255;

/// Top bit of qclass (QU, §5.4) and of rrclass (cache-flush, §10.2).
const TOP_BIT: u16 = 0x8000;

pub const FLAG_QR: u16 = 0x8000;
pub const FLAG_AA: u16 = 0x0400;
pub const FLAG_TC: u16 = 0x0200;
pub const OPCODE_MASK: u16 = 0x7800;
pub const RCODE_MASK: u16 = 0x000f;

pub const HEADER_LEN: usize = 12;
/// Compression pointers followed in one name at most (they must also
/// point strictly backwards, so loops are impossible anyway).
pub const MAX_POINTER_HOPS: usize = 64;
/// Names remembered by a [`Writer`] for compression.
const MAX_COMPRESSION_ENTRIES: usize = 128;
/// Pointer targets must fit 14 bits.
const MAX_POINTER_TARGET: usize = 0x3fff;

/// Why a message was rejected or could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// The message ends inside a header, name, record or RDATA.
    Truncated,
    /// Section counts need more bytes than the packet has.
    CountsBeyondPacket,
    /// More questions + records than [`MDNS_MAX_RECORDS_PER_MESSAGE`].
    TooManyRecords,
    /// A compression pointer not pointing strictly backwards, or too many.
    BadPointer,
    /// A label type other than plain or pointer (0x40, 0x80).
    BadLabel,
    /// A decompressed name longer than 255 bytes.
    NameTooLong,
    /// RDATA inconsistent with its rdlength or type, or too long.
    BadRdata,
    /// The record does not fit the writer's size limit (nothing written).
    NoSpace,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireError::Truncated => "truncated message",
            WireError::CountsBeyondPacket => "section counts beyond the packet",
            WireError::TooManyRecords => "too many records",
            WireError::BadPointer => "bad compression pointer",
            WireError::BadLabel => "bad label type",
            WireError::NameTooLong => "name longer than 255 bytes",
            WireError::BadRdata => "bad rdata",
            WireError::NoSpace => "message full",
        })
    }
}

impl std::error::Error for WireError {}

fn be16(b: &[u8], at: usize) -> Result<u16, WireError> {
    let s = b.get(at..at + 2).ok_or(WireError::Truncated)?;
    Ok(u16::from_be_bytes([s[0], s[1]]))
}

fn be32(b: &[u8], at: usize) -> Result<u32, WireError> {
    let s = b.get(at..at + 4).ok_or(WireError::Truncated)?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Read a possibly compressed name at `start`; returns it and the offset
/// just after its in-place bytes.
pub fn read_name(msg: &[u8], start: usize) -> Result<(Name, usize), WireError> {
    let mut wire: heapless::Vec<u8, MAX_NAME_LEN> = heapless::Vec::new();
    let mut pos = start;
    let mut end = None;
    let mut hops = 0;
    loop {
        let len = *msg.get(pos).ok_or(WireError::Truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                wire.push(0).map_err(|_| WireError::NameTooLong)?;
                return Ok((Name::from_wire_checked(wire), end.unwrap_or(pos + 1)));
            }
            0x00 => {
                let n = usize::from(len);
                let label = msg.get(pos + 1..pos + 1 + n).ok_or(WireError::Truncated)?;
                // Keep room for the root byte.
                if wire.len() + 1 + n + 1 > MAX_NAME_LEN {
                    return Err(WireError::NameTooLong);
                }
                let _ = wire.push(len);
                let _ = wire.extend_from_slice(label);
                pos += 1 + n;
            }
            0xc0 => {
                let low = *msg.get(pos + 1).ok_or(WireError::Truncated)?;
                let target = usize::from(len & 0x3f) << 8 | usize::from(low);
                hops += 1;
                if target >= pos || hops > MAX_POINTER_HOPS {
                    return Err(WireError::BadPointer);
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return Err(WireError::BadLabel),
        }
    }
}

/// SRV RDATA (RFC 2782).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: Name,
}

/// TXT RDATA (RFC 6763 §6): raw character-strings, kept as received.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Txt(Vec<u8>);

impl Txt {
    /// From `KEY=VALUE` strings; an empty list is the single empty string
    /// (RFC 6763 §6.1). `None` if a string exceeds 255 bytes or the whole
    /// exceeds `max`.
    pub fn from_strings<S: AsRef<[u8]>>(strings: &[S], max: usize) -> Option<Txt> {
        let mut v = Vec::new();
        for s in strings {
            let s = s.as_ref();
            v.push(u8::try_from(s.len()).ok()?);
            v.extend_from_slice(s);
        }
        if v.is_empty() {
            v.push(0);
        }
        (v.len() <= max).then_some(Txt(v))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The character-strings; empty ones (the RFC 6763 §6.1 placeholder) skipped.
    pub fn strings(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut rest: &[u8] = &self.0;
        core::iter::from_fn(move || loop {
            let (&len, tail) = rest.split_first()?;
            let s = tail.get(..usize::from(len))?;
            rest = tail.get(usize::from(len)..).unwrap_or(&[]);
            if !s.is_empty() {
                return Some(s);
            }
        })
    }

    /// Lossy UTF-8 strings, for display.
    pub fn to_strings(&self) -> Vec<String> {
        self.strings()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }
}

/// NSEC RDATA as mDNS uses it (RFC 6762 §6.1): next name (the owner) and
/// the types present, window block 0 only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nsec {
    pub next: Name,
    pub bitmap: [u8; 32],
}

impl Nsec {
    pub fn new(next: Name, types: &[u16]) -> Nsec {
        let mut bitmap = [0u8; 32];
        for &t in types {
            if let Some(b) = bitmap.get_mut(usize::from(t / 8)) {
                *b |= 0x80 >> (t % 8);
            }
        }
        Nsec { next, bitmap }
    }

    pub fn has(&self, t: u16) -> bool {
        self.bitmap
            .get(usize::from(t / 8))
            .is_some_and(|b| b & (0x80 >> (t % 8)) != 0)
    }

    /// Bitmap bytes to emit: trailing zero bytes dropped.
    fn used(&self) -> &[u8] {
        let n = self
            .bitmap
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i + 1);
        &self.bitmap[..n]
    }
}

/// Typed RDATA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Ptr(Name),
    Srv(Srv),
    Txt(Txt),
    Nsec(Nsec),
    /// Any other type, bytes as received (≤ [`MDNS_MAX_RDATA`]).
    Other {
        rtype: u16,
        data: Vec<u8>,
    },
}

impl RData {
    pub fn rtype(&self) -> u16 {
        match self {
            RData::A(_) => TYPE_A,
            RData::Aaaa(_) => TYPE_AAAA,
            RData::Ptr(_) => TYPE_PTR,
            RData::Srv(_) => TYPE_SRV,
            RData::Txt(_) => TYPE_TXT,
            RData::Nsec(_) => TYPE_NSEC,
            RData::Other { rtype, .. } => *rtype,
        }
    }

    /// Uncompressed RDATA bytes (RFC 6762 §8.2 compares these).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        match self {
            RData::A(a) => v.extend_from_slice(&a.octets()),
            RData::Aaaa(a) => v.extend_from_slice(&a.octets()),
            RData::Ptr(n) => v.extend_from_slice(n.as_wire()),
            RData::Srv(s) => {
                v.extend_from_slice(&s.priority.to_be_bytes());
                v.extend_from_slice(&s.weight.to_be_bytes());
                v.extend_from_slice(&s.port.to_be_bytes());
                v.extend_from_slice(s.target.as_wire());
            }
            RData::Txt(t) => v.extend_from_slice(t.as_bytes()),
            RData::Nsec(n) => {
                v.extend_from_slice(n.next.as_wire());
                let used = n.used();
                if !used.is_empty() {
                    v.push(0);
                    v.push(used.len() as u8);
                    v.extend_from_slice(used);
                }
            }
            RData::Other { data, .. } => v.extend_from_slice(data),
        }
        v
    }

    fn parse(msg: &[u8], rtype: u16, start: usize, len: usize) -> Result<RData, WireError> {
        let end = start + len;
        let data = msg.get(start..end).ok_or(WireError::Truncated)?;
        if len > MDNS_MAX_RDATA {
            return Err(WireError::BadRdata);
        }
        // A name inside RDATA must end exactly where expected.
        let name_in = |at: usize| -> Result<(Name, usize), WireError> {
            let (n, after) = read_name(msg, at)?;
            if after > end {
                return Err(WireError::BadRdata);
            }
            Ok((n, after))
        };
        Ok(match rtype {
            TYPE_A => {
                let a: [u8; 4] = data.try_into().map_err(|_| WireError::BadRdata)?;
                RData::A(Ipv4Addr::from(a))
            }
            TYPE_AAAA => {
                let a: [u8; 16] = data.try_into().map_err(|_| WireError::BadRdata)?;
                RData::Aaaa(Ipv6Addr::from(a))
            }
            TYPE_PTR => {
                let (n, after) = name_in(start)?;
                if after != end {
                    return Err(WireError::BadRdata);
                }
                RData::Ptr(n)
            }
            TYPE_SRV => {
                if len < 7 {
                    return Err(WireError::BadRdata);
                }
                let (target, after) = name_in(start + 6)?;
                if after != end {
                    return Err(WireError::BadRdata);
                }
                RData::Srv(Srv {
                    priority: be16(msg, start)?,
                    weight: be16(msg, start + 2)?,
                    port: be16(msg, start + 4)?,
                    target,
                })
            }
            TYPE_TXT => {
                // The character-strings must tile the RDATA exactly.
                let mut at = 0;
                while at < data.len() {
                    at += 1 + usize::from(data[at]);
                }
                if at != data.len() {
                    return Err(WireError::BadRdata);
                }
                RData::Txt(Txt(data.to_vec()))
            }
            TYPE_NSEC => {
                let (next, mut at) = name_in(start)?;
                let mut bitmap = [0u8; 32];
                while at < end {
                    let block = *msg.get(at).ok_or(WireError::Truncated)?;
                    let blen = usize::from(*msg.get(at + 1).ok_or(WireError::BadRdata)?);
                    if blen == 0 || blen > 32 || at + 2 + blen > end {
                        return Err(WireError::BadRdata);
                    }
                    if block == 0 {
                        for (d, s) in bitmap.iter_mut().zip(&msg[at + 2..at + 2 + blen]) {
                            *d |= s;
                        }
                    }
                    at += 2 + blen;
                }
                RData::Nsec(Nsec { next, bitmap })
            }
            rtype => RData::Other {
                rtype,
                data: data.to_vec(),
            },
        })
    }
}

/// A question (RFC 1035 §4.1.2; QU bit per RFC 6762 §5.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub qtype: u16,
    /// Class without the QU bit.
    pub qclass: u16,
    /// QU: the querier asks for a unicast response (§5.4).
    pub unicast_response: bool,
}

impl Question {
    /// Whether `r` answers this question (type and class, ANY included).
    pub fn matches(&self, r: &Record) -> bool {
        (self.qtype == TYPE_ANY || self.qtype == r.rtype())
            && (self.qclass == CLASS_ANY || self.qclass == r.class)
            && self.name == r.name
    }
}

/// A resource record (RFC 1035 §4.1.3; cache-flush bit per RFC 6762 §10.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub name: Name,
    /// Class without the cache-flush bit.
    pub class: u16,
    pub cache_flush: bool,
    pub ttl: u32,
    pub data: RData,
}

impl Record {
    pub fn new(name: Name, ttl: u32, cache_flush: bool, data: RData) -> Record {
        Record {
            name,
            class: CLASS_IN,
            cache_flush,
            ttl,
            data,
        }
    }

    pub fn rtype(&self) -> u16 {
        self.data.rtype()
    }

    /// Same name, type, class and RDATA (TTL and cache-flush ignored).
    pub fn same_data(&self, other: &Record) -> bool {
        self.class == other.class && self.name == other.name && self.data == other.data
    }

    /// Same name, type and class (the "RRset" of RFC 6762 §10.2).
    pub fn same_rrset(&self, other: &Record) -> bool {
        self.class == other.class && self.rtype() == other.rtype() && self.name == other.name
    }
}

/// A whole DNS message.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Message {
    pub id: u16,
    pub flags: u16,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
}

impl Message {
    pub fn is_response(&self) -> bool {
        self.flags & FLAG_QR != 0
    }

    pub fn opcode(&self) -> u16 {
        (self.flags & OPCODE_MASK) >> 11
    }

    pub fn rcode(&self) -> u16 {
        self.flags & RCODE_MASK
    }

    pub fn truncated(&self) -> bool {
        self.flags & FLAG_TC != 0
    }

    /// Parse and validate a whole message (see the module doc).
    pub fn parse(b: &[u8]) -> Result<Message, WireError> {
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let id = be16(b, 0)?;
        let flags = be16(b, 2)?;
        let counts = [be16(b, 4)?, be16(b, 6)?, be16(b, 8)?, be16(b, 10)?].map(usize::from);
        if counts.iter().sum::<usize>() > MDNS_MAX_RECORDS_PER_MESSAGE {
            return Err(WireError::TooManyRecords);
        }
        // A question takes ≥ 5 bytes (root name + type + class), a record ≥ 11.
        let min = counts[0] * 5 + (counts[1] + counts[2] + counts[3]) * 11;
        if min > b.len() - HEADER_LEN {
            return Err(WireError::CountsBeyondPacket);
        }
        let mut pos = HEADER_LEN;
        let mut questions = Vec::with_capacity(counts[0]);
        for _ in 0..counts[0] {
            let (name, after) = read_name(b, pos)?;
            let qtype = be16(b, after)?;
            let qclass = be16(b, after + 2)?;
            pos = after + 4;
            questions.push(Question {
                name,
                qtype,
                qclass: qclass & !TOP_BIT,
                unicast_response: qclass & TOP_BIT != 0,
            });
        }
        let mut sections: [Vec<Record>; 3] = Default::default();
        for (section, &count) in sections.iter_mut().zip(&counts[1..]) {
            section.reserve_exact(count);
            for _ in 0..count {
                let (name, after) = read_name(b, pos)?;
                let rtype = be16(b, after)?;
                let class = be16(b, after + 2)?;
                let ttl = be32(b, after + 4)?;
                let rdlen = usize::from(be16(b, after + 8)?);
                let start = after + 10;
                let data = RData::parse(b, rtype, start, rdlen)?;
                pos = start + rdlen;
                section.push(Record {
                    name,
                    class: class & !TOP_BIT,
                    cache_flush: class & TOP_BIT != 0,
                    ttl,
                    data,
                });
            }
        }
        let [answers, authorities, additionals] = sections;
        Ok(Message {
            id,
            flags,
            questions,
            answers,
            authorities,
            additionals,
        })
    }

    /// Emit into at most `limit` bytes.
    pub fn emit(&self, limit: usize) -> Result<Vec<u8>, WireError> {
        let mut w = Writer::new(self.id, self.flags, limit)?;
        for q in &self.questions {
            w.question(q)?;
        }
        for (section, records) in [
            (Section::Answer, &self.answers),
            (Section::Authority, &self.authorities),
            (Section::Additional, &self.additionals),
        ] {
            for r in records {
                w.record(section, r)?;
            }
        }
        Ok(w.finish())
    }
}

/// Record sections, in the order they must be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Answer = 1,
    Authority = 2,
    Additional = 3,
}

/// Builds a message within a size limit, compressing names.
pub struct Writer {
    buf: Vec<u8>,
    limit: usize,
    counts: [u16; 4],
    /// Highest section written so far (0 = questions).
    section: usize,
    /// (offset, name suffix written there) for compression.
    table: Vec<(u16, Name)>,
    compress_rdata: bool,
}

impl Writer {
    /// A message with this header; `NoSpace` if `limit` < 12.
    pub fn new(id: u16, flags: u16, limit: usize) -> Result<Writer, WireError> {
        if limit < HEADER_LEN {
            return Err(WireError::NoSpace);
        }
        let mut buf = Vec::with_capacity(limit.min(1500));
        buf.extend_from_slice(&id.to_be_bytes());
        buf.extend_from_slice(&flags.to_be_bytes());
        buf.extend_from_slice(&[0; 8]);
        Ok(Writer {
            buf,
            limit,
            counts: [0; 4],
            section: 0,
            table: Vec::new(),
            compress_rdata: true,
        })
    }

    /// Compress names inside PTR and SRV RDATA (default on).
    pub fn set_compress_rdata(&mut self, on: bool) {
        self.compress_rdata = on;
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|&c| c == 0)
    }

    /// Entries written in questions, answers, authority, additional.
    pub fn counts(&self) -> [u16; 4] {
        self.counts
    }

    fn write_name(&mut self, name: &Name, compress: bool) {
        let n = name.label_count();
        let mut hit = None;
        if compress {
            'outer: for i in 0..n {
                let suffix = name.suffix_wire(i);
                // Byte-exact, so the case of every name survives on the wire.
                for (off, known) in &self.table {
                    if known.as_wire() == suffix {
                        hit = Some((i, *off));
                        break 'outer;
                    }
                }
            }
        }
        let upto = hit.map_or(n, |(i, _)| i);
        for (i, label) in name.labels().take(upto).enumerate() {
            let at = self.buf.len();
            if compress && at <= MAX_POINTER_TARGET && self.table.len() < MAX_COMPRESSION_ENTRIES {
                let mut wire = heapless::Vec::new();
                // A suffix of a valid name is a valid name.
                let _ = wire.extend_from_slice(name.suffix_wire(i));
                self.table.push((at as u16, Name::from_wire_checked(wire)));
            }
            self.buf.push(label.len() as u8);
            self.buf.extend_from_slice(label);
        }
        match hit {
            Some((_, off)) => self.buf.extend_from_slice(&(0xc000 | off).to_be_bytes()),
            None => self.buf.push(0),
        }
    }

    /// Run `f`; if the result exceeds the limit, undo it.
    fn guarded(&mut self, slot: usize, f: impl FnOnce(&mut Writer)) -> Result<(), WireError> {
        let (len, table) = (self.buf.len(), self.table.len());
        f(self);
        if self.buf.len() > self.limit || self.counts[slot] == u16::MAX {
            self.buf.truncate(len);
            self.table.truncate(table);
            return Err(WireError::NoSpace);
        }
        self.counts[slot] += 1;
        Ok(())
    }

    /// Append a question. Questions come before any record.
    pub fn question(&mut self, q: &Question) -> Result<(), WireError> {
        if self.section > 0 {
            return Err(WireError::NoSpace);
        }
        self.guarded(0, |w| {
            w.write_name(&q.name, true);
            w.buf.extend_from_slice(&q.qtype.to_be_bytes());
            let class = q.qclass | if q.unicast_response { TOP_BIT } else { 0 };
            w.buf.extend_from_slice(&class.to_be_bytes());
        })
    }

    /// Append a record to `section`; sections must not go backwards.
    pub fn record(&mut self, section: Section, r: &Record) -> Result<(), WireError> {
        let s = section as usize;
        if s < self.section {
            return Err(WireError::NoSpace);
        }
        // Only API-built RDATA can be this long (parsed RDATA ≤ MDNS_MAX_RDATA).
        let raw_len = match &r.data {
            RData::Txt(t) => t.as_bytes().len(),
            RData::Other { data, .. } => data.len(),
            _ => 0,
        };
        if raw_len > usize::from(u16::MAX) {
            return Err(WireError::NoSpace);
        }
        self.guarded(s, |w| {
            w.write_name(&r.name, true);
            w.buf.extend_from_slice(&r.rtype().to_be_bytes());
            let class = r.class | if r.cache_flush { TOP_BIT } else { 0 };
            w.buf.extend_from_slice(&class.to_be_bytes());
            w.buf.extend_from_slice(&r.ttl.to_be_bytes());
            let len_at = w.buf.len();
            w.buf.extend_from_slice(&[0, 0]);
            let c = w.compress_rdata;
            match &r.data {
                RData::Ptr(n) => w.write_name(n, c),
                RData::Srv(s) => {
                    for v in [s.priority, s.weight, s.port] {
                        w.buf.extend_from_slice(&v.to_be_bytes());
                    }
                    w.write_name(&s.target, c);
                }
                other => w.buf.extend_from_slice(&other.to_bytes()),
            }
            // ≤ 65535: raw RDATA checked above, names ≤ 255 bytes.
            let rdlen = u16::try_from(w.buf.len() - len_at - 2).unwrap_or(u16::MAX);
            w.buf[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        })?;
        self.section = s;
        Ok(())
    }

    /// The finished message.
    pub fn finish(mut self) -> Vec<u8> {
        for (i, c) in self.counts.iter().enumerate() {
            self.buf[4 + 2 * i..6 + 2 * i].copy_from_slice(&c.to_be_bytes());
        }
        self.buf
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn n(s: &str) -> Name {
        Name::parse_str(s).unwrap()
    }

    /// An Avahi-style announcement, built by hand per RFC 1035 §4.1 with
    /// compression: host `avahi-host.local` at 192.0.2.10 publishing
    /// `My Web._http._tcp.local` on port 80 with TXT `path=/`.
    #[rustfmt::skip]
    const AVAHI_ANNOUNCE: &[u8] = &[
        0x00, 0x00, 0x84, 0x00, // id 0, QR AA
        0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, // an 5
        // @12 avahi-host.local A flush 120 192.0.2.10
        10, b'a', b'v', b'a', b'h', b'i', b'-', b'h', b'o', b's', b't',
        5, b'l', b'o', b'c', b'a', b'l', 0, // local @23
        0x00, 0x01, 0x80, 0x01, 0x00, 0x00, 0x00, 120, 0x00, 0x04, 192, 0, 2, 10,
        // @44 My Web._http._tcp.local SRV flush 120 0 0 80 -> avahi-host.local (@12)
        6, b'M', b'y', b' ', b'W', b'e', b'b', // @44
        5, b'_', b'h', b't', b't', b'p', // @51
        4, b'_', b't', b'c', b'p', 0xc0, 23, // @57, pointer to local
        0x00, 0x21, 0x80, 0x01, 0x00, 0x00, 0x00, 120, 0x00, 0x08,
        0x00, 0x00, 0x00, 0x00, 0x00, 80, 0xc0, 12,
        // My Web... TXT flush 4500 "path=/"
        0xc0, 44, 0x00, 0x10, 0x80, 0x01, 0x00, 0x00, 0x11, 0x94, 0x00, 0x07,
        6, b'p', b'a', b't', b'h', b'=', b'/',
        // _http._tcp.local PTR 4500 -> My Web._http._tcp.local
        0xc0, 51, 0x00, 0x0c, 0x00, 0x01, 0x00, 0x00, 0x11, 0x94, 0x00, 0x02, 0xc0, 44,
        // _services._dns-sd._udp.local PTR 4500 -> _http._tcp.local
        9, b'_', b's', b'e', b'r', b'v', b'i', b'c', b'e', b's',
        7, b'_', b'd', b'n', b's', b'-', b's', b'd',
        4, b'_', b'u', b'd', b'p', 0xc0, 23,
        0x00, 0x0c, 0x00, 0x01, 0x00, 0x00, 0x11, 0x94, 0x00, 0x02, 0xc0, 51,
    ];

    fn avahi_records() -> Vec<Record> {
        let inst = Name::from_labels(["My Web", "_http", "_tcp", "local"]).unwrap();
        vec![
            Record::new(
                n("avahi-host.local"),
                120,
                true,
                RData::A([192, 0, 2, 10].into()),
            ),
            Record::new(
                inst.clone(),
                120,
                true,
                RData::Srv(Srv {
                    priority: 0,
                    weight: 0,
                    port: 80,
                    target: n("avahi-host.local"),
                }),
            ),
            Record::new(
                inst.clone(),
                4500,
                true,
                RData::Txt(Txt::from_strings(&["path=/"], 100).unwrap()),
            ),
            Record::new(n("_http._tcp.local"), 4500, false, RData::Ptr(inst)),
            Record::new(
                n("_services._dns-sd._udp.local"),
                4500,
                false,
                RData::Ptr(n("_http._tcp.local")),
            ),
        ]
    }

    #[test]
    fn avahi_announcement_both_ways() {
        let m = Message::parse(AVAHI_ANNOUNCE).unwrap();
        assert!(m.is_response());
        assert_eq!(m.flags, FLAG_QR | FLAG_AA);
        assert_eq!(m.answers, avahi_records());
        assert_eq!(m.answers[1].name.to_string(), "My Web._http._tcp.local");
        if let RData::Txt(t) = &m.answers[2].data {
            assert_eq!(t.to_strings(), vec!["path=/".to_string()]);
        } else {
            panic!("not TXT");
        }
        let built = Message {
            flags: FLAG_QR | FLAG_AA,
            answers: avahi_records(),
            ..Message::default()
        };
        assert_eq!(built.emit(1472).unwrap(), AVAHI_ANNOUNCE);
    }

    /// A query with QU bit and a known answer, compressed.
    #[rustfmt::skip]
    const QUERY: &[u8] = &[
        0x12, 0x34, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
        5, b'_', b'h', b't', b't', b'p', 4, b'_', b't', b'c', b'p', 5, b'l', b'o', b'c', b'a', b'l', 0,
        0x00, 0x0c, 0x80, 0x01,
        0xc0, 12, 0x00, 0x0c, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x04,
        1, b'x', 0xc0, 12,
    ];

    #[test]
    fn query_with_qu_and_known_answer() {
        let m = Message::parse(QUERY).unwrap();
        assert_eq!(m.id, 0x1234);
        assert!(!m.is_response());
        let q = &m.questions[0];
        assert!(q.unicast_response);
        assert_eq!((q.qtype, q.qclass), (TYPE_PTR, CLASS_IN));
        assert_eq!(m.answers[0].ttl, 3600);
        assert_eq!(m.answers[0].data, RData::Ptr(n("x._http._tcp.local")));
        assert_eq!(m.emit(512).unwrap(), QUERY);
    }

    #[test]
    fn nsec_and_aaaa_and_other_round_trip() {
        let host = n("node.cloud.local");
        let m = Message {
            id: 7,
            flags: FLAG_QR | FLAG_AA,
            questions: vec![],
            answers: vec![Record::new(
                host.clone(),
                120,
                true,
                RData::Aaaa("fe80::1".parse().unwrap()),
            )],
            authorities: vec![],
            additionals: vec![
                Record::new(
                    host.clone(),
                    120,
                    true,
                    RData::Nsec(Nsec::new(host.clone(), &[TYPE_A, TYPE_AAAA])),
                ),
                Record::new(
                    host,
                    60,
                    false,
                    RData::Other {
                        rtype: 99,
                        data: vec![1, 2, 3],
                    },
                ),
            ],
        };
        let b = m.emit(1472).unwrap();
        let back = Message::parse(&b).unwrap();
        assert_eq!(back, m);
        if let RData::Nsec(x) = &back.additionals[0].data {
            assert!(x.has(TYPE_A) && x.has(TYPE_AAAA) && !x.has(TYPE_TXT));
        }
        // The NSEC bitmap is window 0, length 4 (type 28 is in byte 3).
        let nsec = m.additionals[0].data.to_bytes();
        assert_eq!(&nsec[nsec.len() - 6..], &[0, 4, 0x40, 0, 0, 0x08]);
    }

    #[test]
    fn writer_rolls_back_when_full() {
        let mut w = Writer::new(0, FLAG_QR, 60).unwrap();
        let recs = avahi_records();
        w.record(Section::Answer, &recs[0]).unwrap();
        let before = w.len();
        assert_eq!(w.record(Section::Answer, &recs[1]), Err(WireError::NoSpace));
        assert_eq!(w.len(), before);
        // Sections cannot go backwards.
        w.record(Section::Additional, &recs[0]).unwrap();
        assert_eq!(w.record(Section::Answer, &recs[0]), Err(WireError::NoSpace));
        let b = w.finish();
        let m = Message::parse(&b).unwrap();
        assert_eq!((m.answers.len(), m.additionals.len()), (1, 1));
    }

    fn header(qd: u16, an: u16) -> Vec<u8> {
        let mut v = vec![0, 0, 0x84, 0];
        v.extend_from_slice(&qd.to_be_bytes());
        v.extend_from_slice(&an.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 0]);
        v
    }

    #[test]
    fn malformed_compression_loop() {
        // A pointer to itself, and a pair pointing at each other.
        let mut m = header(1, 0);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(Message::parse(&m), Err(WireError::BadPointer));
        let mut m = header(1, 0);
        m.extend_from_slice(&[1, b'a', 0xc0, 16, 0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(Message::parse(&m), Err(WireError::BadPointer));
        // Forward pointer.
        let mut m = header(1, 0);
        m.extend_from_slice(&[0xc0, 20, 0, 1, 0, 1, 0, 0, 0]);
        assert_eq!(Message::parse(&m), Err(WireError::BadPointer));
    }

    #[test]
    fn malformed_truncated_name_and_counts() {
        let mut m = header(1, 0);
        m.extend_from_slice(&[5, b'l', b'o', b'c']);
        assert!(matches!(
            Message::parse(&m),
            Err(WireError::Truncated | WireError::CountsBeyondPacket)
        ));
        let mut m = header(1, 0);
        m.extend_from_slice(&[3, b'a', b'b', b'c', 5, b'l', b'o', b'c', b'a', b'l']);
        assert_eq!(Message::parse(&m), Err(WireError::Truncated));
        let mut m = header(1, 3);
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(Message::parse(&m), Err(WireError::CountsBeyondPacket));
        assert_eq!(
            Message::parse(&header(0, 0)[..11]),
            Err(WireError::Truncated)
        );
        let m = header(200, 0);
        assert_eq!(Message::parse(&m), Err(WireError::TooManyRecords));
        let mut m = header(0xffff, 0xffff);
        m.extend_from_slice(&[0; 40]);
        assert_eq!(Message::parse(&m), Err(WireError::TooManyRecords));
    }

    #[test]
    fn malformed_labels_and_names() {
        // Label length 64 is the reserved 0x40 label type.
        let mut m = header(1, 0);
        m.push(64);
        m.extend_from_slice(&[b'a'; 64]);
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(Message::parse(&m), Err(WireError::BadLabel));
        // 5 labels of 63 = 320 bytes > 255.
        let mut m = header(1, 0);
        for _ in 0..5 {
            m.push(63);
            m.extend_from_slice(&[b'a'; 63]);
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(Message::parse(&m), Err(WireError::NameTooLong));
        // Same length reached through a chain of pointers: each question
        // adds a 63-byte label in front of the previous one.
        let mut m = header(4, 0);
        let mut prev: Option<u16> = None;
        for c in [b'a', b'b', b'c', b'd'] {
            let at = m.len() as u16;
            m.push(63);
            m.extend_from_slice(&[c; 63]);
            match prev {
                Some(p) => m.extend_from_slice(&(0xc000u16 | p).to_be_bytes()),
                None => m.push(0),
            }
            m.extend_from_slice(&[0, 1, 0, 1]);
            prev = Some(at);
        }
        assert_eq!(Message::parse(&m), Err(WireError::NameTooLong));
        m[5] = 3;
        assert_eq!(
            Message::parse(&m).unwrap().questions[2].name.wire_len(),
            193
        );
    }

    #[test]
    fn malformed_rdata() {
        let good = AVAHI_ANNOUNCE.to_vec();
        // A record rdlength 5 instead of 4.
        let mut m = good.clone();
        m[39] = 5;
        assert!(Message::parse(&m).is_err());
        // rdlength beyond the packet.
        let mut m = good[..44].to_vec();
        m[7] = 1;
        m[39] = 200;
        assert_eq!(Message::parse(&m), Err(WireError::Truncated));
        // TXT string overrunning its rdata.
        let mut m = good.clone();
        let txt_len_at = 94;
        assert_eq!(m[txt_len_at], 6);
        m[txt_len_at] = 7;
        assert_eq!(Message::parse(&m), Err(WireError::BadRdata));
        // PTR whose name runs beyond its rdlength.
        let mut q = QUERY.to_vec();
        q[QUERY.len() - 5] = 2;
        assert_eq!(Message::parse(&q), Err(WireError::BadRdata));
    }

    #[test]
    fn compression_shrinks_repeated_names() {
        let recs = avahi_records();
        let mut w = Writer::new(0, FLAG_QR, 1472).unwrap();
        for r in &recs {
            w.record(Section::Answer, r).unwrap();
        }
        let compressed = w.finish();
        assert_eq!(compressed.len(), AVAHI_ANNOUNCE.len());
        let plain: usize = recs
            .iter()
            .map(|r| r.name.wire_len() + 10 + r.data.to_bytes().len())
            .sum();
        assert!(compressed.len() < HEADER_LEN + plain);
    }

    #[test]
    fn txt_strings() {
        let t = Txt::from_strings::<&str>(&[], 10).unwrap();
        assert_eq!(t.as_bytes(), &[0]);
        assert_eq!(t.strings().count(), 0);
        assert!(Txt::from_strings(&["x".repeat(256)], 1000).is_none());
        assert!(Txt::from_strings(&["abc", "def"], 7).is_none());
        let t = Txt::from_strings(&["a=1", "b"], 100).unwrap();
        assert_eq!(t.to_strings(), vec!["a=1", "b"]);
    }
}

#[cfg(test)]
mod captures {
    use super::*;

    /// Real Avahi and python-zeroconf captures (fuzz seeds): each parses,
    /// and re-emits to an equal message.
    #[test]
    fn real_captures_parse_and_round_trip() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/dns_message");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            crate::testutil::skip(
                "mdns::wire::real_captures_parse_and_round_trip",
                &format!("no capture directory {}", dir.display()),
            );
            return;
        };
        let mut n = 0;
        // Only the committed seeds: `generated/` holds the fuzzer's own inputs.
        for e in entries.flatten().filter(|e| e.path().is_file()) {
            let bytes = std::fs::read(e.path()).unwrap();
            let m = Message::parse(&bytes)
                .unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
            let again = Message::parse(&m.emit(usize::MAX).unwrap()).unwrap();
            assert_eq!(again, m);
            n += 1;
        }
        assert!(n > 0);
    }
}
