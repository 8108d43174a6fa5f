//! Receiving: datagrams from the underlay: handshakes (with the DoS
//! guard), cookies, data, inner messages, relays; MAC learning.

use super::*;

impl Node {
    /// One UDP datagram from the underlay. Decrypts in place.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        packet: &mut [u8],
        out: &mut dyn Outbox,
    ) {
        self.stats.rx_packets += 1;
        let parsed = match Packet::parse(packet) {
            Ok(p) => p,
            Err(e) => {
                self.stats.dropped_malformed += 1;
                debug!("{from}: {e}");
                return;
            }
        };
        match parsed {
            Packet::HandshakeInit {
                sender_index,
                noise,
                mac1_covered,
                mac1,
                mac2_covered,
                mac2,
            } => {
                match self
                    .guard
                    .check(now, from, mac1_covered, mac1, mac2_covered, mac2)
                {
                    GuardVerdict::Reject => self.stats.dropped_auth += 1,
                    GuardVerdict::SendCookie(nonce, sealed) => {
                        self.stats.cookies_sent += 1;
                        if let Ok(n) = wire::emit_cookie_reply(
                            &mut self.scratch[..],
                            sender_index,
                            &nonce,
                            &sealed,
                        ) {
                            out.send(from, &self.scratch[..n]);
                        }
                    }
                    GuardVerdict::Accept => self.on_init(now, from, sender_index, noise, out),
                }
            }
            Packet::HandshakeResp {
                sender_index,
                receiver_index,
                noise,
                mac1_covered,
                mac1,
                ..
            } => {
                if !self.guard.mac1_ok(mac1_covered, mac1) {
                    self.stats.dropped_auth += 1;
                    return;
                }
                self.on_resp(now, from, sender_index, receiver_index, noise, out);
            }
            Packet::CookieReply {
                receiver_index,
                nonce,
                sealed,
            } => self.on_cookie(now, from, receiver_index, &nonce, &sealed),
            Packet::SessionUnknown { receiver_index } => {
                self.on_session_unknown(now, from, receiver_index, out)
            }
            Packet::Data {
                receiver_index,
                counter,
            } => self.on_data(now, from, receiver_index, counter, packet, out),
        }
    }

    pub(super) fn on_init(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender_index: u32,
        noise: &[u8],
        out: &mut dyn Outbox,
    ) {
        let resp = match Responder::read(&self.id, sender_index, noise) {
            Ok(r) => r,
            Err(e) => {
                self.stats.dropped_auth += 1;
                debug!("{from}: initiation: {e}");
                return;
            }
        };
        let key = resp.remote_key;
        let Some(slot) = self.slot_for_handshake(now, &key, &resp.payload.cert) else {
            debug!("{from}: handshake from a key that is not a member");
            return;
        };
        let Some(p) = self.peers[slot].as_mut() else {
            return;
        };
        if resp.payload.timestamp <= p.last_init_timestamp {
            self.stats.dropped_replay += 1;
            debug!("{from}: replayed initiation of {}", p.name);
            return;
        }
        p.last_init_timestamp = resp.payload.timestamp;
        if !p.configured && !resp.payload.name.is_empty() && p.cert.is_none() {
            p.name = format!("~{}", resp.payload.name);
        }
        let local_index = session_index(slot);
        match resp.accept(&self.id, now, local_index, &mut self.scratch[..]) {
            Ok((session, n)) => {
                out.send(from, &self.scratch[..n]);
                if let Some(p) = self.peers[slot].as_mut() {
                    p.next = Some(session);
                }
            }
            Err(e) => {
                self.stats.dropped_auth += 1;
                debug!("{from}: response: {e}");
            }
        }
    }

    pub(super) fn on_resp(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender_index: u32,
        receiver_index: u32,
        noise: &[u8],
        out: &mut dyn Outbox,
    ) {
        let slot = slot_of_index(receiver_index);
        let matches = self
            .peer(slot)
            .and_then(|p| p.handshake.as_ref())
            .is_some_and(|h| h.init.local_index == receiver_index);
        if !matches {
            self.stats.dropped_stale += 1;
            return;
        }
        let Some(p) = self.peers[slot].as_mut() else {
            return;
        };
        let Some(pending) = p.handshake.take() else {
            return;
        };
        match pending.init.finish(now, sender_index, noise) {
            Ok((session, payload)) => {
                if !p.configured && !payload.name.is_empty() && p.cert.is_none() {
                    p.name = format!("~{}", payload.name);
                }
                p.previous = p.current.take();
                p.current = Some(session);
                p.endpoint = Some(from);
                self.established(now, slot, out);
                // Confirms the session to the responder and measures RTT.
                self.ping(now, slot, out);
            }
            Err(e) => {
                self.stats.dropped_auth += 1;
                debug!("{from}: handshake response: {e}");
            }
        }
    }

    pub(super) fn established(&mut self, now: Instant, slot: usize, out: &mut dyn Outbox) {
        self.stats.handshakes_completed += 1;
        let Some(p) = self.peer_mut(slot) else { return };
        let was_up =
            p.last_rx.is_some_and(|t| now.since(t) < DEAD_AFTER) && p.last_handshake.is_some();
        p.last_rx = Some(now);
        p.last_handshake = Some(now);
        p.backoff = FIRST_BACKOFF;
        p.relay = None;
        p.gossip_due = now;
        if !was_up {
            info!(
                "peer {} up at {}",
                p.name,
                p.endpoint.map_or("?".into(), |e| e.to_string())
            );
            // Tell everyone else: they may now reach it through us.
            for q in self.peers.iter_mut().flatten() {
                q.gossip_due = now;
            }
            self.send_membership(now, slot, out);
        }
    }

    /// A cookie reply (WireGuard §5.4.7): read only for the handshake in
    /// flight to the address it came from, and only if it opens under that
    /// peer's key and the initiation's mac1. It never cancels the
    /// handshake: the cookie is kept for the retry (a forged reply used to
    /// restart the handshake at once, so a sniffer could keep a box out).
    pub(super) fn on_cookie(
        &mut self,
        now: Instant,
        from: SocketAddr,
        receiver_index: u32,
        nonce: &[u8; wire::COOKIE_NONCE_LEN],
        sealed: &[u8; wire::SEALED_COOKIE_LEN],
    ) {
        let slot = slot_of_index(receiver_index);
        let cookie = self.peer(slot).and_then(|p| {
            let h = p.handshake.as_ref()?;
            if h.init.local_index != receiver_index || h.to != from {
                return None;
            }
            noise::open_cookie(&p.key, &h.init.mac1, nonce, sealed)
        });
        match (cookie, self.peer_mut(slot)) {
            (Some(cookie), Some(p)) => {
                p.cookie = Some((cookie, now));
                self.stats.cookies_received += 1;
            }
            _ => self.stats.cookies_refused += 1,
        }
    }

    /// Data for a session we do not have: most likely we restarted and the
    /// sender still uses the session it had with our previous run. Tell it
    /// (8 bytes, smaller than what came in, globally rate limited), so it
    /// starts a handshake now instead of after [`DEAD_AFTER`].
    fn hint_session_unknown(
        &mut self,
        now: Instant,
        from: SocketAddr,
        index: u32,
        out: &mut dyn Outbox,
    ) {
        if !self.hint_bucket.take(now) {
            return;
        }
        if let Ok(n) = wire::emit_session_unknown(&mut self.scratch[..], index) {
            self.stats.hints_sent += 1;
            out.send(from, &self.scratch[..n]);
        }
    }

    /// A "session unknown" hint. Unauthenticated, so it only ever starts a
    /// handshake (the current session stays until the new one is
    /// confirmed), and only when it names the index our current session
    /// sends to, comes from that session's endpoint, and no handshake with
    /// this peer is pending or completed within [`HINT_HOLDOFF`]: a forger
    /// (it must see our traffic to know the index) can at most make us
    /// rekey every few seconds.
    pub(super) fn on_session_unknown(
        &mut self,
        now: Instant,
        from: SocketAddr,
        index: u32,
        out: &mut dyn Outbox,
    ) {
        let slot = self.peers.iter().position(|p| {
            p.as_ref().is_some_and(|p| {
                p.endpoint == Some(from)
                    && p.current.as_ref().is_some_and(|s| s.remote_index == index)
            })
        });
        let Some((slot, p)) = slot.and_then(|s| Some((s, self.peers[s].as_ref()?))) else {
            return;
        };
        let quiet = p
            .last_handshake
            .is_none_or(|t| now.since(t) >= HINT_HOLDOFF);
        if p.handshake.is_some() || !quiet {
            return;
        }
        self.stats.hints_received += 1;
        info!(
            "peer {} lost our session (restarted?): new handshake",
            p.name
        );
        self.initiate(now, slot, out);
    }

    pub(super) fn on_data(
        &mut self,
        now: Instant,
        from: SocketAddr,
        index: u32,
        counter: u64,
        packet: &mut [u8],
        out: &mut dyn Outbox,
    ) {
        let slot = slot_of_index(index);
        let Some(p) = self.peers.get_mut(slot).and_then(Option::as_mut) else {
            self.stats.dropped_stale += 1;
            self.hint_session_unknown(now, from, index, out);
            return;
        };
        let is = |s: &Option<Session>| s.as_ref().is_some_and(|s| s.local_index == index);
        let (session, promote) = if is(&p.current) {
            (p.current.as_mut(), false)
        } else if is(&p.next) {
            (p.next.as_mut(), true)
        } else if is(&p.previous) {
            (p.previous.as_mut(), false)
        } else {
            (None, false)
        };
        let Some(session) = session.filter(|s| s.age(now) < REJECT_AFTER_TIME) else {
            self.stats.dropped_stale += 1;
            self.hint_session_unknown(now, from, index, out);
            return;
        };
        let range = match session.open(counter, packet) {
            Ok(r) => r,
            Err(noise::NoiseError::Replay) => {
                self.stats.dropped_replay += 1;
                return;
            }
            Err(_) => {
                self.stats.dropped_auth += 1;
                return;
            }
        };
        p.rx_bytes += packet.len() as u64;
        p.last_rx = Some(now);
        if p.endpoint != Some(from) {
            if p.endpoint.is_some() {
                info!("peer {} moved to {from}", p.name);
            }
            p.endpoint = Some(from);
        }
        if promote {
            p.previous = p.current.take();
            p.current = p.next.take();
            self.established(now, slot, out);
        }
        self.on_message(now, slot, None, &packet[range], out);
    }

    /// An authenticated inner message from `slot`, or relayed by `via`.
    pub(super) fn on_message(
        &mut self,
        now: Instant,
        slot: usize,
        via: Option<usize>,
        plain: &[u8],
        out: &mut dyn Outbox,
    ) {
        let msg = match Message::parse(plain) {
            Ok(m) => m,
            Err(_) => {
                self.stats.dropped_malformed += 1;
                return;
            }
        };
        match msg {
            Message::Frame(frame) => {
                self.learn_source(now, slot, frame);
                out.deliver(frame);
            }
            Message::FramePartial { csum, frame } => {
                self.learn_source(now, slot, frame);
                out.deliver_partial(frame, csum);
            }
            Message::Ping { seq, echo } => self.send_probe(now, slot, true, seq, echo, out),
            Message::Pong { echo, .. } => {
                let sample = now.micros().saturating_sub(echo);
                if let Some(p) = self.peer_mut(slot) {
                    let rtt = if via.is_some() {
                        &mut p.relay_rtt_us
                    } else {
                        &mut p.rtt_us
                    };
                    *rtt = Some(rtt.map_or(sample, |old| (old * 7 + sample) / 8));
                }
            }
            Message::Gossip(g) if via.is_none() => {
                let entries: heapless::Vec<
                    (
                        PublicKey,
                        Option<SocketAddr>,
                        heapless::String<MAX_NAME_LEN>,
                    ),
                    MAX_GOSSIP_ENTRIES,
                > = g
                    .entries()
                    .map(|e| {
                        (
                            e.key,
                            e.endpoint,
                            heapless::String::try_from(e.name).unwrap_or_default(),
                        )
                    })
                    .collect();
                for (key, endpoint, name) in entries {
                    self.on_gossip_entry(now, slot, key, endpoint, &name);
                }
            }
            Message::RelayTo { dst, inner } if via.is_none() => {
                let Some(target) = self.slot_of_id(&dst) else {
                    self.stats.dropped_no_route += 1;
                    return;
                };
                if target == slot || !self.peer(target).is_some_and(|p| p.is_up(now)) {
                    self.stats.dropped_no_route += 1;
                    return;
                }
                let Some(src) = self.peer(slot).map(|p| p.id) else {
                    return;
                };
                let (kind, body) = (wire::MSG_RELAY_FROM, &mut [0u8; 8]);
                body.copy_from_slice(&src);
                let at = DATA_HEADER_LEN;
                if at + 9 + inner.len() + TAG_LEN > self.scratch.len() {
                    self.stats.dropped_oversize += 1;
                    return;
                }
                self.scratch[at] = kind;
                self.scratch[at + 1..at + 9].copy_from_slice(body);
                self.scratch[at + 9..at + 9 + inner.len()].copy_from_slice(inner);
                if self.seal_and_send(now, target, 9 + inner.len(), out) {
                    self.stats.relayed_frames += 1;
                }
            }
            Message::RelayFrom { src, inner } if via.is_none() => {
                let Some(origin) = self.slot_of_id(&src).filter(|&o| o != slot) else {
                    self.stats.dropped_unknown_key += 1;
                    return;
                };
                if let Some(p) = self.peer_mut(origin) {
                    if !p.is_up(now) {
                        p.relay = Some(slot);
                        p.relay_seen = now;
                    }
                }
                self.on_message(now, origin, Some(slot), inner, out);
            }
            Message::Cert(b) if via.is_none() => self.on_cert(now, slot, b, out),
            Message::Revoked(b) if via.is_none() => self.on_revoked(now, slot, b, out),
            // Gossip, membership and relay envelopes are never valid
            // inside a relay.
            _ => self.stats.dropped_malformed += 1,
        }
    }

    /// A frame from member `slot` is about to be delivered: its source MAC
    /// lives behind that member. (`frame` has at least `MIN_FRAME` bytes.)
    pub(super) fn learn_source(&mut self, now: Instant, slot: usize, frame: &[u8]) {
        let mut src = [0u8; 6];
        src.copy_from_slice(&frame[6..12]);
        if let Ok(port) = u8::try_from(slot) {
            self.macs.learn(src, port, now);
        }
        self.stats.rx_frames += 1;
    }
}
