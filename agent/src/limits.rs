//! Every fixed capacity and protocol timer of the agent, in one place.
//!
//! Tables are allocated once at these sizes and never grow: when one is
//! full the newest entry is refused or the oldest evicted, as each
//! module's doc says. Small boards may lower them; nothing else in the
//! code assumes particular values.

use core::time::Duration;

// ---- overlay: peers and switching ----

/// Members of one micro cloud this box can know (configured + learned).
pub const MAX_PEERS: usize = 64;
/// Endpoints listed for one configured peer.
pub const MAX_ENDPOINTS_PER_PEER: usize = 4;
/// Entries of the learning switch's MAC table.
pub const MAC_TABLE_SIZE: usize = 512;
/// A MAC table entry not refreshed for this long is forgotten.
pub const MAC_AGEING: Duration = Duration::from_secs(300);
/// Members one gossip message can carry (it must fit one datagram).
pub const MAX_GOSSIP_ENTRIES: usize = 16;
/// Longest node name carried in handshakes and gossip.
pub const MAX_NAME_LEN: usize = 32;

// ---- overlay: timers (cf. WireGuard paper §6) ----

/// Keepalive/RTT probe interval on an established session. Short enough
/// that a restarted peer is noticed within 3 s: the keepalive reaches it,
/// it answers "session unknown", and a handshake follows at once (about
/// 70 bytes each way per peer every 2 s).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
/// A keepalive with no authenticated answer in this time starts a new
/// handshake (the old session stays until the new one is confirmed).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// No handshake is started by a hint or an unanswered keepalive within
/// this time of the last completed one (bounds what forged hints cost).
pub const HINT_HOLDOFF: Duration = Duration::from_secs(2);
/// "Session unknown" hints sent per second at most, and their burst.
pub const HINTS_PER_SEC: u32 = 20;
pub const HINT_BURST: u32 = 20;
/// A peer silent this long is dead (several keepalives lost).
pub const DEAD_AFTER: Duration = Duration::from_secs(15);
/// Initiator starts a new handshake after this session age.
pub const REKEY_AFTER_TIME: Duration = Duration::from_secs(120);
/// ... or after this many messages sent on one session.
pub const REKEY_AFTER_MESSAGES: u64 = 1 << 48;
/// A session older than this is never used, in either direction.
pub const REJECT_AFTER_TIME: Duration = Duration::from_secs(180);
/// Counter at which a session refuses to send (well below 2^64 nonces).
pub const REJECT_AFTER_MESSAGES: u64 = u64::MAX - (1 << 13);
/// A handshake not answered in this time is retried.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// Retry backoff of an unreachable peer doubles up to this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Gossip of known members to each direct peer.
pub const GOSSIP_INTERVAL: Duration = Duration::from_secs(10);
/// Bits of the anti-replay window (RFC 6479 style bitmap).
pub const REPLAY_WINDOW_BITS: usize = 2048;

// ---- overlay: DoS guard ----

/// Handshakes per second processed before cookies are demanded.
pub const HANDSHAKES_PER_SEC: u32 = 50;
/// Burst of the handshake token bucket.
pub const HANDSHAKE_BURST: u32 = 100;
/// The cookie secret is rotated this often.
pub const COOKIE_SECRET_LIFETIME: Duration = Duration::from_secs(120);

// ---- runtime ----

/// Datagrams received or sent per recvmmsg/sendmmsg call.
pub const UDP_BATCH: usize = 32;
/// Frames read from the TAP/raw device per wakeup (bounds latency for the rest).
pub const DEVICE_BATCH: usize = 32;
/// After the kernel refused UDP GSO for a segment size (larger than the
/// route's MTU), datagrams of that size leave one by one; this often GSO
/// is tried again for every size.
pub const GSO_REPROBE_INTERVAL: Duration = Duration::from_secs(60);
/// Host-name endpoints are looked up again this often (dynamic addresses).
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(300);
/// Addresses kept per host-name endpoint.
pub const MAX_ADDRS_PER_NAME: usize = 4;
/// Name lookups waiting for the resolver thread; more wait for the next interval.
pub const MAX_PENDING_LOOKUPS: usize = 64;
/// Largest UDP datagram handled (underlay MTU is at most this).
pub const MAX_DATAGRAM: usize = 2048;
/// Largest Ethernet frame on the overlay device (MTU + 14 + slack).
pub const MAX_FRAME: usize = 1600;
/// Console clients held at once (LuCI pages and scripts run `cloudy` in
/// parallel). Each costs at most a frame decoder and an output buffer,
/// about 48 KiB when full.
pub const MAX_CONSOLE_CLIENTS: usize = 8;
/// Clients that came when every slot was taken, each waiting at most
/// `CONSOLE_BUSY_GRACE` for its request to be answered once, else told
/// `busy` (console::server). With the slots: 16 × 48 KiB at most.
pub const MAX_CONSOLE_WAITING: usize = 8;
/// See `MAX_CONSOLE_WAITING`. `cloudy` writes its request right after
/// connecting; this covers the daemon accepting first, also on a loaded
/// single-core router.
pub const CONSOLE_BUSY_GRACE: Duration = Duration::from_millis(100);
/// A console client has this long from being accepted, and again from
/// each complete request, to send its next complete request (and to read
/// the answer); then it is closed. `cloudy` needs microseconds; a client
/// trickling bytes cannot hold a slot longer than this.
pub const CONSOLE_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest console request or response frame.
pub const MAX_CONSOLE_MESSAGE: usize = 16 * 1024;

// ---- config ----

/// Largest UCI file accepted.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;
/// Overlay addresses on the device.
pub const MAX_ADDRESSES: usize = 4;

// ---- discovery: config (mDNS/DNS-SD, RFC 6762/6763) ----

/// Interfaces listed in `list mdns_interface`, besides the overlay device.
pub const MAX_MDNS_INTERFACES: usize = 4;
/// `config service` sections published by this box.
pub const MAX_SERVICES: usize = 32;
/// TXT strings of one configured service (each ≤ 255 bytes, RFC 6763 §6.1).
pub const MAX_TXT_ENTRIES: usize = 16;

// ---- mDNS / DNS-SD (RFC 6762, RFC 6763): capacities ----

/// Interfaces the responder and browser run on: the overlay device plus
/// the `mdns_interface`s.
pub const MDNS_MAX_INTERFACES: usize = MAX_MDNS_INTERFACES + 1;
/// Subnets (for the §11 on-link check) and own addresses kept per interface.
pub const MDNS_MAX_IFACE_ADDRS: usize = 8;
/// Services this box publishes: the configured ones plus room for
/// `cloudy publish`.
pub const MDNS_MAX_SERVICES: usize = MAX_SERVICES + 16;
/// Records in the cache of other hosts' records (least trusted, then
/// soonest to expire, evicted: `mdns::cache`).
pub const MDNS_CACHE_SIZE: usize = 256;
/// Cache entries one LAN source address may hold; beyond, its own entries
/// make room, so one host's flood never displaces another's records. Room
/// for one host's 50 services (about 150 records: a NAS, a printer farm),
/// leaving 96 entries to the others.
pub const MDNS_CACHE_PER_SOURCE: usize = MDNS_CACHE_SIZE * 5 / 8;
/// Longest TTL cached (RFC 6762 §10 recommends 4500 s for all but host
/// records; Apple's mDNSResponder caps multicast TTLs at the same value
/// so that a poisoned entry cannot live longer).
pub const MDNS_MAX_TTL: u32 = MDNS_TTL_OTHER;
/// Sources of unsolicited responses (RFC 6762 §8.3 announcements, answers
/// to others' queries) with a token bucket each; a slot is reused once
/// idle long enough for its bucket to be full, and while none is, new
/// sources share one more bucket.
pub const MDNS_UNSOLICITED_SOURCES: usize = 32;
/// Unsolicited response packets per second and source ...
pub const MDNS_UNSOLICITED_PER_SEC: u32 = 5;
/// ... and their burst (an announcement of many services is a few packets).
pub const MDNS_UNSOLICITED_BURST: u32 = 20;
/// New records cached from unsolicited LAN responses per second, all
/// sources together (spoofed source addresses share it) ...
pub const MDNS_UNSOLICITED_RECORDS_PER_SEC: u32 = 20;
/// ... and their burst.
pub const MDNS_UNSOLICITED_RECORDS_BURST: u32 = 100;
/// Questions we sent remembered to tell answers from unsolicited responses.
pub const MDNS_MAX_ASKED: usize = 64;
/// Service types browsed continuously at once (least recently used dropped).
pub const MDNS_MAX_BROWSES: usize = 16;
/// Outstanding one-shot resolve queries (SRV/TXT/A/AAAA of found instances).
pub const MDNS_MAX_RESOLVES: usize = 32;
/// Delayed responses waiting to be sent (RFC 6762 §6); more are dropped.
pub const MDNS_MAX_PENDING: usize = 32;
/// Records remembered for the one-multicast-per-second rule (§6.2).
pub const MDNS_MAX_RECENT: usize = 256;
/// Questions + records one message may declare; more and it is rejected.
pub const MDNS_MAX_RECORDS_PER_MESSAGE: usize = 96;
/// Largest mDNS message parsed (RFC 6762 §17: 9000 bytes with jumbo frames).
pub const MDNS_MAX_PACKET: usize = 9000;
/// Largest message sent over IPv4 (1500 − 20 IPv4 − 8 UDP).
pub const MDNS_MAX_PAYLOAD_V4: usize = 1472;
/// Largest message sent over IPv6 (1500 − 40 IPv6 − 8 UDP).
pub const MDNS_MAX_PAYLOAD_V6: usize = 1452;
/// Largest RDATA kept for any record (opaque types included).
pub const MDNS_MAX_RDATA: usize = 2048;
/// Largest TXT RDATA this box publishes (RFC 6763 §6.2 recommends ≤ 1300).
pub const MDNS_MAX_TXT: usize = 1024;
/// Incoming queries handled per interface and second (token bucket) ...
pub const MDNS_QUERIES_PER_SEC: u32 = 50;
/// ... and their burst.
pub const MDNS_QUERY_BURST: u32 = 100;
/// Responses sent per interface and second (token bucket) ...
pub const MDNS_ANSWERS_PER_SEC: u32 = 25;
/// ... and their burst.
pub const MDNS_ANSWER_BURST: u32 = 50;

// ---- mDNS / DNS-SD: protocol timers (RFC 6762 section in brackets) ----

/// Random delay before the first probe, up to this (§8.1).
pub const MDNS_PROBE_WAIT_MAX: Duration = Duration::from_millis(250);
/// Interval between probes, and the wait after the last one (§8.1).
pub const MDNS_PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// Probes sent before a name is ours (§8.1).
pub const MDNS_PROBE_COUNT: u8 = 3;
/// A probe lost on tie-break is retried after this (§8.2).
pub const MDNS_PROBE_DEFER: Duration = Duration::from_secs(1);
/// Unsolicited announcements after probing (§8.3: at least two) ...
pub const MDNS_ANNOUNCE_COUNT: u8 = 2;
/// ... this far apart (§8.3).
pub const MDNS_ANNOUNCE_INTERVAL: Duration = Duration::from_secs(1);
/// More conflicts than this within [`MDNS_CONFLICT_WINDOW`] slow probing (§9) ...
pub const MDNS_MAX_CONFLICTS: u32 = 15;
/// ... measured over this window ...
pub const MDNS_CONFLICT_WINDOW: Duration = Duration::from_secs(10);
/// ... to one probe sequence per this.
pub const MDNS_CONFLICT_BACKOFF: Duration = Duration::from_secs(5);
/// TTL of records carrying a host name: A, AAAA, SRV (§10).
pub const MDNS_TTL_HOST: u32 = 120;
/// TTL of other records: PTR, TXT (§10).
pub const MDNS_TTL_OTHER: u32 = 4500;
/// TTL cap in legacy unicast responses (§6.7).
pub const MDNS_LEGACY_TTL: u32 = 10;
/// Response delay for shared records: 20 ms plus up to this more (§6).
pub const MDNS_RESPONSE_JITTER: Duration = Duration::from_millis(100);
/// Response delay after a truncated (TC) query: 400 ms plus up to 100 ms (§7.2).
pub const MDNS_TC_DELAY: Duration = Duration::from_millis(400);
/// A record is multicast on one interface at most once per this (§6.2) ...
pub const MDNS_MIN_MULTICAST_INTERVAL: Duration = Duration::from_secs(1);
/// ... except in answer to a probe, after this (§6.2).
pub const MDNS_PROBE_DEFENSE_INTERVAL: Duration = Duration::from_millis(250);
/// Continuous querying: first interval between queries (§5.2) ...
pub const MDNS_BROWSE_FIRST_INTERVAL: Duration = Duration::from_secs(1);
/// ... doubling up to this (§5.2: capped at 60 minutes).
pub const MDNS_BROWSE_MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// Resolve queries for one name are retried this many times, 1 s, 2 s, 4 s apart.
pub const MDNS_RESOLVE_TRIES: u8 = 3;
/// Passive observation of failures (§10.5): queries seen without answer ...
pub const MDNS_POOF_QUERIES: u8 = 2;
/// ... within this time flush the record.
pub const MDNS_POOF_WINDOW: Duration = Duration::from_secs(10);
/// A record answers a question we sent if it arrives within this of the
/// query (responses come 20-120 ms after it, 400-500 ms after a
/// truncated one, §6 and §7.2; one more second for a busy link).
pub const MDNS_ANSWER_WINDOW: Duration = Duration::from_secs(2);
/// Records with the cache-flush bit replace older ones after this (§10.2);
/// goodbyes (TTL 0) also expire after it (§10.1).
pub const MDNS_FLUSH_DELAY: Duration = Duration::from_secs(1);

// ---- trust: cloud authority ----

/// Overlay addresses one member certificate can name.
pub const MAX_CERT_ADDRESSES: usize = 4;
/// Keys the cloud's revocation list can hold (it must fit one inner
/// message); an entry is dropped once the certificate it revokes expires.
pub const MAX_REVOKED: usize = 24;
/// Invitations pending at once on the authority's box.
pub const MAX_INVITES: usize = 16;
/// Join requests read per second at most (each costs a Diffie-Hellman).
pub const JOIN_REQUESTS_PER_SEC: u32 = 10;
/// Inviter addresses one invitation token can carry.
pub const MAX_INVITE_ENDPOINTS: usize = 4;

// ---- store (docs/store.md) ----

/// Largest number of shares of one file (N).
pub const MAX_SHARES: usize = 64;
/// Plaintext bytes per segment (a multiple of 64: the ChaCha20 block).
pub const SEGMENT_SIZE: usize = 128 * 1024;
/// Largest file: the ChaCha20 block counter's reach (2^32 × 64 bytes).
pub const MAX_FILE_SIZE: u64 = 1 << 38;
/// Largest frame of the store protocol (type + body): a block of a
/// 1-of-N segment and its header.
pub const MAX_STORE_FRAME: usize = SEGMENT_SIZE + 4096;
/// Clients a storage box serves at once (one worker thread each).
pub const MAX_STORE_CONNECTIONS: usize = 8;
/// How long a share is kept without a `check` renewing its lease.
pub const STORE_LEASE: Duration = Duration::from_secs(31 * 24 * 3600);
/// TCP port of the store protocol on the overlay.
pub const STORE_PORT: u16 = 6557;
