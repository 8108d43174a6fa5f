//! Membership: the configured peers and the gossip this box sends and
//! reads. Reload applies a new peer list as a diff.
//!
//! Trust: a box accepts exactly the keys in its own config. Gossip from a
//! member tells where other members are (their endpoints as the sender
//! sees them) and that it can relay to them; a key gossip names that this
//! box does not accept is counted (`gossip_unknown`) and ignored. So a
//! member gone bad can lie only about members' addresses (each a handshake
//! candidate tried with backoff, sealed to that member's key) and about
//! relaying (frames it relays are still end-to-end authenticated).

use super::*;

impl Node {
    /// Apply a new peer list: only added, removed or changed peers are
    /// touched; sessions of unchanged peers continue.
    pub fn set_peers(&mut self, now: Instant, specs: &[PeerSpec]) {
        // Remove configured peers that are gone.
        for slot in 0..self.peers.len() {
            let gone = match &self.peers[slot] {
                Some(p) => p.configured && !specs.iter().any(|s| s.key == p.key),
                None => false,
            };
            if gone {
                self.remove_slot(slot);
            }
        }
        for spec in specs {
            if spec.key == self.id.public {
                continue;
            }
            if self.is_revoked(&spec.key) {
                crate::warn!(
                    "peer {} is revoked by the cloud's authority: ignored",
                    spec.name
                );
                continue;
            }
            match self.slot_of_key(&spec.key) {
                Some(slot) => {
                    if let Some(p) = self.peers[slot].as_mut() {
                        p.configured = true;
                        p.name.clone_from(&spec.name);
                        if p.endpoints != spec.endpoints {
                            p.endpoints.clone_from(&spec.endpoints);
                            p.next_attempt = now;
                            p.backoff = FIRST_BACKOFF;
                        }
                    }
                }
                None => {
                    let peer = Peer::new(
                        spec.key,
                        spec.name.clone(),
                        true,
                        spec.endpoints.clone(),
                        now,
                    );
                    if self.insert(peer).is_none() {
                        crate::warn!("peer table full ({MAX_PEERS}): peer {} ignored", spec.name);
                    }
                }
            }
        }
    }

    pub(super) fn insert(&mut self, peer: Peer) -> Option<usize> {
        let slot = self.peers.iter().position(Option::is_none)?;
        self.peers[slot] = Some(peer);
        Some(slot)
    }

    pub(super) fn remove_slot(&mut self, slot: usize) {
        if let Some(p) = self.peers[slot].take() {
            info!("peer {} removed", p.name);
        }
        self.forget_routes_through(slot);
    }

    pub(super) fn forget_routes_through(&mut self, slot: usize) {
        if let Ok(port) = u8::try_from(slot) {
            self.macs.forget_port(port);
        }
        for p in self.peers.iter_mut().flatten() {
            if p.relay == Some(slot) {
                p.relay = None;
            }
        }
    }

    pub(super) fn on_gossip_entry(
        &mut self,
        now: Instant,
        from: usize,
        key: PublicKey,
        endpoint: Option<SocketAddr>,
        name: &str,
    ) {
        if key == self.id.public {
            return;
        }
        // Gossip carries endpoints and relay paths of members this box
        // already accepts; it never admits one (any member could otherwise
        // let anyone in, and fill the peer table with made-up keys).
        let Some(slot) = self.slot_of_key(&key) else {
            self.stats.gossip_unknown += 1;
            debug!("gossip names {name}, not a member here: ignored");
            return;
        };
        let _ = name;
        if slot == from {
            return;
        }
        let Some(p) = self.peer_mut(slot) else { return };
        p.vouched = now;
        if endpoint.is_some() {
            p.gossip_endpoint = endpoint;
        }
        if !p.is_up(now) {
            p.relay = Some(from);
            p.relay_seen = now;
            // Hole punching: both sides hear of each other now and try at once.
            if p.handshake.is_none() && p.next_attempt > now + FIRST_BACKOFF {
                p.next_attempt = now;
            }
        }
    }

    pub(super) fn send_gossip(&mut self, now: Instant, to: usize, out: &mut dyn Outbox) {
        let members: Vec<(PublicKey, Option<SocketAddr>, String)> = self
            .peers
            .iter()
            .enumerate()
            .filter(|(s, _)| *s != to)
            .filter_map(|(_, p)| p.as_ref())
            .filter(|p| p.is_up(now))
            .map(|p| {
                (
                    p.key,
                    p.endpoint,
                    p.name.trim_start_matches('~').to_string(),
                )
            })
            .collect();
        let mut buf = [0u8; MAX_DATAGRAM - DATA_HEADER_LEN - TAG_LEN - 64];
        for chunk in members.chunks(MAX_GOSSIP_ENTRIES) {
            let Ok(mut w) = GossipWriter::new(&mut buf[..1200]) else {
                return;
            };
            for (key, endpoint, name) in chunk {
                w.push(&GossipEntry {
                    key: *key,
                    endpoint: *endpoint,
                    name,
                });
            }
            let n = w.finish();
            self.send_message(now, to, buf[0], &buf[1..n], out);
        }
    }
}
