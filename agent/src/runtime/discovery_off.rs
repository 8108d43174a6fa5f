//! Stand-in for [`discovery`](self) when the `discovery` feature is not
//! built (small-flash boards). `Discovery` cannot be constructed, so the
//! daemon's `Option<Discovery>` is always `None` and every discovery
//! request is answered "discovery is off"; the overlay is unaffected.

use std::os::fd::RawFd;

use crate::config::Config;
use crate::console::proto::{DiscoveryInfo, Response};
use crate::overlay::PeerInfo;
use crate::time::Instant;

/// What `cloudy publish` asks for (the same fields as `mdns::ServiceSpec`).
pub struct ServiceSpec {
    pub instance: String,
    pub service_type: String,
    pub port: u16,
    pub txt: Vec<String>,
    pub host: Option<String>,
}

/// Uninhabited: there is never a running discovery without the feature.
pub enum Discovery {}

impl Discovery {
    pub fn start(cfg: &Config, _: &str, _: Instant, _: u64) -> Result<Discovery, String> {
        let _ = cfg;
        Err("discovery is not built into this binary (cargo feature `discovery`)".into())
    }
    pub fn reload(&mut self, _: &Config, _: &str, _: Instant, _: u64) {
        match *self {}
    }
    pub fn fds(&self) -> Vec<RawFd> {
        match *self {}
    }
    pub fn input(&mut self, _: Instant, _: RawFd) {
        match *self {}
    }
    pub fn poll_at(&self) -> Option<Instant> {
        match *self {}
    }
    pub fn timers(&mut self, _: Instant) {
        match *self {}
    }
    pub fn shutdown(&mut self, _: Instant) {
        match *self {}
    }
    pub fn publish(&mut self, _: Instant, _: ServiceSpec) -> Response {
        match *self {}
    }
    pub fn unpublish(&mut self, _: Instant, _: &str) -> Response {
        match *self {}
    }
    pub fn search(
        &mut self,
        _: Instant,
        _: Option<&str>,
        _: Option<&str>,
        _: bool,
        _: &[PeerInfo],
    ) -> Response {
        match *self {}
    }
    pub fn info(&self) -> DiscoveryInfo {
        match *self {}
    }
}
