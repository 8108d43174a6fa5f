//! Timers: handshake retries with backoff, keepalives and RTT, rekeying,
//! dead peers, gossip rounds; handshake timestamps.

use super::*;

impl Node {
    pub fn poll_at(&self) -> Option<Instant> {
        Some(self.next_tick)
    }

    pub fn handle_timeout(&mut self, now: Instant, out: &mut dyn Outbox) {
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + TICK;
        self.macs.expire(now);
        self.expire_certificates(now);
        for slot in 0..self.peers.len() {
            if self.peers[slot].is_some() {
                self.peer_timers(now, slot, out);
            }
        }
    }

    pub(super) fn peer_timers(&mut self, now: Instant, slot: usize, out: &mut dyn Outbox) {
        let Some(p) = self.peer_mut(slot) else { return };
        for s in [&mut p.current, &mut p.previous, &mut p.next] {
            if s.as_ref().is_some_and(|s| s.age(now) >= REJECT_AFTER_TIME) {
                *s = None;
            }
        }
        // Dead: nothing authenticated for DEAD_AFTER.
        let had_session = p.current.is_some() || p.previous.is_some();
        if had_session && p.last_rx.is_none_or(|t| now.since(t) >= DEAD_AFTER) {
            info!(
                "peer {} down (silent for {}s)",
                p.name,
                DEAD_AFTER.as_secs()
            );
            p.drop_sessions();
            p.rtt_us = None;
            p.next_attempt = now;
            p.backoff = FIRST_BACKOFF;
            self.forget_routes_through(slot);
            return;
        }
        if !p.configured && !p.is_up(now) && now.since(p.vouched) >= LEARNED_EXPIRY {
            self.remove_slot(slot);
            return;
        }
        let Some(p) = self.peer_mut(slot) else { return };
        // Handshake timeout and retry with backoff.
        if let Some(h) = &p.handshake {
            if now.since(h.sent_at) >= HANDSHAKE_TIMEOUT {
                p.handshake = None;
                p.next_attempt = now + p.backoff;
                p.backoff = (p.backoff * 2).min(MAX_BACKOFF);
            }
        }
        let up = p.is_up(now);
        let rekey = p.current.as_ref().is_some_and(|s| {
            let limit = if s.initiator {
                REKEY_AFTER_TIME
            } else {
                RESPONDER_REKEY
            };
            s.confirmed && (s.age(now) >= limit || s.sent_messages() >= REKEY_AFTER_MESSAGES)
        });
        if p.handshake.is_none() && ((!up && now >= p.next_attempt) || rekey) {
            if !up {
                p.next_attempt = now + p.backoff;
            }
            self.initiate(now, slot, out);
        }
        let Some(p) = self.peer_mut(slot) else { return };
        // A keepalive left unanswered: the other side may have restarted
        // (or moved). Handshake now; the session stays until replaced.
        if let Some(sent) = p.probe_sent {
            if p.last_rx.is_some_and(|t| t >= sent) {
                p.probe_sent = None;
            } else if now.since(sent) >= PROBE_TIMEOUT {
                p.probe_sent = None;
                let quiet = p
                    .last_handshake
                    .is_none_or(|t| now.since(t) >= HINT_HOLDOFF);
                if up && quiet && p.handshake.is_none() {
                    debug!("keepalive to {} unanswered: new handshake", p.name);
                    self.initiate(now, slot, out);
                }
            }
        }
        let Some(p) = self.peer_mut(slot) else { return };
        if up && now >= p.ping_due {
            p.ping_due = now + KEEPALIVE_INTERVAL;
            p.probe_sent.get_or_insert(now);
            self.ping(now, slot, out);
        } else if !up && p.relay.is_some() && now >= p.ping_due {
            // Relayed members are probed through the relay for RTT.
            p.ping_due = now + KEEPALIVE_INTERVAL;
            self.ping(now, slot, out);
        }
        let Some(p) = self.peer_mut(slot) else { return };
        if up && now >= p.gossip_due {
            p.gossip_due = now + GOSSIP_INTERVAL;
            self.send_gossip(now, slot, out);
        }
    }

    pub(super) fn ping(&mut self, now: Instant, slot: usize, out: &mut dyn Outbox) {
        let Some(p) = self.peer_mut(slot) else { return };
        p.ping_seq = p.ping_seq.wrapping_add(1);
        let seq = p.ping_seq;
        self.send_probe(now, slot, false, seq, now.micros(), out);
    }

    pub(super) fn initiate(&mut self, now: Instant, slot: usize, out: &mut dyn Outbox) {
        let timestamp = self.next_timestamp(now);
        let Some(p) = self.peers.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let candidates = p.candidates();
        if candidates.is_empty() {
            return;
        }
        let to = candidates[p.attempt % candidates.len()];
        p.attempt = p.attempt.wrapping_add(1);
        let cookie = p
            .cookie
            .filter(|(_, t)| now.since(*t) < COOKIE_SECRET_LIFETIME)
            .map(|(c, _)| c);
        let local_index = session_index(slot);
        match Initiation::start(
            &self.id,
            &p.key,
            local_index,
            timestamp,
            cookie.as_ref(),
            &mut self.scratch[..],
        ) {
            Ok((init, n)) => {
                debug!("handshake to {} at {to}", p.name);
                p.handshake = Some(Pending {
                    init,
                    sent_at: now,
                    to,
                });
                out.send(to, &self.scratch[..n]);
            }
            Err(e) => crate::warn!("handshake to {}: {e}", p.name),
        }
    }

    pub(super) fn next_timestamp(&mut self, now: Instant) -> u64 {
        let t = self
            .clock_base
            .saturating_add(now.micros())
            .max(self.last_timestamp + 1);
        self.last_timestamp = t;
        t
    }
}
