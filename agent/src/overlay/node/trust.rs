//! Membership under a cloud authority (see `crate::trust`).
//!
//! With an authority configured, a key is a member of this box when it
//! holds a certificate of this cloud, signed by the authority, valid now,
//! for that very key, and it is not on the cloud's revocation list; or
//! when this box's own config lists it (the operator's local choice,
//! which never spreads to other boxes), again unless revoked.
//!
//! Certificates arrive in handshake payloads (the initiator's and the
//! responder's) and as `Cert` messages: when a session comes up each side
//! sends the certificates of the members it knows, and a box forwards a
//! certificate new to it to its other members, so every box learns every
//! member. The revocation list travels the same way (`Revoked`), a higher
//! serial replacing a lower one: a revoked key is dropped and refused by
//! every box as soon as the list reaches it, one hop per message, and the
//! runtime keeps it on disk.
//!
//! What a member gone bad can do here: forward genuine certificates (no
//! harm) and withhold them (others still learn them from other members
//! and from the member's own handshakes); it cannot make up members, so it
//! cannot fill the peer table. Learned members that are not up are the
//! first evicted when the table is full; configured ones never are.

use super::*;
use crate::trust::{AuthorityPublic, Certificate, RevocationList, TrustError};

/// What the engine needs to run under an authority.
#[derive(Clone, Debug)]
pub struct TrustConfig {
    pub authority: AuthorityPublic,
    /// This box's certificate, sent in its handshakes (checked by the
    /// runtime against the box's key).
    pub cert: Option<Certificate>,
    /// The last revocation list this box saw.
    pub revoked: Option<RevocationList>,
}

pub(super) struct Trust {
    authority: AuthorityPublic,
    cloud: String,
    revoked: Option<RevocationList>,
    /// Set when a newer list arrived: the runtime writes it to disk.
    revoked_changed: bool,
}

impl Trust {
    pub(super) fn new(cfg: &TrustConfig, cloud: &str) -> Trust {
        Trust {
            authority: cfg.authority,
            cloud: cloud.to_string(),
            revoked: cfg.revoked.clone(),
            revoked_changed: false,
        }
    }
}

impl Node {
    /// Unix seconds at `now` (certificate validity).
    pub(super) fn unix_secs(&self, now: Instant) -> u64 {
        self.clock_base.saturating_add(now.micros()) / 1_000_000
    }

    pub(super) fn is_revoked(&self, key: &PublicKey) -> bool {
        self.trust
            .as_ref()
            .and_then(|t| t.revoked.as_ref())
            .is_some_and(|l| l.contains(key))
    }

    /// A certificate's bytes, checked: this cloud, signed, valid now, not
    /// revoked, and (when given) for `key`.
    pub(super) fn check_cert(
        &self,
        now: Instant,
        bytes: &[u8],
        key: Option<&PublicKey>,
    ) -> Result<Certificate, TrustError> {
        let Some(t) = &self.trust else {
            return Err(TrustError::BadSignature);
        };
        let cert = Certificate::parse(bytes)?;
        cert.verify(&t.authority, &t.cloud, self.unix_secs(now))?;
        if key.is_some_and(|k| *k != cert.key) {
            return Err(TrustError::WrongKey);
        }
        if self.is_revoked(&cert.key) || cert.key == self.id.public {
            return Err(TrustError::Revoked);
        }
        Ok(cert)
    }

    /// Admit (or refresh) the member a checked certificate names; its slot,
    /// or None when the table is full of members that are up or
    /// configured. Returns whether the certificate was new here too.
    pub(super) fn admit_certified(
        &mut self,
        now: Instant,
        cert: Certificate,
        bytes: &[u8],
    ) -> Option<(usize, bool)> {
        if let Some(slot) = self.slot_of_key(&cert.key) {
            let p = self.peer_mut(slot)?;
            // New only when it replaces what we hold (a later expiry, or
            // the first one): an older certificate is never passed on, so
            // two of them cannot chase each other around the cloud.
            let new = p.cert.as_deref() != Some(bytes)
                && (p.cert.is_none() || p.cert_until < cert.not_after);
            if new {
                p.cert = Some(bytes.to_vec());
                p.cert_until = cert.not_after;
            }
            if !p.configured {
                p.name.clone_from(&cert.name);
            }
            p.vouched = now;
            return Some((slot, new));
        }
        let mut peer = Peer::new(cert.key, cert.name.clone(), false, Vec::new(), now);
        peer.cert = Some(bytes.to_vec());
        peer.cert_until = cert.not_after;
        let slot = match self.insert(peer) {
            Some(s) => s,
            None => {
                // Full: make room by forgetting a learned member that is
                // not up (it comes back with its next handshake).
                let victim = (0..self.peers.len()).find(|&s| {
                    self.peer(s)
                        .is_some_and(|p| !p.configured && !p.is_up(now) && p.handshake.is_none())
                })?;
                self.remove_slot(victim);
                let mut peer = Peer::new(cert.key, cert.name.clone(), false, Vec::new(), now);
                peer.cert = Some(bytes.to_vec());
                peer.cert_until = cert.not_after;
                self.insert(peer)?
            }
        };
        info!("member {} admitted by its certificate", cert.name);
        Some((slot, true))
    }

    /// A handshake from a key with no slot: admitted only by a valid
    /// certificate in its payload.
    pub(super) fn slot_for_handshake(
        &mut self,
        now: Instant,
        key: &PublicKey,
        cert: &[u8],
    ) -> Option<usize> {
        if self.is_revoked(key) {
            self.stats.dropped_revoked += 1;
            return None;
        }
        if let Some(slot) = self.slot_of_key(key) {
            if !cert.is_empty() {
                if let Ok(c) = self.check_cert(now, cert, Some(key)) {
                    self.admit_certified(now, c, cert);
                }
            }
            return Some(slot);
        }
        if self.trust.is_none() || cert.is_empty() {
            self.stats.dropped_unknown_key += 1;
            return None;
        }
        match self.check_cert(now, cert, Some(key)) {
            Ok(c) => match self.admit_certified(now, c, cert) {
                Some((slot, _)) => Some(slot),
                None => {
                    self.stats.dropped_table_full += 1;
                    None
                }
            },
            Err(e) => {
                self.stats.dropped_bad_cert += 1;
                debug!("handshake with a certificate that is {e}");
                None
            }
        }
    }

    /// A `Cert` message from member `from`.
    pub(super) fn on_cert(
        &mut self,
        now: Instant,
        from: usize,
        bytes: &[u8],
        out: &mut dyn Outbox,
    ) {
        let cert = match self.check_cert(now, bytes, None) {
            Ok(c) => c,
            Err(TrustError::Revoked) => return,
            Err(e) => {
                self.stats.dropped_bad_cert += 1;
                debug!("certificate from a member: {e}");
                return;
            }
        };
        match self.admit_certified(now, cert, bytes) {
            Some((slot, true)) => {
                // New here: tell the others (each forwards only what is
                // new to it, so this ends).
                for to in self.up_slots(now) {
                    if to != from && to != slot {
                        self.send_message(now, to, wire::MSG_CERT, bytes, out);
                    }
                }
            }
            Some((_, false)) => {}
            None => self.stats.dropped_table_full += 1,
        }
    }

    /// A `Revoked` message from member `from`.
    pub(super) fn on_revoked(
        &mut self,
        now: Instant,
        from: usize,
        bytes: &[u8],
        out: &mut dyn Outbox,
    ) {
        let list = match RevocationList::parse(bytes) {
            Ok(l) => l,
            Err(_) => {
                self.stats.dropped_bad_cert += 1;
                return;
            }
        };
        match self.install_revocation(now, list) {
            Ok(true) => {
                for to in self.up_slots(now) {
                    if to != from {
                        self.send_message(now, to, wire::MSG_REVOKED, bytes, out);
                    }
                }
            }
            Ok(false) => {}
            Err(e) => {
                self.stats.dropped_bad_cert += 1;
                debug!("revocation list from a member: {e}");
            }
        }
    }

    /// Take a revocation list if it verifies and is newer than ours; drop
    /// every member it names. Ok(true) when it replaced ours (the caller
    /// floods it; [`Node::take_revocation_change`] hands it to the runtime).
    pub fn install_revocation(
        &mut self,
        now: Instant,
        list: RevocationList,
    ) -> Result<bool, TrustError> {
        let Some(t) = self.trust.as_mut() else {
            return Err(TrustError::BadSignature);
        };
        list.verify(&t.authority, &t.cloud)?;
        if t.revoked
            .as_ref()
            .is_some_and(|old| old.serial >= list.serial)
        {
            return Ok(false);
        }
        t.revoked = Some(list);
        t.revoked_changed = true;
        for slot in 0..self.peers.len() {
            let revoked = self.peer(slot).is_some_and(|p| self.is_revoked(&p.key));
            if revoked {
                if let Some(p) = self.peer(slot) {
                    info!("member {} revoked by the authority", p.name);
                }
                self.remove_slot(slot);
            }
        }
        let _ = now;
        Ok(true)
    }

    /// This box's certificate changed on disk (renewed, or just joined).
    pub fn set_own_certificate(&mut self, cert: Option<&Certificate>) {
        self.id.cert = cert.and_then(|c| c.to_bytes().ok()).unwrap_or_default();
    }

    /// Send our revocation list to every member that is up (after
    /// `cloudy revoke`; each passes it on).
    pub fn announce_revocation(&mut self, now: Instant, out: &mut dyn Outbox) {
        let Some(list) = self.revocation_list().and_then(|l| l.to_bytes().ok()) else {
            return;
        };
        for to in self.up_slots(now) {
            self.send_message(now, to, wire::MSG_REVOKED, &list, out);
        }
    }

    /// The revocation list, when it changed since the last call (for the
    /// runtime to keep on disk).
    pub fn take_revocation_change(&mut self) -> Option<RevocationList> {
        let t = self.trust.as_mut()?;
        if !std::mem::take(&mut t.revoked_changed) {
            return None;
        }
        t.revoked.clone()
    }

    pub fn revocation_list(&self) -> Option<&RevocationList> {
        self.trust.as_ref().and_then(|t| t.revoked.as_ref())
    }

    /// A member's certificate, by name or key, for `cloudy revoke`.
    pub fn member_certificate(&self, key: &PublicKey) -> Option<Certificate> {
        let slot = self.slot_of_key(key)?;
        Certificate::parse(self.peer(slot)?.cert.as_deref()?).ok()
    }

    /// Key of the member called `name` (configured or certified).
    pub fn key_of_name(&self, name: &str) -> Option<PublicKey> {
        self.peers
            .iter()
            .flatten()
            .find(|p| p.name.trim_start_matches('~') == name)
            .map(|p| p.key)
    }

    /// A session with `to` just came up: send it what we know of the
    /// cloud's membership (our certificate, the members' and the
    /// revocation list), so it can reach and check them.
    pub(super) fn send_membership(&mut self, now: Instant, to: usize, out: &mut dyn Outbox) {
        if self.trust.is_none() {
            return;
        }
        let mut certs: Vec<Vec<u8>> = Vec::new();
        if !self.id.cert.is_empty() {
            certs.push(self.id.cert.clone());
        }
        for (slot, p) in self.peers.iter().enumerate() {
            if let Some(p) = p {
                if slot != to {
                    certs.extend(p.cert.clone());
                }
            }
        }
        for c in certs {
            self.send_message(now, to, wire::MSG_CERT, &c, out);
        }
        let list = self.revocation_list().and_then(|l| l.to_bytes().ok());
        if let Some(list) = list {
            self.send_message(now, to, wire::MSG_REVOKED, &list, out);
        }
    }

    fn up_slots(&self, now: Instant) -> Vec<usize> {
        (0..self.peers.len())
            .filter(|&s| self.peer(s).is_some_and(|p| p.is_up(now)))
            .collect()
    }

    /// Forget certified members whose certificate expired.
    pub(super) fn expire_certificates(&mut self, now: Instant) {
        if self.trust.is_none() {
            return;
        }
        let unix = self.unix_secs(now);
        for slot in 0..self.peers.len() {
            let expired = self
                .peer(slot)
                .is_some_and(|p| !p.configured && p.cert.is_some() && p.cert_until < unix);
            if expired {
                self.remove_slot(slot);
            }
        }
    }
}
