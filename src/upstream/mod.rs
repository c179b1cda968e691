//! The upstreams: a [`Cluster`] of collection backends, each with its connection pool, health
//! and metric series, and the choice of where a request goes.
//!
//! **Owns** balancing ([`balance`]), health and passive ejection ([`health`], probed by the
//! runtime's health checks), the exchange with its retry rule ([`client`]), idle connections
//! ([`idle_pool`]) and failures ([`failure`]). **May use:** `config` (the resolved upstream
//! settings), `observe::metrics` (its series), `io`, `http1`, `mcapi` (session ids), pingora's
//! transport connector. Callers see only [`UpstreamId`]s, never an upstream's insides.
//!
//! - Session starts, downloaded batches and schema look-ups are spread by weighted round robin
//!   over available upstreams; a failure where nothing was read moves on to another one.
//! - Events go only to the upstream that owns their session, read from the outward sid
//!   ([`mcapi::sid::SessionId::owner`]); with one upstream the sid passes through unchanged.

pub mod balance;
pub mod client;
pub mod failure;
pub mod health;
pub mod idle_pool;

use http::Method;
use pingora_core::connectors::{ConnectorOptions, TransportConnector};
use pingora_core::upstreams::peer::HttpPeer;
use prometheus::{Histogram, IntCounter, IntGauge};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{self, Config};
use crate::observe::metrics::Metrics;
use balance::Balancer;
use client::{Answer, Probe};
use failure::{Failure, FailureKind};
use health::{Change, Thresholds};
use idle_pool::IdlePool;
use mcapi::sid::{self, OwnerError, SessionId, SidFormat};

/// At most this many idle connections per upstream (per thread's stack).
const IDLE_PER_UPSTREAM: usize = 256;

/// Which upstream: an opaque handle, valid for the cluster that gave it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UpstreamId(usize);

/// Where a request may go.
pub enum Target {
    /// Any available upstream, by weighted round robin; another one when the first failed
    /// without reading the request.
    Balanced,
    /// Only this upstream (the session's owner), with this path.
    Owner { id: UpstreamId, path: String },
}

/// Why resolving the upstreams failed (at start).
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("upstream {name}: cannot resolve {host}: {source}")]
    Lookup {
        name: String,
        host: String,
        source: std::io::Error,
    },
    #[error("upstream {name}: {host} has no address")]
    NoAddress { name: String, host: String },
}

/// One request to send upstream.
pub struct Request<'a> {
    /// For the log.
    pub request_id: &'a str,
    pub method: &'a Method,
    pub target: &'a Target,
    /// The path of a balanced request (an owner target carries its own).
    pub path: &'a str,
    /// Serializes the request (head and body) for one upstream, given the path and the
    /// upstream's authority (its `Host`).
    pub wire: &'a (dyn Fn(&str, &str) -> Vec<u8> + Sync),
    /// Which answer heads can be the answer to this request (see [`client::Expect`]).
    pub expect: client::Expect<'a>,
}

/// An answer, and who gave it.
pub struct Exchanged {
    pub id: UpstreamId,
    pub answer: Answer,
    /// From sending the request to the end of the answer.
    pub elapsed: Duration,
}

/// No upstream answered: the last one tried and how it failed (`None`: none was available).
#[derive(Debug)]
pub struct Exhausted {
    pub last: Option<(UpstreamId, FailureKind)>,
}

/// One upstream and everything it owns.
struct Member {
    settings: config::Upstream,
    peer: HttpPeer,
    connector: TransportConnector,
    idle: IdlePool,
    health: health::State,
    series: MemberSeries,
}

/// The member's metric series, resolved once.
struct MemberSeries {
    duration: Histogram,
    healthy: IntGauge,
    /// In the order of [`FailureKind::ALL`].
    errors: Vec<IntCounter>,
}

pub struct Cluster {
    /// Shared with the cluster an in-process reload builds when the upstream's settings stay
    /// the same (its idle connections and health are kept).
    members: Vec<Arc<Member>>,
    per_thread: bool,
    /// The members' session tokens, in configuration order.
    tokens: Vec<String>,
    balancer: Balancer,
    thresholds: Thresholds,
    /// The health clock's origin.
    epoch: Instant,
}

impl Cluster {
    /// Resolves every upstream (DNS for host names) and builds its connection pool.
    pub fn new(config: &Config, metrics: &Metrics) -> Result<Cluster, ResolveError> {
        Cluster::build(config, metrics, None)
    }

    /// The cluster of a reloaded configuration: the upstreams whose settings are unchanged are
    /// `previous`'s (pool, health and all); the others are resolved and built anew.
    pub fn rebuild(
        config: &Config,
        metrics: &Metrics,
        previous: &Cluster,
    ) -> Result<Cluster, ResolveError> {
        Cluster::build(config, metrics, Some(previous))
    }

    fn build(
        config: &Config,
        metrics: &Metrics,
        previous: Option<&Cluster>,
    ) -> Result<Cluster, ResolveError> {
        // Per-thread idle stacks only when requests stay on the thread that took them.
        let per_thread = !config.server.work_stealing;
        let mut members = Vec::with_capacity(config.upstreams.len());
        for s in &config.upstreams {
            let kept = previous
                .filter(|p| p.per_thread == per_thread)
                .and_then(|p| p.members.iter().find(|m| m.settings == *s));
            if let Some(m) = kept {
                members.push(m.clone());
                continue;
            }
            let addr = resolve(s)?;
            let mut peer = HttpPeer::new(addr, s.tls, s.host.clone());
            let o = &mut peer.options;
            o.connection_timeout = Some(s.connect_timeout);
            o.total_connection_timeout = Some(s.connect_timeout + s.connect_timeout);
            o.read_timeout = Some(s.read_timeout);
            o.write_timeout = Some(s.write_timeout);
            o.idle_timeout = Some(s.idle_timeout);
            let mut options = ConnectorOptions::new(IDLE_PER_UPSTREAM);
            options.ca_file = s.ca_file.clone();
            let name = s.name.as_str();
            members.push(Arc::new(Member {
                settings: s.clone(),
                peer,
                connector: TransportConnector::new(Some(options)),
                idle: IdlePool::new(IDLE_PER_UPSTREAM, s.idle_timeout, per_thread),
                health: health::State::new(),
                series: MemberSeries {
                    duration: metrics.upstream_duration.with_label_values(&[name]),
                    healthy: metrics.upstream_healthy.with_label_values(&[name]),
                    errors: FailureKind::ALL
                        .iter()
                        .map(|k| {
                            metrics
                                .upstream_errors
                                .with_label_values(&[name, k.as_str()])
                        })
                        .collect(),
                },
            }));
        }
        let h = &config.health;
        // Passive ejection only steers requests to the other upstreams: a lone upstream is never
        // ejected (as nginx ignores max_fails for a single server), or every session start would
        // get 503 for passive_ejection after a brief failure.
        let passive_failures = if members.len() > 1 {
            h.passive_failures
        } else {
            0
        };
        let weights: Vec<u32> = config.upstreams.iter().map(|u| u.weight).collect();
        let cluster = Cluster {
            tokens: config.upstreams.iter().map(|u| u.token.clone()).collect(),
            members,
            per_thread,
            balancer: Balancer::new(&weights),
            thresholds: Thresholds {
                unhealthy: h.unhealthy_threshold,
                healthy: h.healthy_threshold,
                passive_failures,
                passive_ejection: h.passive_ejection,
            },
            // Kept members keep their health, which is timed from the first cluster's epoch.
            epoch: previous.map_or_else(Instant::now, |p| p.epoch),
        };
        cluster.publish_health();
        Ok(cluster)
    }

    fn member(&self, id: UpstreamId) -> &Member {
        &self.members[id.0]
    }

    pub fn name(&self, id: UpstreamId) -> &str {
        &self.member(id).settings.name
    }

    /// Every upstream, in configuration order.
    pub fn ids(&self) -> impl Iterator<Item = UpstreamId> {
        (0..self.members.len()).map(UpstreamId)
    }

    /// Milliseconds since the cluster was built (the health clock).
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The owner of an outward sid, and the upstream's own sid.
    pub fn owner<'s>(
        &self,
        outward: &'s str,
        format: SidFormat,
    ) -> Result<(UpstreamId, &'s str), OwnerError> {
        SessionId::owner(outward, &self.tokens, format).map(|(i, sid)| (UpstreamId(i), sid))
    }

    /// The `Location` to hand out for a session created by `id` (`None`: keep the value).
    pub fn tag_location(&self, id: UpstreamId, location: &str) -> Option<String> {
        if self.members.len() == 1 {
            return None;
        }
        sid::tag_location(location, &self.member(id).settings.token)
    }

    /// The scheme (`http`, `https`) and the authority (the `Host` it is sent, normalized) of
    /// `id`.
    pub fn origin(&self, id: UpstreamId) -> location::Upstream<'_> {
        let s = &self.member(id).settings;
        location::Upstream {
            scheme: if s.tls { "https" } else { "http" },
            authority: &s.authority,
        }
    }

    /// Sends a request and returns the first answer. A balanced request moves to the next
    /// available upstream only when the failed one did not read it ([`Failure::unread`]).
    pub async fn forward(&self, req: &Request<'_>) -> Result<Exchanged, Exhausted> {
        let mut tried = Tried::new(self.members.len());
        let mut last = None;
        let to_head = *req.method == Method::HEAD;
        let replayable = to_head || *req.method == Method::GET;
        loop {
            let id = match req.target {
                Target::Owner { id, .. } if !tried.has(id.0) => *id,
                Target::Owner { .. } => break,
                Target::Balanced => match self.pick(&tried) {
                    Some(id) => id,
                    None => break,
                },
            };
            tried.add(id.0);
            let member = self.member(id);
            let path = match req.target {
                Target::Owner { path, .. } => path.as_str(),
                Target::Balanced => req.path,
            };
            let wire = (req.wire)(path, &member.settings.authority);
            let started = Instant::now();
            match client::send(member, &wire, to_head, replayable, req.expect).await {
                Ok(answer) => {
                    member.health.record_success();
                    let elapsed = started.elapsed();
                    member.series.duration.observe(elapsed.as_secs_f64());
                    return Ok(Exchanged {
                        id,
                        answer,
                        elapsed,
                    });
                }
                Err(failure) => {
                    self.failed(id, &failure);
                    log::warn!(
                        "request {}: upstream {} failed: {failure}",
                        req.request_id,
                        member.settings.name,
                    );
                    last = Some((id, failure.kind));
                    if !(failure.unread && matches!(req.target, Target::Balanced)) {
                        break;
                    }
                }
            }
        }
        Err(Exhausted { last })
    }

    /// The next available upstream not yet tried.
    fn pick(&self, tried: &Tried) -> Option<UpstreamId> {
        let now = self.now_ms();
        self.balancer
            .pick(|i| !tried.has(i) && self.members[i].health.is_available(now))
            .map(UpstreamId)
    }

    fn failed(&self, id: UpstreamId, failure: &Failure) {
        let member = self.member(id);
        if let Some(i) = FailureKind::ALL.iter().position(|k| *k == failure.kind) {
            member.series.errors[i].inc();
        }
        let change = member
            .health
            .record_failure(&self.thresholds, self.now_ms());
        if change == Change::Ejected {
            log::warn!(
                "upstream {}: ejected after consecutive failures",
                member.settings.name
            );
            member.series.healthy.set(0);
        }
    }

    /// One round of active probes, one upstream after the other.
    pub async fn probe_all(&self, probe: &Probe<'_>, timeout: Duration) {
        for member in &self.members {
            let result = client::probe(member, probe, timeout).await;
            let name = &member.settings.name;
            match member.health.record_probe(&self.thresholds, result.is_ok()) {
                Change::BecameUnhealthy => log::warn!(
                    "upstream {name}: unhealthy ({})",
                    result.err().map(|e| e.to_string()).unwrap_or_default()
                ),
                Change::BecameHealthy => log::info!("upstream {name}: healthy again"),
                Change::None | Change::Ejected => {}
            }
        }
    }

    /// Housekeeping after each round of checks: closes idle connections that idled too long
    /// and refreshes the health gauges (ejections end by time alone).
    pub fn maintain(&self) {
        for member in &self.members {
            member.idle.prune();
        }
        self.publish_health();
    }

    fn publish_health(&self) {
        let now = self.now_ms();
        for member in &self.members {
            let up = i64::from(member.health.is_available(now));
            member.series.healthy.set(up);
        }
    }
}

/// Resolves an upstream's host (DNS for names). Only called when the gateway starts, or when a
/// reload adds or changes an upstream.
fn resolve(s: &config::Upstream) -> Result<std::net::SocketAddr, ResolveError> {
    use std::net::ToSocketAddrs;
    (s.host.as_str(), s.port)
        .to_socket_addrs()
        .map_err(|source| ResolveError::Lookup {
            name: s.name.clone(),
            host: s.host.clone(),
            source,
        })?
        .next()
        .ok_or_else(|| ResolveError::NoAddress {
            name: s.name.clone(),
            host: s.host.clone(),
        })
}

/// The upstreams a request has tried: a bit each (no allocation up to 64 upstreams).
enum Tried {
    Few(u64),
    Many(Vec<bool>),
}

impl Tried {
    fn new(n: usize) -> Tried {
        if n <= 64 {
            Tried::Few(0)
        } else {
            Tried::Many(vec![false; n])
        }
    }

    fn has(&self, i: usize) -> bool {
        match self {
            Tried::Few(bits) => bits & (1 << i) != 0,
            Tried::Many(v) => v[i],
        }
    }

    fn add(&mut self, i: usize) {
        match self {
            Tried::Few(bits) => *bits |= 1 << i,
            Tried::Many(v) => v[i] = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Tried;

    #[test]
    fn tried_sets_of_any_size() {
        for n in [1, 64, 65, 200] {
            let mut t = Tried::new(n);
            assert!(!t.has(n - 1));
            t.add(n - 1);
            t.add(0);
            assert!(t.has(n - 1) && t.has(0));
            if n > 2 {
                assert!(!t.has(1));
            }
        }
    }
}
