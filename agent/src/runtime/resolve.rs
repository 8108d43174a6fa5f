//! Peer endpoints given as host names (`list endpoint 'box.example.net:6556'`),
//! looked up off the event loop.
//!
//! Community boxes behind dynamic addresses are often configured by name,
//! and `getaddrinfo` blocks (for seconds, when the DNS server is gone). So
//! one worker thread does the lookups: the loop hands it `(host, port)`
//! jobs and picks up the answers at its next wakeup (at least once a
//! second) without ever waiting. Every name of the configuration is looked
//! up at start, again after a reload that adds it, and again every
//! [`RESOLVE_INTERVAL`]. An answer replaces that name's addresses (at most
//! [`MAX_ADDRS_PER_NAME`]); a failed lookup keeps the last good ones.
//!
//! Bounded: at most [`MAX_PENDING_LOOKUPS`] jobs wait (more are dropped
//! and asked again at the next interval); one entry per configured name
//! (names gone from the configuration are forgotten); one thread, which
//! ends when the [`Resolver`] is dropped.

use std::collections::VecDeque;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex};

use crate::config::{Config, Endpoint};
use crate::limits::{MAX_ADDRS_PER_NAME, MAX_PENDING_LOOKUPS, RESOLVE_INTERVAL};
use crate::time::Instant;

/// One name to look up.
type Job = (String, u16);

/// What the worker found for one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub host: String,
    pub port: u16,
    /// The addresses, or why there are none.
    pub result: Result<Vec<SocketAddr>, String>,
}

/// What the loop and the worker share: jobs one way, answers the other
/// (each at most [`MAX_PENDING_LOOKUPS`]), and whether the loop is gone.
/// A mutex and a condition variable rather than channels: a fraction of
/// their code size.
#[derive(Default)]
struct Queues {
    jobs: VecDeque<Job>,
    answers: VecDeque<Answer>,
    closed: bool,
}

type Shared = Arc<(Mutex<Queues>, Condvar)>;

/// The addresses known for each host-name endpoint, and the worker that
/// finds them.
pub struct Resolver {
    /// `None` when the worker could not be started.
    shared: Option<Shared>,
    /// Last good addresses per name (empty until the first answer); a
    /// few entries, so a list (a hash map costs ~20 KB of binary).
    known: Vec<(Job, Vec<SocketAddr>)>,
    /// When every name is looked up again.
    refresh_at: Option<Instant>,
}

impl Resolver {
    /// A resolver with its worker thread. Without a thread (the system
    /// refused one), names stay unresolved and the error is logged.
    pub fn start() -> Resolver {
        let shared: Shared = Arc::default();
        let theirs = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("resolver".into())
            .spawn(move || work(&theirs));
        let shared = match worker {
            Ok(_) => Some(shared),
            Err(e) => {
                crate::error!("cannot start the name resolver thread: {e}; host-name endpoints stay unresolved");
                None
            }
        };
        Resolver {
            shared,
            known: Vec::new(),
            refresh_at: None,
        }
    }

    /// Takes `cfg`'s host-name endpoints: forgets names no longer there,
    /// and looks up the new ones now.
    pub fn configure(&mut self, now: Instant, cfg: &Config) {
        let names = host_endpoints(cfg);
        self.known.retain(|(name, _)| names.contains(name));
        for name in names {
            if !self.known.iter().any(|(n, _)| *n == name) {
                self.known.push((name.clone(), Vec::new()));
                self.submit(name);
            }
        }
        if self.known.is_empty() {
            self.refresh_at = None;
        } else if self.refresh_at.is_none() {
            self.refresh_at = Some(now + RESOLVE_INTERVAL);
        }
    }

    /// Looks every name up again when the interval has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.refresh_at.is_some_and(|t| t <= now) {
            self.refresh_at = Some(now + RESOLVE_INTERVAL);
            let names: Vec<Job> = self.known.iter().map(|(n, _)| n.clone()).collect();
            for name in names {
                self.submit(name);
            }
        }
    }

    /// Takes the answers that arrived; true when some name's addresses
    /// changed (the caller then gives the engine the new endpoints).
    pub fn poll(&mut self) -> bool {
        // Called at every wakeup: no names, no lock.
        if self.known.is_empty() {
            return false;
        }
        let answers = match self.shared.as_ref() {
            // A poisoned lock: the worker panicked while holding it.
            Some(shared) => match shared.0.lock() {
                Ok(mut q) => std::mem::take(&mut q.answers),
                Err(_) => VecDeque::new(),
            },
            None => VecDeque::new(),
        };
        let mut changed = false;
        for answer in answers {
            changed |= self.apply(answer);
        }
        changed
    }

    /// Records one answer; true when the addresses of its name changed.
    fn apply(&mut self, answer: Answer) -> bool {
        let Answer { host, port, result } = answer;
        let Some((_, addrs)) = self
            .known
            .iter_mut()
            .find(|((h, p), _)| *h == host && *p == port)
        else {
            return false; // a name dropped by a reload meanwhile
        };
        match result {
            Ok(new) if new.is_empty() => {
                crate::warn!(
                    "endpoint {host}:{port}: the name has no addresses; keeping the last ones"
                );
                false
            }
            Ok(new) => {
                if *addrs == new {
                    return false;
                }
                crate::info!(
                    "endpoint {host}:{port} is {}",
                    new.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                *addrs = new;
                true
            }
            Err(e) => {
                crate::warn!("endpoint {host}:{port}: cannot resolve {host}: {e}; keeping the last addresses");
                false
            }
        }
    }

    /// The addresses last found for `host`:`port` (none yet: empty).
    pub fn addrs(&self, host: &str, port: u16) -> &[SocketAddr] {
        self.known
            .iter()
            .find(|((h, p), _)| h == host && *p == port)
            .map_or(&[], |(_, a)| a.as_slice())
    }

    /// When [`Resolver::handle_timeout`] has work.
    pub fn poll_at(&self) -> Option<Instant> {
        self.refresh_at
    }

    fn submit(&mut self, name: Job) {
        let Some(shared) = self.shared.as_ref() else {
            return;
        };
        let Ok(mut q) = shared.0.lock() else {
            return;
        };
        if q.jobs.len() >= MAX_PENDING_LOOKUPS || q.jobs.contains(&name) {
            crate::debug!(
                "resolver busy: {}:{} is looked up at the next interval",
                name.0,
                name.1
            );
            return;
        }
        q.jobs.push_back(name);
        shared.1.notify_one();
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.as_ref() {
            if let Ok(mut q) = shared.0.lock() {
                q.closed = true;
            }
            shared.1.notify_one();
        }
    }
}

/// The worker: takes a job, looks it up (blocking), queues the answer,
/// until the resolver is dropped.
fn work(shared: &Shared) {
    let (lock, wake) = (&shared.0, &shared.1);
    loop {
        let job = {
            let Ok(mut q) = lock.lock() else { return };
            loop {
                if q.closed {
                    return;
                }
                if let Some(job) = q.jobs.pop_front() {
                    break job;
                }
                q = match wake.wait(q) {
                    Ok(q) => q,
                    Err(_) => return,
                };
            }
        };
        let (host, port) = job;
        let result = (host.as_str(), port)
            .to_socket_addrs()
            .map(|a| a.take(MAX_ADDRS_PER_NAME).collect())
            .map_err(|e| e.to_string());
        let Ok(mut q) = lock.lock() else { return };
        if q.answers.len() < MAX_PENDING_LOOKUPS {
            q.answers.push_back(Answer { host, port, result });
        }
    }
}

/// Every distinct host-name endpoint of `cfg`'s peers.
fn host_endpoints(cfg: &Config) -> Vec<Job> {
    let mut names: Vec<Job> = Vec::new();
    for p in &cfg.peers {
        for e in &p.endpoints {
            if let Endpoint::Host(h, port) = e {
                let name = (h.clone(), *port);
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    fn config(endpoints: &[&str]) -> Config {
        let mut text = String::from(
            "config agent\n\toption name 'a'\n\toption cloud 'c'\n\n\
             config peer 'b'\n\toption public_key 'hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo='\n",
        );
        for e in endpoints {
            text += &format!("\tlist endpoint '{e}'\n");
        }
        crate::config::uci::parse("test", &text).unwrap()
    }

    /// `localhost` comes from /etc/hosts: no network needed.
    #[test]
    fn names_are_looked_up_off_the_loop() {
        let mut r = Resolver::start();
        let now = Instant::ZERO;
        r.configure(now, &config(&["localhost:6556", "192.0.2.1:6556"]));
        assert_eq!(r.addrs("localhost", 6556), &[] as &[SocketAddr]);
        assert_eq!(r.poll_at(), Some(now + RESOLVE_INTERVAL));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !r.poll() {
            assert!(
                std::time::Instant::now() < deadline,
                "no answer for localhost"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let got = r.addrs("localhost", 6556);
        assert!(
            got.iter().all(|a| a.ip().is_loopback() && a.port() == 6556) && !got.is_empty(),
            "{got:?}"
        );
        // A reload without the name forgets it; no names, no refresh.
        r.configure(now, &config(&["192.0.2.1:6556"]));
        assert!(r.addrs("localhost", 6556).is_empty());
        assert_eq!(r.poll_at(), None);
    }

    #[test]
    fn answers_replace_and_failures_keep() {
        let mut r = Resolver::start();
        let now = Instant::ZERO;
        r.configure(now, &config(&["box.example:7000"]));
        let a: SocketAddr = "192.0.2.7:7000".parse().unwrap();
        let b: SocketAddr = "[2001:db8::7]:7000".parse().unwrap();
        let answer = |result| Answer {
            host: "box.example".into(),
            port: 7000,
            result,
        };
        assert!(r.apply(answer(Ok(vec![a]))));
        assert!(!r.apply(answer(Ok(vec![a]))), "same addresses: no change");
        assert!(!r.apply(answer(Err("timed out".into()))));
        assert!(!r.apply(answer(Ok(vec![]))));
        assert_eq!(r.addrs("box.example", 7000), &[a]);
        assert!(r.apply(answer(Ok(vec![b, a]))));
        assert_eq!(r.addrs("box.example", 7000), &[b, a]);
        // An answer for a name no longer configured is ignored.
        let stray = Answer {
            host: "gone.example".into(),
            port: 1,
            result: Ok(vec![a]),
        };
        assert!(!r.apply(stray));
        // The refresh comes every interval.
        r.handle_timeout(now + RESOLVE_INTERVAL - Duration::from_secs(1));
        assert_eq!(r.poll_at(), Some(now + RESOLVE_INTERVAL));
        r.handle_timeout(now + RESOLVE_INTERVAL);
        assert_eq!(r.poll_at(), Some(now + RESOLVE_INTERVAL * 2));
    }
}
