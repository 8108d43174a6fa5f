//! TEMPORARY linear MAC table (being replaced by the console helper's).
use crate::limits::{MAC_AGEING, MAC_TABLE_SIZE};
use crate::time::Instant;
pub fn is_multicast(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 1
}
pub struct MacTable<P: Copy + Eq> {
    e: Vec<([u8; 6], P, Instant)>,
}
impl<P: Copy + Eq> Default for MacTable<P> {
    fn default() -> Self {
        Self::new()
    }
}
impl<P: Copy + Eq> MacTable<P> {
    pub fn new() -> Self {
        MacTable { e: Vec::with_capacity(MAC_TABLE_SIZE) }
    }
    pub fn learn(&mut self, mac: [u8; 6], port: P, now: Instant) {
        if is_multicast(&mac) {
            return;
        }
        if let Some(x) = self.e.iter_mut().find(|x| x.0 == mac) {
            x.1 = port;
            x.2 = now;
            return;
        }
        if self.e.len() >= MAC_TABLE_SIZE {
            self.e.remove(0);
        }
        self.e.push((mac, port, now));
    }
    pub fn lookup(&self, mac: &[u8; 6], now: Instant) -> Option<P> {
        self.e.iter().find(|x| &x.0 == mac && now.since(x.2) < MAC_AGEING).map(|x| x.1)
    }
    pub fn forget_port(&mut self, port: P) {
        self.e.retain(|x| x.1 != port);
    }
    pub fn expire(&mut self, now: Instant) {
        self.e.retain(|x| now.since(x.2) < MAC_AGEING);
    }
    pub fn len(&self) -> usize {
        self.e.len()
    }
    pub fn is_empty(&self) -> bool {
        self.e.is_empty()
    }
}
