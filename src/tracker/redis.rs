//! The Redis store: sessions in a Redis-protocol server (Redis, Valkey, a managed one) shared
//! by every replica, so any replica judges any call of a session and state survives reloads,
//! rolling deploys and crashes.
//!
//! A session is one key (`key_prefix` + the outward sid) holding the session's bytes
//! (`sessions::codec`), expiring with the session (the longer timeout plus `closed_retention`
//! after its last update, `closed_retention` once it closed). Each update is one atomic
//! compare-and-set script: written only if the key still holds what this replica read, else
//! read again and redone — two replicas updating one session never lose an update. The same
//! script keeps a sorted set of the open sessions (`key_prefix` + `open`, scored by when each
//! expires unless called again), which gives every replica the fleet's count of active sessions. Every operation has a deadline (`store_timeout_ms`); after
//! a failure the store counts as down, operations fail at once (the call goes on unjudged), and
//! a probe in the background finds it back (the client reconnects by itself).

use crate::quality::Quality;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sessions::{codec, Session, Settings};

/// Writes `ARGV[2]` (or deletes, when empty) with a time to live of `ARGV[3]` ms if the key
/// still holds `ARGV[1]` (empty: absent); scores member `ARGV[5]` of the open set `KEYS[2]` with
/// `ARGV[4]` (0: removes it).
const COMPARE_AND_SET: &str = r#"
local cur = redis.call('GET', KEYS[1])
if (cur or '') ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
if ARGV[4] == '0' then redis.call('ZREM', KEYS[2], ARGV[5]) else redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5]) end
return 1
"#;

/// Drops from the open set the sessions that expired (`ARGV[1]`, ms) and counts the rest.
const COUNT_OPEN: &str = r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZCARD', KEYS[1])
"#;

/// How long the store counts as down after a failure before an operation tries it again.
const DOWN_FOR_MS: u64 = 500;

/// Why a store operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("timeout")]
    Timeout,
    #[error("unavailable")]
    Unavailable,
    /// The key holds bytes that are not a session.
    #[error("corrupt")]
    Corrupt,
    /// Other replicas kept changing the session; the update was given up.
    #[error("conflict")]
    Conflict,
}

impl StoreError {
    /// The `kind` label of `mediagate_session_store_errors_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreError::Timeout => "timeout",
            StoreError::Unavailable => "unavailable",
            StoreError::Corrupt => "corrupt",
            StoreError::Conflict => "conflict",
        }
    }
}

pub struct Redis {
    /// Player and SDK label names, for the bytes (numbers are this process's own).
    quality: Arc<Quality>,
    client: redis::Client,
    manager: OnceLock<ConnectionManager>,
    prefix: String,
    open_set: String,
    timeout: Duration,
    /// Until when (ms since the epoch) the store counts as down.
    down_until: AtomicU64,
    script: redis::Script,
    count_open: redis::Script,
}

/// A session as read: its state and the bytes it came from (for the compare-and-set).
pub struct Read {
    pub session: Option<Session>,
    pub bytes: Vec<u8>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Redis {
    /// A store on `url` (parsed now; no connection is made until the first operation), its TLS
    /// server verified with `ca_file`'s certificates when given (else the system's).
    pub fn new(
        url: &str,
        prefix: &str,
        ca_file: Option<&str>,
        timeout: Duration,
        quality: Arc<Quality>,
    ) -> Result<Redis, String> {
        let client = match ca_file {
            None => redis::Client::open(url),
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("[sessions] redis_ca_file: cannot read {path}: {e}"))?;
                let certs = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                };
                redis::Client::build_with_tls(url, certs)
            }
        }
        .map_err(|e| format!("[sessions] redis_url: {e}"))?;
        Ok(Redis {
            client,
            manager: OnceLock::new(),
            prefix: prefix.to_owned(),
            open_set: format!("{prefix}open"),
            timeout,
            down_until: AtomicU64::new(0),
            script: redis::Script::new(COMPARE_AND_SET),
            count_open: redis::Script::new(COUNT_OPEN),
            quality,
        })
    }

    fn key(&self, sid: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + sid.len());
        key.push_str(&self.prefix);
        key.push_str(sid);
        key
    }

    /// The connection, made lazily (the manager reconnects by itself after a failure).
    fn connection(&self) -> Result<ConnectionManager, StoreError> {
        if let Some(m) = self.manager.get() {
            return Ok(m.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.timeout))
            .set_connection_timeout(Some(self.timeout.max(Duration::from_millis(200))))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let m = ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(|_| StoreError::Unavailable)?;
        Ok(self.manager.get_or_init(|| m).clone())
    }

    /// Whether an operation may try the store now.
    pub fn is_up(&self) -> bool {
        now_ms() >= self.down_until.load(Ordering::Relaxed)
    }

    /// Runs `op` within the deadline; a failure marks the store down for a moment.
    async fn run<T>(
        &self,
        op: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        if !self.is_up() {
            return Err(StoreError::Unavailable);
        }
        let result = match tokio::time::timeout(self.timeout, op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(StoreError::Unavailable),
            Err(_) => Err(StoreError::Timeout),
        };
        if result.is_err() {
            self.down_until
                .store(now_ms() + DOWN_FOR_MS, Ordering::Relaxed);
        }
        result
    }

    pub async fn read(&self, sid: &str) -> Result<Read, StoreError> {
        let mut conn = self.connection()?;
        let key = self.key(sid);
        let bytes: Option<Vec<u8>> = self
            .run(redis::cmd("GET").arg(&key).query_async(&mut conn))
            .await?;
        match bytes {
            None => Ok(Read {
                session: None,
                bytes: Vec::new(),
            }),
            Some(bytes) => match codec::decode(&bytes, &|which, name| match which {
                0 => self.quality.players.label(Some(name)),
                _ => self.quality.sdks.label(Some(name)),
            }) {
                Some(s) => Ok(Read {
                    session: Some(s),
                    bytes,
                }),
                None => Err(StoreError::Corrupt),
            },
        }
    }

    /// Writes `new` (or deletes, when `None`) if the key still holds `expected`; `false`: it
    /// changed meanwhile.
    pub async fn compare_and_set(
        &self,
        sid: &str,
        expected: &[u8],
        new: Option<&Session>,
        settings: &Settings,
    ) -> Result<bool, StoreError> {
        let mut conn = self.connection()?;
        let key = self.key(sid);
        let bytes = new
            .map(|s| {
                let (player, sdk) = (
                    self.quality.players.name(s.player),
                    self.quality.sdks.name(s.sdk),
                );
                codec::encode(s, [&player, &sdk])
            })
            .unwrap_or_default();
        let open_until = new.and_then(|s| s.open_until(settings)).unwrap_or(0);
        let retention = settings
            .closed_retention_ms
            .saturating_add(settings.reorder_window_ms);
        let ttl = if open_until == 0 {
            retention
        } else {
            settings
                .idle_timeout_ms
                .max(settings.playhead_timeout_ms)
                .saturating_add(retention)
        };
        let mut invocation = self.script.key(&key);
        invocation.key(&self.open_set);
        invocation
            .arg(expected)
            .arg(bytes)
            .arg(ttl.max(1))
            .arg(open_until)
            .arg(sid);
        let applied: i64 = self.run(invocation.invoke_async(&mut conn)).await?;
        Ok(applied == 1)
    }

    /// The sessions open across every replica at `now_ms` (expired ones are dropped from the
    /// open set first).
    pub async fn count_open(&self, now_ms: u64) -> Result<i64, StoreError> {
        let mut conn = self.connection()?;
        let mut invocation = self.count_open.key(&self.open_set);
        invocation.arg(now_ms);
        self.run(invocation.invoke_async(&mut conn)).await
    }

    /// Reads, applies `f`, writes back; again (up to three times) when another replica changed
    /// the session meanwhile. `known` is what this replica read just before, when it did (one
    /// read fewer). `f` may run more than once: it must only change the session it is given.
    pub async fn update<R>(
        &self,
        sid: &str,
        known: Option<Read>,
        settings: &Settings,
        mut f: impl FnMut(&mut Option<Session>) -> R,
    ) -> Result<R, StoreError> {
        let mut read = match known {
            Some(r) => r,
            None => self.read(sid).await?,
        };
        for _ in 0..3 {
            let mut session = read.session.clone();
            let r = f(&mut session);
            if session == read.session {
                return Ok(r);
            }
            if self
                .compare_and_set(sid, &read.bytes, session.as_ref(), settings)
                .await?
            {
                return Ok(r);
            }
            read = self.read(sid).await?;
        }
        Err(StoreError::Conflict)
    }
}
