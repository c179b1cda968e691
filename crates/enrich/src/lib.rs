//! Enrichment: what the gateway adds to a valid call before forwarding it.
//!
//! **Owns** the `[enrich]` file model ([`file`]), its compilation into rules (refusing any rule
//! that would make a valid body invalid) and their application. **May use:** `mcapi` (event
//! types, the rule tables, the parsed document), `json` (spans, escaping), `http` (header
//! types), `ring` (HMAC), `ipnet` (trusted proxies), `serde`/`toml` (the file model). Pure: no
//! I/O, no clock (the receive time is in the context). Given compiled rules and a request
//! context (client address, headers, request id, receive time) it computes
//! - body edits ([`ruleset`]): `sessionStart` params set when absent or always, identity params
//!   removed or hashed (privacy), and `customMetadata` entries from the request context where the
//!   API allows `customMetadata`;
//! - the headers of the upstream request: `X-Forwarded-For` (appended to, as proxies do),
//!   `X-Forwarded-Proto`, the request id (an incoming one is kept only from a trusted proxy) and
//!   configured headers.
//!
//! `[enrich]` is the default rule set; each `[[enrich.site]]` is `[enrich]` amended for requests
//! whose host and/or path prefix match (the first matching site wins), so one gateway can serve
//! several sites with, for instance, different report suites.

pub mod file;
pub mod ruleset;
pub mod template;
mod trusted;
pub mod ua;

use http::{HeaderMap, HeaderName, HeaderValue};
use std::collections::BTreeMap;
use std::net::IpAddr;

use mcapi::Policies;
pub use ruleset::{hex, Applied, RuleSet};
pub use template::Template;
use trusted::Trusted;

/// Why a rule is refused: the key at fault and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct Error {
    pub key: String,
    pub message: String,
}

impl Error {
    pub fn new(key: impl Into<String>, message: impl std::fmt::Display) -> Error {
        Error {
            key: key.into(),
            message: message.to_string(),
        }
    }
}

/// What enrichment may read about the request.
pub struct Context<'a> {
    /// The client's address: the peer, or the first untrusted address of `X-Forwarded-For` when
    /// the peer is a trusted proxy.
    pub client_ip: Option<IpAddr>,
    pub request_id: &'a str,
    pub received_at_ms: u64,
    pub headers: &'a HeaderMap,
}

/// A site's match and its merged rules.
#[derive(Debug)]
struct Site {
    host: Option<String>,
    path_prefix: Option<String>,
    rules: RuleSet,
}

/// The compiled `[enrich]` section.
#[derive(Debug)]
pub struct Rules {
    default: RuleSet,
    sites: Vec<Site>,
    x_forwarded_for: bool,
    x_forwarded_proto: bool,
    request_id_header: Option<HeaderName>,
    trusted_proxies: Trusted,
}

impl Rules {
    /// Compiles the `[enrich]` table. Errors name the key. A rule that would make a valid body
    /// invalid is refused here, so `mediagate check` catches it before traffic does.
    pub fn compile(
        file: &file::Enrich,
        policies: &Policies,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Rules, Error> {
        let source = ruleset::Source {
            session_params: &file.session_params,
            custom_metadata: &file.custom_metadata,
            privacy: &file.privacy,
            upstream_headers: &file.upstream_headers,
        };
        let default = RuleSet::compile("default", "[enrich]", &source, policies, env)?;
        let mut sites: Vec<Site> = Vec::new();
        for (i, site) in file.site.iter().enumerate() {
            let at = format!("[[enrich.site]] #{} ({:?})", i + 1, site.name);
            if site.name.is_empty()
                || site.name == "default"
                || sites.iter().any(|s| s.rules.name == site.name)
            {
                return Err(Error::new(
                    format!("{at} name"),
                    "must be non-empty, unique and not \"default\"",
                ));
            }
            if site.host.is_none() && site.path_prefix.is_none() {
                return Err(Error::new(at, "set host, path_prefix or both"));
            }
            if site
                .path_prefix
                .as_ref()
                .is_some_and(|p| !p.starts_with('/'))
            {
                return Err(Error::new(format!("{at} path_prefix"), "must start with /"));
            }
            let merged = merge(file, site);
            let source = ruleset::Source {
                session_params: &merged.session_params,
                custom_metadata: &merged.custom_metadata,
                privacy: &merged.privacy,
                upstream_headers: &merged.upstream_headers,
            };
            sites.push(Site {
                host: site.host.as_ref().map(|h| h.to_ascii_lowercase()),
                path_prefix: site.path_prefix.clone(),
                rules: RuleSet::compile(&site.name, &at, &source, policies, env)?,
            });
        }
        let request_id_header = match file.request_id_header.as_str() {
            "" => None,
            name => Some(HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Error::new(
                    "[enrich] request_id_header",
                    format!("{name:?} is not a valid header name"),
                )
            })?),
        };
        let trusted_proxies = Trusted::parse(&file.trusted_proxies)
            .map_err(|e| Error::new("[enrich] trusted_proxies", e))?;
        Ok(Rules {
            default,
            sites,
            x_forwarded_for: file.x_forwarded_for,
            x_forwarded_proto: file.x_forwarded_proto,
            request_id_header,
            trusted_proxies,
        })
    }

    /// The names of every rule set: the default's, then each site's.
    pub fn rule_set_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.default.name.as_str())
            .chain(self.sites.iter().map(|s| s.rules.name.as_str()))
    }

    /// The rule set for a request: the first site whose host (without port, case-insensitive)
    /// and path prefix match, else the default.
    pub fn select(&self, host: Option<&str>, path: &str) -> &RuleSet {
        if self.sites.is_empty() {
            return &self.default;
        }
        let host = host.map(strip_port);
        self.sites
            .iter()
            .find(|s| {
                s.host
                    .as_ref()
                    .is_none_or(|h| host.is_some_and(|got| got.eq_ignore_ascii_case(h)))
                    && s.path_prefix
                        .as_ref()
                        .is_none_or(|p| path.starts_with(p.as_str()))
            })
            .map_or(&self.default, |s| &s.rules)
    }

    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.contains(peer)
    }

    /// The client's address: the peer, unless the peer is a trusted proxy, in which case the
    /// right-most address of `X-Forwarded-For` that is not itself trusted.
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?;
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !self.is_trusted(*ip))
            .or(Some(peer))
    }

    /// The incoming request id when it may be kept (the peer is a trusted proxy).
    pub fn incoming_request_id<'h>(
        &self,
        peer: Option<IpAddr>,
        headers: &'h HeaderMap,
    ) -> Option<&'h str> {
        let name = self.request_id_header.as_ref()?;
        if !peer.is_some_and(|p| self.is_trusted(p)) {
            return None;
        }
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 200)
    }

    /// The headers to set on the upstream request, with `set`'s configured headers.
    pub fn upstream_headers(
        &self,
        set: &RuleSet,
        ctx: &Context,
        peer: Option<IpAddr>,
        downstream_tls: bool,
    ) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::with_capacity(3 + set.upstream_headers.len());
        if self.x_forwarded_for {
            if let Some(peer) = peer {
                use std::fmt::Write;
                let mut value = String::with_capacity(48);
                for prior in ctx
                    .headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                {
                    value.push_str(prior);
                    value.push_str(", ");
                }
                // Writing to a String cannot fail.
                let _ = write!(value, "{peer}");
                if let Ok(v) = HeaderValue::try_from(value) {
                    out.push((HeaderName::from_static("x-forwarded-for"), v));
                }
            }
        }
        if self.x_forwarded_proto {
            let trusted = peer.is_some_and(|p| self.is_trusted(p));
            let incoming = ctx
                .headers
                .get("x-forwarded-proto")
                .filter(|_| trusted)
                .cloned();
            let own = HeaderValue::from_static(if downstream_tls { "https" } else { "http" });
            out.push((
                HeaderName::from_static("x-forwarded-proto"),
                incoming.unwrap_or(own),
            ));
        }
        if let Some(name) = &self.request_id_header {
            if let Ok(v) = HeaderValue::from_str(ctx.request_id) {
                out.push((name.clone(), v));
            }
        }
        for (name, template) in &set.upstream_headers {
            if let Ok(v) = HeaderValue::from_str(&template.render(ctx)) {
                out.push((name.clone(), v));
            }
        }
        out
    }
}

/// A site's tables laid over `[enrich]`'s: for the same key the site wins; privacy lists add up.
fn merge(base: &file::Enrich, site: &file::Site) -> file::Site {
    fn over<V: Clone>(a: &BTreeMap<String, V>, b: &BTreeMap<String, V>) -> BTreeMap<String, V> {
        let mut m = a.clone();
        m.extend(b.iter().map(|(k, v)| (k.clone(), v.clone())));
        m
    }
    let mut privacy = base.privacy.clone();
    privacy.remove.extend(site.privacy.remove.iter().cloned());
    privacy.hash.extend(site.privacy.hash.iter().cloned());
    if site.privacy.hash_secret.is_some() {
        privacy.hash_secret = site.privacy.hash_secret.clone();
    }
    let mut session_params = file::SessionParams {
        if_absent: over(
            &base.session_params.if_absent,
            &site.session_params.if_absent,
        ),
        always: over(&base.session_params.always, &site.session_params.always),
    };
    // A key the site sets one way must not also be set the other way by the defaults.
    session_params
        .if_absent
        .retain(|k, _| !site.session_params.always.contains_key(k));
    session_params
        .always
        .retain(|k, _| !site.session_params.if_absent.contains_key(k));
    file::Site {
        name: site.name.clone(),
        host: site.host.clone(),
        path_prefix: site.path_prefix.clone(),
        session_params,
        custom_metadata: over(&base.custom_metadata, &site.custom_metadata),
        privacy,
        upstream_headers: over(&base.upstream_headers, &site.upstream_headers),
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(h, _)| &h[1..]);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests;
