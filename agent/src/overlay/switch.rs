//! The learning switch's MAC table: which member ("port") a MAC address
//! was last seen behind, as an 802.1D bridge learns it (IEEE 802.1D-2004
//! §7.8 and §7.9.2: learn source addresses, forward known unicast to one
//! port, flood the rest, age entries out).
//!
//! Layout: an open-addressing hash table with linear probing, stored
//! inline (no separate entry array), with at least twice as many slots as
//! the capacity ([`limits::MAC_TABLE_SIZE`]), so the load factor stays at
//! or below 1/2 and a lookup usually touches one or two slots. It runs for
//! every frame, so it must not scan. Removal uses backward-shift deletion
//! (no tombstones), so probe chains never degrade over time. The hash is a
//! keyed multiplicative mix of the 48-bit address; [`MacTable::with_seed`]
//! takes a random key so that senders cannot aim addresses at one chain.
//! Even in the worst case a probe stops after `capacity` occupied slots.
//!
//! Bounds: the slot array is allocated once in `new` and never grows.
//! When the table is full, learning a new address evicts the least
//! recently seen entry (a linear scan, only on that path). Entries older
//! than [`limits::MAC_AGEING`] are invisible to [`MacTable::lookup`] and
//! dropped by [`MacTable::expire`]. Multicast, broadcast and all-zero
//! source addresses are never learned.
//!
//! Time is passed in; nothing here reads the clock.

use core::fmt;

use crate::limits::{MAC_AGEING, MAC_TABLE_SIZE};
use crate::time::Instant;

/// An Ethernet (EUI-48) address.
pub type Mac = [u8; 6];

/// All-ones broadcast address.
pub const BROADCAST: Mac = [0xff; 6];

/// Group (multicast, including broadcast) addresses have the I/G bit, the
/// least significant bit of the first octet, set (IEEE 802-2014 §8.2.2).
pub fn is_multicast(mac: &Mac) -> bool {
    mac[0] & 0x01 != 0
}

/// Ethernet header length: destination, source, EtherType.
pub const ETHERNET_HEADER_LEN: usize = 14;

/// A frame shorter than an Ethernet header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameTooShort;

impl fmt::Display for FrameTooShort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("frame shorter than an Ethernet header")
    }
}

/// A read-only view of an Ethernet II frame. After
/// [`new_checked`](Self::new_checked) no getter can panic.
#[derive(Clone, Copy, Debug)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: usize = 14;
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer` if it holds at least [`ETHERNET_HEADER_LEN`] bytes.
    pub fn new_checked(buffer: T) -> Result<Self, FrameTooShort> {
        if buffer.as_ref().len() < ETHERNET_HEADER_LEN {
            return Err(FrameTooShort);
        }
        Ok(EthernetFrame { buffer })
    }

    fn mac(&self, range: core::ops::Range<usize>) -> Mac {
        // Length checked in `new_checked`; the fallback is unreachable.
        self.buffer
            .as_ref()
            .get(range)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; 6])
    }

    pub fn dst(&self) -> Mac {
        self.mac(field::DST)
    }

    pub fn src(&self) -> Mac {
        self.mac(field::SRC)
    }

    pub fn ethertype(&self) -> u16 {
        match self.buffer.as_ref().get(field::ETHERTYPE) {
            Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
            _ => 0,
        }
    }

    pub fn payload(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(field::PAYLOAD..)
            .unwrap_or_default()
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry<P> {
    mac: Mac,
    port: P,
    seen: Instant,
}

/// MAC address → port, fixed capacity, least-recently-seen eviction.
pub struct MacTable<P: Copy + Eq> {
    /// `slots.len()` is a power of two ≥ 2 × `capacity`.
    slots: Box<[Option<Entry<P>>]>,
    mask: usize,
    capacity: usize,
    len: usize,
    seed: u64,
}

impl<P: Copy + Eq> Default for MacTable<P> {
    fn default() -> Self {
        MacTable::new()
    }
}

impl<P: Copy + Eq> fmt::Debug for MacTable<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MacTable")
            .field("len", &self.len)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl<P: Copy + Eq> MacTable<P> {
    /// A table of [`MAC_TABLE_SIZE`] entries with a fixed hash key.
    pub fn new() -> Self {
        Self::with_seed(0)
    }

    /// A table of [`MAC_TABLE_SIZE`] entries whose hash is keyed by `seed`
    /// (give it a random value in the daemon).
    pub fn with_seed(seed: u64) -> Self {
        Self::with_capacity(MAC_TABLE_SIZE, seed)
    }

    /// A table of `capacity` entries (tests and small boards).
    pub fn with_capacity(capacity: usize, seed: u64) -> Self {
        let n = capacity.saturating_mul(2).max(2).next_power_of_two();
        MacTable {
            slots: (0..n).map(|_| None).collect(),
            mask: n - 1,
            capacity,
            len: 0,
            seed,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn home(&self, mac: &Mac) -> usize {
        let k = mac.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let h = (k ^ self.seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // The top bits of a multiplicative hash are the well-mixed ones.
        let h = h ^ (h >> 29);
        (h >> 32) as usize & self.mask
    }

    /// Slot holding `mac`, or the empty slot where it would go.
    fn probe(&self, mac: &Mac) -> (usize, bool) {
        let mut i = self.home(mac);
        // At most `len` occupied slots can precede an empty one, and at
        // least half the slots are empty, so this ends well within the bound.
        for _ in 0..self.slots.len() {
            match self.slots.get(i) {
                Some(Some(e)) if e.mac == *mac => return (i, true),
                Some(Some(_)) => i = (i + 1) & self.mask,
                _ => return (i, false),
            }
        }
        (i, false) // unreachable: the table always has an empty slot
    }

    /// Records that `mac` was seen behind `port` at `now`. Group and
    /// all-zero addresses are ignored. When full, the least recently seen
    /// entry makes room.
    pub fn learn(&mut self, mac: Mac, port: P, now: Instant) {
        if is_multicast(&mac) || mac == [0; 6] || self.capacity == 0 {
            return;
        }
        let (i, found) = self.probe(&mac);
        if found {
            if let Some(Some(e)) = self.slots.get_mut(i) {
                e.port = port;
                e.seen = now;
            }
            return;
        }
        let i = if self.len >= self.capacity {
            self.evict_oldest();
            self.probe(&mac).0 // the eviction may have shifted the chain
        } else {
            i
        };
        if let Some(slot @ None) = self.slots.get_mut(i) {
            *slot = Some(Entry {
                mac,
                port,
                seen: now,
            });
            self.len += 1;
        }
    }

    /// The port `mac` was last seen behind, unless that is older than
    /// [`MAC_AGEING`].
    pub fn lookup(&self, mac: &Mac, now: Instant) -> Option<P> {
        let (i, found) = self.probe(mac);
        if !found {
            return None;
        }
        match self.slots.get(i) {
            Some(Some(e)) if now.since(e.seen) <= MAC_AGEING => Some(e.port),
            _ => None,
        }
    }

    /// Forgets every address behind `port` (the member went away).
    pub fn forget_port(&mut self, port: P) {
        self.remove_where(|e| e.port == port);
    }

    /// Drops entries older than [`MAC_AGEING`].
    pub fn expire(&mut self, now: Instant) {
        self.remove_where(|e| now.since(e.seen) > MAC_AGEING);
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
        self.len = 0;
    }

    /// Entries as `(mac, port, last seen)`, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (Mac, P, Instant)> + '_ {
        self.slots.iter().flatten().map(|e| (e.mac, e.port, e.seen))
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|e| (e.seen, i)))
            .min()
            .map(|(_, i)| i);
        if let Some(i) = oldest {
            self.remove_at(i);
        }
    }

    /// Removes every entry matching `pred`.
    ///
    /// Backward shift only moves an entry into a hole at or cyclically
    /// after the slot being examined, or (after wrapping) among slots
    /// already examined and kept, whose entries did not match; re-checking
    /// slot `i` until it no longer matches therefore visits every entry.
    fn remove_where(&mut self, pred: impl Fn(&Entry<P>) -> bool) {
        for i in 0..self.slots.len() {
            // Each removal empties one entry, so this runs at most `len` times.
            for _ in 0..=self.capacity {
                match self.slots.get(i) {
                    Some(Some(e)) if pred(e) => self.remove_at(i),
                    _ => break,
                }
            }
        }
    }

    /// Empties slot `hole` and moves later entries of its probe chain back
    /// so that every entry stays reachable from its home slot (Knuth's
    /// Algorithm R, TAOCP vol. 3 §6.4).
    fn remove_at(&mut self, mut hole: usize) {
        match self.slots.get_mut(hole) {
            Some(slot @ Some(_)) => {
                *slot = None;
                self.len -= 1;
            }
            _ => return,
        }
        let mut j = hole;
        for _ in 0..self.slots.len() {
            j = (j + 1) & self.mask;
            let home = match self.slots.get(j) {
                Some(Some(e)) => self.home(&e.mac),
                _ => return,
            };
            // The entry at `j` may stay if its home lies cyclically in (hole, j].
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                let moved = self.slots.get_mut(j).and_then(Option::take);
                if let Some(slot) = self.slots.get_mut(hole) {
                    *slot = moved;
                }
                hole = j;
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::time::Duration;

    fn mac(n: u32) -> Mac {
        let b = n.to_be_bytes();
        [0x02, 0x00, b[0], b[1], b[2], b[3]]
    }

    #[test]
    fn multicast_bit() {
        assert!(is_multicast(&BROADCAST));
        assert!(is_multicast(&[0x01, 0x00, 0x5e, 0, 0, 1]));
        assert!(is_multicast(&[0x33, 0x33, 0, 0, 0, 1]));
        assert!(!is_multicast(&[0x02, 0, 0, 0, 0, 1]));
        assert!(!is_multicast(&[0x00, 0x11, 0x22, 0x33, 0x44, 0x55]));
    }

    #[test]
    fn ethernet_view() {
        const FRAME: [u8; 16] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
            0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src
            0x08, 0x06, // ARP
            0xab, 0xcd,
        ];
        let f = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst(), BROADCAST);
        assert_eq!(f.src(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(f.ethertype(), 0x0806);
        assert_eq!(f.payload(), &[0xab, 0xcd]);
        let hdr = EthernetFrame::new_checked(&FRAME[..14]).unwrap();
        assert!(hdr.payload().is_empty());
        assert_eq!(
            EthernetFrame::new_checked(&FRAME[..13]).err(),
            Some(FrameTooShort)
        );
        assert!(EthernetFrame::new_checked(&[][..]).is_err());
    }

    #[test]
    fn learn_lookup_refresh() {
        let mut t: MacTable<u8> = MacTable::new();
        let now = Instant::from_secs(10);
        t.learn(mac(1), 1, now);
        t.learn(mac(2), 2, now);
        assert_eq!(t.lookup(&mac(1), now), Some(1));
        assert_eq!(t.lookup(&mac(2), now), Some(2));
        assert_eq!(t.lookup(&mac(3), now), None);
        // The station moved to another member.
        t.learn(mac(1), 7, now);
        assert_eq!(t.lookup(&mac(1), now), Some(7));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn group_and_zero_sources_not_learned() {
        let mut t: MacTable<u8> = MacTable::new();
        t.learn(BROADCAST, 1, Instant::ZERO);
        t.learn([0x01, 0x00, 0x5e, 0, 0, 1], 1, Instant::ZERO);
        t.learn([0; 6], 1, Instant::ZERO);
        assert!(t.is_empty());
        assert_eq!(t.lookup(&BROADCAST, Instant::ZERO), None);
    }

    #[test]
    fn ageing() {
        let mut t: MacTable<u8> = MacTable::new();
        let t0 = Instant::from_secs(1);
        t.learn(mac(1), 1, t0);
        t.learn(mac(2), 2, t0 + Duration::from_secs(100));
        assert_eq!(t.lookup(&mac(1), t0 + MAC_AGEING), Some(1));
        let later = t0 + MAC_AGEING + Duration::from_micros(1);
        assert_eq!(t.lookup(&mac(1), later), None);
        assert_eq!(t.lookup(&mac(2), later), Some(2));
        assert_eq!(t.len(), 2);
        t.expire(later);
        assert_eq!(t.len(), 1);
        assert_eq!(t.lookup(&mac(2), later), Some(2));
        // Refreshing brings an aged entry back.
        t.learn(mac(1), 3, later);
        assert_eq!(t.lookup(&mac(1), later), Some(3));
    }

    #[test]
    fn full_table_evicts_least_recently_seen() {
        let mut t: MacTable<u32> = MacTable::new();
        for n in 0..MAC_TABLE_SIZE as u32 {
            t.learn(mac(n), n, Instant::from_secs(u64::from(n) + 1));
        }
        assert_eq!(t.len(), MAC_TABLE_SIZE);
        // Refresh the oldest: the second oldest becomes the victim.
        t.learn(mac(0), 0, Instant::from_secs(10_000));
        t.learn(mac(100_000), 9, Instant::from_secs(10_001));
        assert_eq!(t.len(), MAC_TABLE_SIZE);
        let now = Instant::from_secs(10_002);
        assert_eq!(t.lookup(&mac(1), now), None);
        assert_eq!(t.lookup(&mac(0), now), Some(0));
        assert_eq!(t.lookup(&mac(100_000), now), Some(9));
        assert_eq!(t.iter().count(), MAC_TABLE_SIZE);
    }

    #[test]
    fn forget_port() {
        let mut t: MacTable<u8> = MacTable::new();
        for n in 0..300 {
            t.learn(mac(n), (n % 3) as u8, Instant::ZERO);
        }
        t.forget_port(1);
        assert_eq!(t.len(), 200);
        for n in 0..300 {
            let want = if n % 3 == 1 {
                None
            } else {
                Some((n % 3) as u8)
            };
            assert_eq!(t.lookup(&mac(n), Instant::ZERO), want, "mac {n}");
        }
        t.clear();
        assert!(t.is_empty() && t.lookup(&mac(0), Instant::ZERO).is_none());
    }

    #[test]
    fn zero_capacity_learns_nothing() {
        let mut t: MacTable<u8> = MacTable::with_capacity(0, 0);
        t.learn(mac(1), 1, Instant::ZERO);
        assert_eq!(t.lookup(&mac(1), Instant::ZERO), None);
    }

    /// Random operations on a small, crowded table against a plain list.
    #[test]
    fn matches_naive_model() {
        const CAP: usize = 16;
        let mut x: u32 = 0x9e37_79b9;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for seed in 0..4u64 {
            let mut t: MacTable<u8> = MacTable::with_capacity(CAP, seed);
            let mut model: Vec<(Mac, u8, Instant)> = Vec::new();
            let mut clock = 0u64;
            for _ in 0..20_000 {
                clock += u64::from(next() % 3);
                let now = Instant::from_secs(clock);
                let m = mac(next() % 40);
                let port = (next() % 4) as u8;
                match next() % 10 {
                    0 => {
                        t.forget_port(port);
                        model.retain(|e| e.1 != port);
                    }
                    1 => {
                        let now = now + MAC_AGEING;
                        t.expire(now);
                        model.retain(|e| now.since(e.2) <= MAC_AGEING);
                    }
                    _ => {
                        t.learn(m, port, now);
                        if let Some(e) = model.iter_mut().find(|e| e.0 == m) {
                            e.1 = port;
                            e.2 = now;
                        } else {
                            if model.len() == CAP {
                                let (i, _) = model
                                    .iter()
                                    .enumerate()
                                    .min_by_key(|(i, e)| (e.2, *i))
                                    .unwrap();
                                // Ties: the table evicts an arbitrary entry among the
                                // oldest; mirror its choice.
                                let oldest = model[i].2;
                                let victim = model
                                    .iter()
                                    .position(|e| e.2 == oldest && !t.iter().any(|x| x.0 == e.0))
                                    .unwrap();
                                model.remove(victim);
                            }
                            model.push((m, port, now));
                        }
                    }
                }
                assert_eq!(t.len(), model.len());
                for e in &model {
                    assert_eq!(t.lookup(&e.0, e.2), Some(e.1));
                }
            }
        }
    }
}
