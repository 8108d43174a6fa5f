//! What `cloudy peers` and `cloudy status` show of the engine.

use super::*;

impl Node {
    pub fn peer_infos(&self, now: Instant) -> Vec<PeerInfo> {
        self.peers
            .iter()
            .enumerate()
            .filter_map(|(slot, p)| p.as_ref().map(|p| (slot, p)))
            .map(|(slot, p)| {
                let route = self.route(now, slot);
                let (state, hops, via, rtt) = match route {
                    Some(Route::Direct(_)) => (PeerState::Up, 1, None, p.rtt_us),
                    Some(Route::Via { relay, .. }) => (
                        PeerState::Relayed,
                        2,
                        self.peer(relay).map(|r| r.name.clone()),
                        p.relay_rtt_us,
                    ),
                    None if p.handshake.is_some() => (PeerState::Connecting, 0, None, None),
                    None => (PeerState::Down, 0, None, None),
                };
                PeerInfo {
                    name: p.name.clone(),
                    public_key: p.key,
                    endpoint: p
                        .endpoint
                        .or(p.gossip_endpoint)
                        .or(p.endpoints.first().copied()),
                    state,
                    rtt_us: rtt,
                    hops,
                    last_handshake_secs: p.last_handshake.map(|t| now.since(t).as_secs()),
                    via,
                    rx_bytes: p.rx_bytes,
                    tx_bytes: p.tx_bytes,
                }
            })
            .collect()
    }

    /// Count of (configured, known, direct up, relayed) members.
    pub fn peer_counts(&self, now: Instant) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for (slot, p) in self.peers.iter().enumerate() {
            let Some(p) = p else { continue };
            c.1 += 1;
            if p.configured {
                c.0 += 1;
            }
            match self.route(now, slot) {
                Some(Route::Direct(_)) => c.2 += 1,
                Some(Route::Via { .. }) => c.3 += 1,
                None => {}
            }
        }
        c
    }
}
