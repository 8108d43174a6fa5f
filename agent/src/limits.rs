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

/// Keepalive/RTT probe interval on an established session.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// A peer silent for 3 keepalive intervals is dead.
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
/// Largest UDP datagram handled (underlay MTU is at most this).
pub const MAX_DATAGRAM: usize = 2048;
/// Largest Ethernet frame on the overlay device (MTU + 14 + slack).
pub const MAX_FRAME: usize = 1600;
/// Console clients served at once; more are accepted, answered "busy" and closed.
pub const MAX_CONSOLE_CLIENTS: usize = 4;
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
