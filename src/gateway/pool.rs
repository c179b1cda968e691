//! The upstream pool: the upstreams, their health, the balancer, and the choice of where a
//! request goes.
//!
//! - Session starts, downloaded batches and schema look-ups are spread by weighted round robin
//!   over available upstreams; a connection failure (nothing was sent) moves on to another one.
//! - Events go only to the upstream that owns their session, read from the outward sid
//!   ([`crate::location::affinity`]); with one upstream the sid passes through unchanged. A sid
//!   with no token goes to the first upstream: sessions started before a second upstream was
//!   added keep working as long as the original upstream stays first in the file.

use std::borrow::Cow;
use std::time::Instant;

use super::balance::Balancer;
use super::health::{Change, Health, Thresholds};
use super::upstream::Upstreams;
use crate::config::{self, SidFormat};
use crate::location::affinity::{self, Decoded};
use crate::metrics::Metrics;

pub struct Pool {
    pub upstreams: Upstreams,
    pub health: Health,
    balancer: Balancer,
    epoch: Instant,
}

/// Why an events request has no owner.
#[derive(Debug, PartialEq, Eq)]
pub enum OwnerError {
    /// The sid (or the upstream's sid inside it) is not well formed.
    Malformed,
    /// The token names no configured upstream (forged, or the upstream was removed).
    UnknownToken,
}

impl Pool {
    pub fn new(config: &config::Config) -> Result<Pool, String> {
        // Per-thread idle stacks only when requests stay on the thread that took them.
        let per_thread = !config.server.work_stealing;
        let upstreams = Upstreams::new(&config.upstreams, 256, per_thread)?;
        let h = &config.health;
        // Passive ejection only steers requests to the other upstreams: a lone upstream is never
        // ejected (as nginx ignores max_fails for a single server), or every session start would
        // get 503 for passive_ejection after a brief failure.
        let passive_failures = if upstreams.list.len() > 1 {
            h.passive_failures
        } else {
            0
        };
        let health = Health::new(
            upstreams.list.len(),
            Thresholds {
                unhealthy: h.unhealthy_threshold,
                healthy: h.healthy_threshold,
                passive_failures,
                passive_ejection: h.passive_ejection,
            },
        );
        let weights: Vec<u32> = config.upstreams.iter().map(|u| u.weight).collect();
        Ok(Pool {
            upstreams,
            health,
            balancer: Balancer::new(&weights),
            epoch: Instant::now(),
        })
    }

    pub fn len(&self) -> usize {
        self.upstreams.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.upstreams.list.is_empty()
    }

    pub fn name(&self, i: usize) -> &str {
        &self.upstreams.list[i].settings.name
    }

    /// Milliseconds since the pool was built (the health clock).
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The next available upstream not yet tried.
    pub fn pick(&self, tried: &[bool]) -> Option<usize> {
        let now = self.now_ms();
        self.balancer
            .pick(|i| !tried[i] && self.health.is_available(i, now))
    }

    /// The owner of an outward sid, and the upstream's own sid.
    pub fn owner<'s>(
        &self,
        outward: &'s str,
        format: SidFormat,
    ) -> Result<(usize, Cow<'s, str>), OwnerError> {
        let (index, sid) = if self.len() == 1 {
            (0, outward)
        } else {
            match affinity::decode(outward) {
                Decoded::Plain(sid) => (0, sid),
                Decoded::Owned { token, sid } => {
                    let index = self
                        .upstreams
                        .list
                        .iter()
                        .position(|u| u.settings.token == token)
                        .ok_or(OwnerError::UnknownToken)?;
                    (index, sid)
                }
            }
        };
        if !super::routes::is_well_formed_sid(sid, format) {
            return Err(OwnerError::Malformed);
        }
        Ok((index, Cow::Borrowed(sid)))
    }

    /// The Location to hand out for a session created by upstream `i`.
    pub fn tag_location(&self, i: usize, location: &str) -> Option<String> {
        if self.len() == 1 {
            return None;
        }
        affinity::tag_location(location, &self.upstreams.list[i].settings.token)
    }

    pub fn record_success(&self, i: usize) {
        self.health.record_success(i);
    }

    pub fn record_failure(&self, i: usize, metrics: &Metrics) {
        if self.health.record_failure(i, self.now_ms()) == Change::Ejected {
            log::warn!(
                "upstream {}: ejected after consecutive failures",
                self.name(i)
            );
            metrics
                .upstream_healthy
                .with_label_values(&[self.name(i)])
                .set(0);
        }
    }

    /// Refreshes the health gauge of every upstream (ejections end by time alone).
    pub fn publish_health(&self, metrics: &Metrics) {
        let now = self.now_ms();
        for i in 0..self.len() {
            let up = i64::from(self.health.is_available(i, now));
            metrics
                .upstream_healthy
                .with_label_values(&[self.name(i)])
                .set(up);
        }
    }
}
