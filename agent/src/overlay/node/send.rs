//! Sending: routes (direct or through a relay), sealing, frames from
//! the local device, and the one-hop relay envelope.

use super::*;

impl Node {
    pub(super) fn route(&self, now: Instant, dst: usize) -> Option<Route> {
        let p = self.peer(dst)?;
        if p.is_up(now) {
            return Some(Route::Direct(dst));
        }
        let relay = p.relay?;
        if now.since(p.relay_seen) < RELAY_EXPIRY && self.peer(relay)?.is_up(now) {
            Some(Route::Via { relay, dst })
        } else {
            None
        }
    }

    /// Seal `scratch[DATA_HEADER_LEN..DATA_HEADER_LEN + len]` for the
    /// direct peer `slot` and hand it to the outbox.
    pub(super) fn seal_and_send(
        &mut self,
        now: Instant,
        slot: usize,
        len: usize,
        out: &mut dyn Outbox,
    ) -> bool {
        let Some(p) = self.peers.get_mut(slot).and_then(Option::as_mut) else {
            return false;
        };
        let Some(to) = p.endpoint else { return false };
        let Some(session) = p.send_session(now) else {
            return false;
        };
        match session.seal(&mut self.scratch[..], len) {
            Ok(n) => {
                p.tx_bytes += n as u64;
                self.stats.tx_packets += 1;
                out.send(to, &self.scratch[..n]);
                true
            }
            Err(_) => false,
        }
    }

    /// Fuzzing only (`cfg(fuzzing)`, set by cargo-fuzz): seals `inner` as
    /// it is, kind byte included, for the direct peer with `key`: what a
    /// member gone bad can make its peers decrypt. False without a session.
    #[cfg(fuzzing)]
    pub fn fuzz_send_inner(
        &mut self,
        now: Instant,
        key: &PublicKey,
        inner: &[u8],
        out: &mut dyn Outbox,
    ) -> bool {
        let Some(slot) = self.slot_of_key(key) else {
            return false;
        };
        let Some(room) = self
            .scratch
            .get_mut(DATA_HEADER_LEN..DATA_HEADER_LEN + inner.len())
        else {
            return false;
        };
        if DATA_HEADER_LEN + inner.len() + TAG_LEN > MAX_DATAGRAM {
            return false;
        }
        room.copy_from_slice(inner);
        self.seal_and_send(now, slot, inner.len(), out)
    }

    /// Send an inner message (`kind` + `body`) to member `dst`, directly
    /// or through its relay. Relayed messages may only be frames or probes.
    pub(super) fn send_message(
        &mut self,
        now: Instant,
        dst: usize,
        kind: u8,
        body: &[u8],
        out: &mut dyn Outbox,
    ) -> bool {
        self.send_message_with(now, dst, kind, &[], body, out)
    }

    /// [`Node::send_message`] with `head` written before `body`.
    pub(super) fn send_message_with(
        &mut self,
        now: Instant,
        dst: usize,
        kind: u8,
        head: &[u8],
        body: &[u8],
        out: &mut dyn Outbox,
    ) -> bool {
        let Some(route) = self.route(now, dst) else {
            self.stats.dropped_no_route += 1;
            return false;
        };
        let (via, mut at) = match route {
            Route::Direct(d) => (d, DATA_HEADER_LEN),
            Route::Via { relay, dst } => {
                let Some(id) = self.peer(dst).map(|p| p.id) else {
                    return false;
                };
                self.scratch[DATA_HEADER_LEN] = wire::MSG_RELAY_TO;
                self.scratch[DATA_HEADER_LEN + 1..DATA_HEADER_LEN + 9].copy_from_slice(&id);
                (relay, DATA_HEADER_LEN + wire::RELAY_OVERHEAD)
            }
        };
        if at + 1 + head.len() + body.len() + TAG_LEN > self.scratch.len() {
            self.stats.dropped_oversize += 1;
            return false;
        }
        self.scratch[at] = kind;
        at += 1;
        self.scratch[at..at + head.len()].copy_from_slice(head);
        at += head.len();
        self.scratch[at..at + body.len()].copy_from_slice(body);
        at += body.len();
        self.seal_and_send(now, via, at - DATA_HEADER_LEN, out)
    }

    pub(super) fn send_probe(
        &mut self,
        now: Instant,
        dst: usize,
        pong: bool,
        seq: u32,
        echo: u64,
        out: &mut dyn Outbox,
    ) {
        let mut b = [0u8; wire::PROBE_LEN];
        if wire::emit_probe(&mut b, pong, seq, echo).is_ok() {
            self.send_message(now, dst, b[0], &b[1..], out);
        }
    }

    /// A frame read from the local overlay device.
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8], out: &mut dyn Outbox) {
        self.handle_frame_partial(now, frame, None, out);
    }

    /// A frame read from the local overlay device whose TCP/UDP checksum
    /// may be partial (`csum`, from `offload::segment`): it travels as
    /// `FramePartial` and the receiver finishes or offloads it.
    pub fn handle_frame_partial(
        &mut self,
        now: Instant,
        frame: &[u8],
        csum: Option<PartialCsum>,
        out: &mut dyn Outbox,
    ) {
        if frame.len() < wire::MIN_FRAME {
            self.stats.dropped_malformed += 1;
            return;
        }
        if frame.len() > wire::MAX_OVERLAY_FRAME {
            self.stats.dropped_oversize += 1;
            return;
        }
        self.stats.tx_frames += 1;
        let mut dst = [0u8; 6];
        dst.copy_from_slice(&frame[..6]);
        if !is_multicast(&dst) {
            if let Some(slot) = self.macs.lookup(&dst, now) {
                let slot = usize::from(slot);
                if self.route(now, slot).is_some() {
                    self.send_frame(now, slot, frame, csum, out);
                    return;
                }
            }
        }
        // Broadcast, multicast or unknown unicast: flood to every member.
        for slot in 0..self.peers.len() {
            if self.route(now, slot).is_some() {
                self.send_frame(now, slot, frame, csum, out);
            }
        }
    }

    pub(super) fn send_frame(
        &mut self,
        now: Instant,
        slot: usize,
        frame: &[u8],
        csum: Option<PartialCsum>,
        out: &mut dyn Outbox,
    ) {
        match csum {
            None => self.send_message(now, slot, wire::MSG_FRAME, frame, out),
            Some(c) => self.send_message_with(
                now,
                slot,
                wire::MSG_FRAME_PARTIAL,
                &wire::frame_partial_header(c),
                frame,
                out,
            ),
        };
    }
}
