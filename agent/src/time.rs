//! Monotonic time as a plain value.
//!
//! Protocol cores never read the clock: the runtime reads it once per
//! wakeup and passes an [`Instant`] in, so tests drive a fake clock.
//! Microsecond resolution, because overlay RTTs on a LAN are well under a
//! millisecond. A `u64` of microseconds lasts 584,000 years; every
//! operation saturates, so no input can make it panic.

use core::fmt;
use core::ops::{Add, Sub};
pub use core::time::Duration;

/// A point on the agent's monotonic clock, in microseconds since an
/// arbitrary origin (the runtime's start, or zero in tests).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    pub const ZERO: Instant = Instant(0);

    pub const fn from_micros(us: u64) -> Self {
        Instant(us)
    }

    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms.saturating_mul(1000))
    }

    pub const fn from_secs(s: u64) -> Self {
        Instant(s.saturating_mul(1_000_000))
    }

    pub const fn micros(self) -> u64 {
        self.0
    }

    pub const fn millis(self) -> u64 {
        self.0 / 1000
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(duration_micros(d)))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(duration_micros(d)))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, other: Instant) -> Duration {
        self.since(other)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A token bucket: `per_sec` tokens a second up to `burst`. Fixed size;
/// time comes in as an argument like everywhere else.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    tokens: u32,
    burst: u32,
    per_sec: u32,
    refilled: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(per_sec: u32, burst: u32, now: Instant) -> Self {
        TokenBucket {
            tokens: burst,
            burst,
            per_sec,
            refilled: now,
        }
    }

    /// Adds the whole tokens earned since `refilled` and moves `refilled`
    /// on by exactly their worth, so the fraction of a token earned so far
    /// is kept (frequent calls do not lower the rate); a bucket that
    /// overflows restarts from `now`.
    fn refill(&mut self, now: Instant) {
        let per_sec = u128::from(self.per_sec);
        let add = now.since(self.refilled).as_micros() * per_sec / 1_000_000;
        if add == 0 {
            return;
        }
        let room = self.burst.saturating_sub(self.tokens);
        if add > u128::from(room) {
            // Overflowing: what was earned beyond the burst is lost.
            self.tokens = self.burst;
            self.refilled = now;
        } else {
            self.tokens += add as u32; // add <= room, a u32
                                       // per_sec > 0 here, since add > 0.
            let used = u64::try_from(add * 1_000_000 / per_sec).unwrap_or(u64::MAX);
            self.refilled = self.refilled + Duration::from_micros(used);
        }
    }

    /// Take one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    /// True while no token is left (as of the last `take`).
    pub fn is_empty(&self) -> bool {
        self.tokens == 0
    }
}

/// Earlier of two optional deadlines (`None` means "no deadline").
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(5);
        assert_eq!((t - Duration::from_secs(1)).micros(), 0);
        assert_eq!(
            Instant::from_micros(u64::MAX) + Duration::from_secs(1),
            Instant::from_micros(u64::MAX)
        );
        assert_eq!(
            Instant::from_millis(3) - Instant::from_millis(5),
            Duration::ZERO
        );
        assert_eq!(
            Instant::from_millis(5) - Instant::from_millis(3),
            Duration::from_millis(2)
        );
    }

    #[test]
    fn earliest_ignores_none() {
        let a = Some(Instant::from_secs(2));
        let b = Some(Instant::from_secs(1));
        assert_eq!(earliest(a, b), b);
        assert_eq!(earliest(None, a), a);
        assert_eq!(earliest(None, None), None);
    }

    #[test]
    fn token_bucket_refills_at_its_rate() {
        let t0 = Instant::from_secs(100);
        let mut b = TokenBucket::new(10, 3, t0);
        assert!(b.take(t0) && b.take(t0) && b.take(t0));
        assert!(!b.take(t0) && b.is_empty());
        // 10/s: one token after 100 ms, never more than the burst.
        assert!(!b.take(t0 + Duration::from_millis(50)));
        assert!(b.take(t0 + Duration::from_millis(100)));
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| b.take(later)).count(), 3);
    }

    #[test]
    fn token_bucket_keeps_fractions_of_a_token() {
        // 25/s polled every 30 ms: 25 tokens a second, not one per 60 ms.
        let t0 = Instant::from_secs(1);
        let mut b = TokenBucket::new(25, 1, t0);
        assert!(b.take(t0));
        let got = (1..=100)
            .filter(|i| b.take(t0 + Duration::from_millis(30 * i)))
            .count();
        assert_eq!(got, 75);
    }
}
