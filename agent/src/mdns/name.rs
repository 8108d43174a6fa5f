//! DNS names in a bounded representation (RFC 1035 §3.1, §2.3.4).
//!
//! A [`Name`] holds the uncompressed wire form: length-prefixed labels
//! ending with the zero-length root label, at most 255 bytes in all, each
//! label 1–63 bytes. Labels are arbitrary bytes: DNS-SD instance names
//! (RFC 6763 §4.3) carry spaces, dots and UTF-8 in one label, so a name
//! is built from labels ([`Name::from_labels`]), never by splitting a
//! string on dots. The presentation form ([`Name::parse_str`], `Display`)
//! escapes a dot or backslash inside a label with a backslash, and a
//! control byte (or a byte of invalid UTF-8) as `\DDD`.
//!
//! Comparison is ASCII case-insensitive (RFC 6762 §16: only A–Z fold;
//! other bytes, UTF-8 included, compare exactly); `Eq`, `Hash` and `Ord`
//! all agree on that. Length bytes are < 64 and so never fold.

use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};

/// Longest name on the wire, root label included (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// Why a name could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    EmptyLabel,
    LabelTooLong,
    NameTooLong,
    /// A backslash not followed by a character or by three digits ≤ 255.
    BadEscape,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameError::EmptyLabel => "empty label",
            NameError::LabelTooLong => "label longer than 63 bytes",
            NameError::NameTooLong => "name longer than 255 bytes",
            NameError::BadEscape => "bad escape in name",
        })
    }
}

impl std::error::Error for NameError {}

/// A domain name, uncompressed wire form (see the module doc).
#[derive(Clone)]
pub struct Name {
    /// Invariant: a well-formed label sequence ending with 0, ≤ 255 bytes.
    wire: heapless::Vec<u8, MAX_NAME_LEN>,
}

impl Name {
    /// The root name (`.`).
    pub fn root() -> Name {
        let mut wire = heapless::Vec::new();
        // Cannot fail: capacity 255 > 1.
        let _ = wire.push(0);
        Name { wire }
    }

    /// Build from labels, most specific first (`["My Web", "_http", "_tcp", "local"]`).
    pub fn from_labels<I, L>(labels: I) -> Result<Name, NameError>
    where
        I: IntoIterator<Item = L>,
        L: AsRef<[u8]>,
    {
        let mut b = Builder::default();
        for l in labels {
            b.label(l.as_ref())?;
        }
        b.finish()
    }

    /// Parse the presentation form: labels separated by unescaped dots,
    /// `\.` `\\` `\DDD` escapes, an optional final dot. `""` and `"."` are
    /// the root.
    pub fn parse_str(s: &str) -> Result<Name, NameError> {
        let bytes = s.as_bytes();
        let bytes = match bytes {
            [rest @ .., b'.'] if !ends_with_escaped_dot(bytes) => rest,
            _ => bytes,
        };
        let mut b = Builder::default();
        if bytes.is_empty() {
            return b.finish();
        }
        let mut label: heapless::Vec<u8, MAX_LABEL_LEN> = heapless::Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            let byte = match c {
                b'.' => {
                    b.label(&label)?;
                    label.clear();
                    i += 1;
                    continue;
                }
                b'\\' => {
                    let next = *bytes.get(i + 1).ok_or(NameError::BadEscape)?;
                    if next.is_ascii_digit() {
                        let d = bytes.get(i + 1..i + 4).ok_or(NameError::BadEscape)?;
                        if !d.iter().all(u8::is_ascii_digit) {
                            return Err(NameError::BadEscape);
                        }
                        let v = d
                            .iter()
                            .fold(0u32, |acc, &x| acc * 10 + u32::from(x - b'0'));
                        i += 4;
                        u8::try_from(v).map_err(|_| NameError::BadEscape)?
                    } else {
                        i += 2;
                        next
                    }
                }
                _ => {
                    i += 1;
                    c
                }
            };
            label.push(byte).map_err(|_| NameError::LabelTooLong)?;
        }
        b.label(&label)?;
        b.finish()
    }

    /// Build from raw wire bytes already checked by the parser.
    pub(crate) fn from_wire_checked(wire: heapless::Vec<u8, MAX_NAME_LEN>) -> Name {
        Name { wire }
    }

    /// The uncompressed wire form, root label included.
    pub fn as_wire(&self) -> &[u8] {
        &self.wire
    }

    pub fn wire_len(&self) -> usize {
        self.wire.len()
    }

    pub fn is_root(&self) -> bool {
        self.wire.len() <= 1
    }

    /// Labels, most specific first, root excluded.
    pub fn labels(&self) -> Labels<'_> {
        Labels { rest: &self.wire }
    }

    pub fn label_count(&self) -> usize {
        self.labels().count()
    }

    pub fn first_label(&self) -> Option<&[u8]> {
        self.labels().next()
    }

    /// Wire bytes of the suffix starting at label `i` (root for `i` ≥ count).
    pub fn suffix_wire(&self, i: usize) -> &[u8] {
        let mut at = 0;
        for _ in 0..i {
            match self.wire.get(at) {
                Some(&l) if l != 0 => at += 1 + usize::from(l),
                _ => break,
            }
        }
        self.wire.get(at..).unwrap_or(&[0])
    }

    /// The name without its first label (`None` for the root).
    pub fn parent(&self) -> Option<Name> {
        if self.is_root() {
            return None;
        }
        let mut wire = heapless::Vec::new();
        // The suffix is shorter than self: it fits.
        let _ = wire.extend_from_slice(self.suffix_wire(1));
        Some(Name { wire })
    }

    /// `label` followed by this name.
    pub fn prepend(&self, label: &[u8]) -> Result<Name, NameError> {
        let mut b = Builder::default();
        b.label(label)?;
        for l in self.labels() {
            b.label(l)?;
        }
        b.finish()
    }

    /// This name followed by `suffix` (this name's root label dropped).
    pub fn join(&self, suffix: &Name) -> Result<Name, NameError> {
        let mut b = Builder::default();
        for l in self.labels().chain(suffix.labels()) {
            b.label(l)?;
        }
        b.finish()
    }

    /// Whether `suffix` is this name or an ancestor of it (case-insensitive).
    pub fn ends_with(&self, suffix: &Name) -> bool {
        let n = self.label_count();
        let m = suffix.label_count();
        n >= m && eq_fold(self.suffix_wire(n - m), suffix.as_wire())
    }

    /// Lower-cased wire bytes (for hashing and ordering).
    fn folded(&self) -> impl Iterator<Item = u8> + '_ {
        self.wire.iter().map(u8::to_ascii_lowercase)
    }
}

fn ends_with_escaped_dot(b: &[u8]) -> bool {
    // Count the backslashes before the final dot: odd means escaped.
    let n = b.len().saturating_sub(1);
    let slashes = b[..n].iter().rev().take_while(|&&c| c == b'\\').count();
    slashes % 2 == 1
}

fn eq_fold(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Accumulates labels, checking the RFC 1035 bounds.
#[derive(Default)]
struct Builder {
    wire: heapless::Vec<u8, MAX_NAME_LEN>,
}

impl Builder {
    fn label(&mut self, l: &[u8]) -> Result<(), NameError> {
        if l.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if l.len() > MAX_LABEL_LEN {
            return Err(NameError::LabelTooLong);
        }
        // Keep room for the root byte.
        if self.wire.len() + 1 + l.len() + 1 > MAX_NAME_LEN {
            return Err(NameError::NameTooLong);
        }
        // Room checked above; the length fits a u8 (≤ 63).
        let _ = self.wire.push(l.len() as u8);
        let _ = self.wire.extend_from_slice(l);
        Ok(())
    }

    fn finish(mut self) -> Result<Name, NameError> {
        self.wire.push(0).map_err(|_| NameError::NameTooLong)?;
        Ok(Name { wire: self.wire })
    }
}

/// Iterator over the labels of a [`Name`].
pub struct Labels<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, tail) = self.rest.split_first()?;
        if len == 0 {
            return None;
        }
        let label = tail.get(..usize::from(len))?;
        self.rest = tail.get(usize::from(len)..).unwrap_or(&[]);
        Some(label)
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        eq_fold(&self.wire, &other.wire)
    }
}

impl Eq for Name {}

impl Hash for Name {
    fn hash<H: Hasher>(&self, h: &mut H) {
        for b in self.folded() {
            h.write_u8(b);
        }
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> Ordering {
        self.folded().cmp(other.folded())
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Write one label in presentation form (see the module doc).
pub fn write_label(f: &mut dyn fmt::Write, label: &[u8]) -> fmt::Result {
    let mut rest = label;
    while !rest.is_empty() {
        let (valid, bad) = match core::str::from_utf8(rest) {
            Ok(s) => (s, 0),
            Err(e) => {
                let (ok, _) = rest.split_at(e.valid_up_to());
                // `ok` is valid UTF-8 by construction.
                (
                    core::str::from_utf8(ok).unwrap_or(""),
                    e.error_len().unwrap_or(rest.len() - e.valid_up_to()),
                )
            }
        };
        for c in valid.chars() {
            match c {
                '.' | '\\' => write!(f, "\\{c}")?,
                c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(f, "\\{:03}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        let after = rest.get(valid.len()..).unwrap_or(&[]);
        for &b in after.iter().take(bad) {
            write!(f, "\\{b:03}")?;
        }
        rest = after.get(bad..).unwrap_or(&[]);
    }
    Ok(())
}

/// A label in presentation form.
pub fn label_to_string(label: &[u8]) -> String {
    let mut s = String::new();
    let _ = write_label(&mut s, label);
    s
}

impl fmt::Display for Name {
    /// Presentation form without the final dot (`My\.Box._http._tcp.local`);
    /// the root prints as `.`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        for (i, l) in self.labels().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write_label(f, l)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn labels_with_dots_and_utf8_round_trip() {
        let n = Name::from_labels(["Mañana v1.2", "_http", "_tcp", "local"]).unwrap();
        assert_eq!(n.to_string(), "Mañana v1\\.2._http._tcp.local");
        assert_eq!(Name::parse_str(&n.to_string()).unwrap(), n);
        assert_eq!(n.first_label().unwrap(), "Mañana v1.2".as_bytes());
        assert_eq!(n.label_count(), 4);
        assert_eq!(
            n.parent().unwrap(),
            Name::parse_str("_HTTP._tcp.local.").unwrap()
        );
    }

    #[test]
    fn case_insensitive_ascii_only() {
        let a = Name::parse_str("Node.Cloud.LOCAL").unwrap();
        let b = Name::parse_str("node.cloud.local").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.cmp(&b), Ordering::Equal);
        let h = |n: &Name| {
            let mut s = std::collections::hash_map::DefaultHasher::new();
            n.hash(&mut s);
            s.finish()
        };
        assert_eq!(h(&a), h(&b));
        // Non-ASCII bytes do not fold.
        assert_ne!(
            Name::from_labels(["É"]).unwrap(),
            Name::from_labels(["é"]).unwrap()
        );
        assert!(a.ends_with(&Name::parse_str("local").unwrap()));
        assert!(a.ends_with(&Name::root()));
        assert!(!a.ends_with(&Name::parse_str("x.node.cloud.local").unwrap()));
    }

    #[test]
    fn escapes() {
        let n = Name::parse_str("a\\.b\\\\c\\032d.e").unwrap();
        assert_eq!(n.first_label().unwrap(), b"a.b\\c d");
        assert_eq!(n.to_string(), "a\\.b\\\\c d.e");
        let ctl = Name::from_labels([&[b'x', 1, 0xff][..]]).unwrap();
        assert_eq!(ctl.to_string(), "x\\001\\255");
        assert_eq!(Name::parse_str(&ctl.to_string()).unwrap(), ctl);
        assert_eq!(Name::parse_str("a\\"), Err(NameError::BadEscape));
        assert_eq!(Name::parse_str("a\\25"), Err(NameError::BadEscape));
        assert_eq!(Name::parse_str("a\\256"), Err(NameError::BadEscape));
        assert_eq!(
            Name::parse_str("a\\.").unwrap().first_label().unwrap(),
            b"a."
        );
    }

    #[test]
    fn bounds() {
        assert_eq!(Name::parse_str("a..b"), Err(NameError::EmptyLabel));
        let long = "x".repeat(64);
        assert_eq!(Name::parse_str(&long), Err(NameError::LabelTooLong));
        let l63 = "y".repeat(63);
        // 4 × (1 + 63) + 1 = 257 > 255.
        let too_long = [l63.as_str(); 4].join(".");
        assert_eq!(Name::parse_str(&too_long), Err(NameError::NameTooLong));
        let ok = [l63.as_str(), &l63, &l63, &"z".repeat(61)].join(".");
        assert_eq!(Name::parse_str(&ok).unwrap().wire_len(), 255);
        assert!(Name::parse_str("").unwrap().is_root());
        assert_eq!(Name::root().to_string(), ".");
    }

    #[test]
    fn prepend_join_suffix() {
        let local = Name::parse_str("local").unwrap();
        let t = Name::parse_str("_http._tcp").unwrap().join(&local).unwrap();
        assert_eq!(t.to_string(), "_http._tcp.local");
        let i = t.prepend(b"My Box").unwrap();
        assert_eq!(i.to_string(), "My Box._http._tcp.local");
        assert_eq!(i.suffix_wire(3), local.as_wire());
        assert_eq!(i.suffix_wire(9), &[0]);
    }
}
