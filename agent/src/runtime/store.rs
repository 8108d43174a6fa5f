//! The store's place in the daemon (IO glue; docs/store.md): opens the
//! chunk store of `config store` and runs its server on the overlay
//! device, on threads of its own (`store::server`), so disk and hashing
//! never hold up the event loop.
//!
//! A store that cannot start (a path that is missing, not a directory,
//! read-only, or held by another process; the port taken) is logged as
//! an error and tried again every [`RETRY`]: the overlay and discovery
//! run on regardless, and a USB disk plugged in later is taken up. Any
//! change of `config store` restarts it (open transfers are cut; clients
//! fall back to other boxes). Without the `store` feature this is inert.

use crate::config::Config;
use crate::console::proto::StoreInfo;
use crate::time::{Duration, Instant};
#[cfg(feature = "store")]
use crate::{error, info};

/// Pause between tries of a store that could not start.
pub const RETRY: Duration = Duration::from_secs(30);

/// What the daemon holds of its store.
pub struct StoreRuntime {
    /// (path, quota, port) of the running or wanted store.
    wanted: Option<(std::path::PathBuf, u64, u16)>,
    #[cfg(feature = "store")]
    server: Option<crate::store::server::Server>,
    /// Why the wanted store is not running.
    failed: Option<String>,
    retry_at: Option<Instant>,
}

fn wanted_of(cfg: &Config) -> Option<(std::path::PathBuf, u64, u16)> {
    let s = cfg.store.as_ref()?;
    Some((s.serving_path()?.to_path_buf(), s.quota, s.port))
}

impl StoreRuntime {
    /// No store (before the configuration is applied).
    pub fn off() -> StoreRuntime {
        StoreRuntime {
            wanted: None,
            #[cfg(feature = "store")]
            server: None,
            failed: None,
            retry_at: None,
        }
    }

    /// Start the store `cfg` asks for (if any) on `device`.
    pub fn start(cfg: &Config, device: &str, now: Instant) -> StoreRuntime {
        let mut s = StoreRuntime::off();
        s.wanted = wanted_of(cfg);
        s.try_start(device, now);
        s
    }

    #[cfg(feature = "store")]
    fn try_start(&mut self, device: &str, now: Instant) {
        use crate::store::{chunkstore::ChunkStore, server::Server};
        let Some((path, quota, port)) = self.wanted.clone() else {
            return;
        };
        let started = ChunkStore::open(&path, quota)
            .map_err(|e| format!("store {}: {e}", path.display()))
            .and_then(|store| Server::start(store, device, port));
        match started {
            Ok(server) => {
                let st = server.store.stat();
                info!(
                    "store {}: {} shares, {} of {} bytes used",
                    path.display(),
                    st.shares,
                    st.used,
                    st.quota
                );
                self.server = Some(server);
                self.failed = None;
                self.retry_at = None;
            }
            Err(e) => {
                error!(
                    "{e}; the store is off, trying again in {} s",
                    RETRY.as_secs()
                );
                self.failed = Some(e);
                self.retry_at = Some(now + RETRY);
            }
        }
    }

    #[cfg(not(feature = "store"))]
    fn try_start(&mut self, _: &str, _: Instant) {
        if self.wanted.is_some() {
            self.failed = Some("this build has no store (cargo feature `store`)".into());
        }
    }

    fn stop(&mut self) {
        #[cfg(feature = "store")]
        if let Some(s) = self.server.take() {
            s.stop();
            info!("store stopped");
        }
        self.failed = None;
        self.retry_at = None;
    }

    /// Apply a reloaded configuration: any change of `config store`, or
    /// a reopened overlay device (the server binds to it), restarts the
    /// store, once.
    pub fn reload(&mut self, cfg: &Config, device: &str, device_reopened: bool, now: Instant) {
        let wanted = wanted_of(cfg);
        if wanted == self.wanted && !device_reopened {
            return;
        }
        self.stop();
        self.wanted = wanted;
        self.try_start(device, now);
    }

    pub fn poll_at(&self) -> Option<Instant> {
        self.retry_at
    }

    pub fn timers(&mut self, device: &str, now: Instant) {
        if self.retry_at.is_some_and(|t| now >= t) {
            self.try_start(device, now);
        }
    }

    /// The store part of `cloudy status` (`None`: a client only).
    pub fn info(&self) -> Option<StoreInfo> {
        let (path, quota, port) = self.wanted.clone()?;
        #[cfg_attr(not(feature = "store"), allow(unused_mut))]
        let mut i = StoreInfo {
            path: path.display().to_string(),
            port,
            quota,
            error: self.failed.clone(),
            ..StoreInfo::default()
        };
        #[cfg(feature = "store")]
        if let Some(s) = &self.server {
            use std::sync::atomic::Ordering::Relaxed;
            let st = s.store.stat();
            i.serving = true;
            i.used = st.used;
            i.reserved = st.reserved;
            i.shares = st.shares;
            i.files = st.files;
            i.connections = s.stats.connections.load(Relaxed) as u64;
            i.refused_busy = s.stats.refused_busy.load(Relaxed) as u64;
            i.errors = s.stats.errors.load(Relaxed) as u64;
            i.shares_stored = s.stats.shares_stored.load(Relaxed) as u64;
            i.blocks_served = s.stats.blocks_served.load(Relaxed) as u64;
        }
        Some(i)
    }
}
