//! Enrichment: what the gateway adds to a valid call before forwarding it.
//!
//! Pure. Given compiled rules and a request context (client address, headers, request id, receive
//! time) it computes
//! - the `sessionStart` params to set when absent (`if_absent`) or always (`always`), applied to
//!   every `sessionStart` of a body (single or batch) as an edit of the `params` object alone —
//!   the rest of the body is copied byte for byte, and nothing is re-serialized when nothing
//!   changed;
//! - the headers of the upstream request: `X-Forwarded-For` (appended to, as proxies do),
//!   `X-Forwarded-Proto`, the request id (an incoming one is kept only from a trusted proxy) and
//!   configured headers.

pub mod cidr;
pub mod template;

use http::{HeaderMap, HeaderName, HeaderValue};
use std::net::IpAddr;
use std::ops::Range;

use crate::config::file;
use crate::mcapi::json::{self, Object};
use crate::mcapi::{Document, EventType, Policies};
use cidr::Cidr;
pub use template::Template;

/// What enrichment may read about the request.
pub struct Context<'a> {
    /// The client's address: the peer, or the first untrusted address of `X-Forwarded-For` when
    /// the peer is a trusted proxy.
    pub client_ip: Option<IpAddr>,
    pub request_id: &'a str,
    pub received_at_ms: u64,
    pub headers: &'a HeaderMap,
}

/// A param value: a JSON literal from the file, or a template rendered to a JSON string.
#[derive(Clone, Debug)]
enum Value {
    Literal(Vec<u8>),
    Template(Template),
}

#[derive(Clone, Debug)]
struct ParamRule {
    key: String,
    value: Value,
    always: bool,
}

/// The compiled `[enrich]` section.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    session_params: Vec<ParamRule>,
    upstream_headers: Vec<(HeaderName, Template)>,
    x_forwarded_for: bool,
    x_forwarded_proto: bool,
    request_id_header: Option<HeaderName>,
    trusted_proxies: Vec<Cidr>,
}

impl Rules {
    /// Compiles the `[enrich]` table. Errors name the key. A param rule whose value the API's
    /// rules would reject is refused here, so `mediagate check` catches it before traffic does.
    pub fn compile(
        file: &file::Enrich,
        policies: &Policies,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Rules, String> {
        let mut session_params = Vec::new();
        let tables = [
            (&file.session_params.if_absent, false, "if_absent"),
            (&file.session_params.always, true, "always"),
        ];
        for (table, always, table_name) in tables {
            for (key, value) in table {
                let at = format!("[enrich.session_params.{table_name}] \"{key}\"");
                let value =
                    compile_param(key, value, policies, env).map_err(|e| format!("{at}: {e}"))?;
                session_params.push(ParamRule {
                    key: key.clone(),
                    value,
                    always,
                });
            }
        }
        let mut upstream_headers = Vec::new();
        for (name, value) in &file.upstream_headers {
            let at = format!("[enrich.upstream_headers] \"{name}\"");
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{at}: not a valid header name"))?;
            let template = Template::compile(value, env).map_err(|e| format!("{at}: {e}"))?;
            if let Some(c) = template.as_constant() {
                HeaderValue::from_str(c).map_err(|_| format!("{at}: not a valid header value"))?;
            }
            upstream_headers.push((header, template));
        }
        let request_id_header = match file.request_id_header.as_str() {
            "" => None,
            name => Some(HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                format!("[enrich] request_id_header: {name:?} is not a valid header name")
            })?),
        };
        let trusted_proxies = file
            .trusted_proxies
            .iter()
            .map(|s| Cidr::parse(s).map_err(|e| format!("[enrich] trusted_proxies: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Rules {
            session_params,
            upstream_headers,
            x_forwarded_for: file.x_forwarded_for,
            x_forwarded_proto: file.x_forwarded_proto,
            request_id_header,
            trusted_proxies,
        })
    }

    pub fn has_body_rules(&self) -> bool {
        !self.session_params.is_empty()
    }

    pub fn request_id_header(&self) -> Option<&HeaderName> {
        self.request_id_header.as_ref()
    }

    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|c| c.contains(peer))
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

    /// The headers to set on the upstream request.
    pub fn upstream_headers(
        &self,
        ctx: &Context,
        peer: Option<IpAddr>,
        downstream_tls: bool,
    ) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::with_capacity(3 + self.upstream_headers.len());
        if self.x_forwarded_for {
            if let Some(peer) = peer {
                let prior = ctx
                    .headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect::<Vec<_>>()
                    .join(", ");
                let value = if prior.is_empty() {
                    peer.to_string()
                } else {
                    format!("{prior}, {peer}")
                };
                if let Ok(v) = HeaderValue::from_str(&value) {
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
        for (name, template) in &self.upstream_headers {
            if let Ok(v) = HeaderValue::from_str(&template.render(ctx)) {
                out.push((name.clone(), v));
            }
        }
        out
    }

    /// The enriched body, or `None` when no rule changes it (the original bytes are forwarded).
    pub fn enrich_body(&self, text: &str, doc: &Document, ctx: &Context) -> Option<Vec<u8>> {
        if self.session_params.is_empty() {
            return None;
        }
        let mut edits: Vec<(Range<usize>, Vec<u8>)> = Vec::new();
        for event in doc.events() {
            if event.event_type != Some(EventType::SessionStart) {
                continue;
            }
            match &event.params {
                Some(params) => {
                    if let Some(new) = self.apply_params(params, ctx) {
                        edits.push((json::span_in(text, params.raw.get()), new));
                    }
                }
                None if event.object.get("params").is_none() => {
                    // No params at all (only forwarded in report/off mode): add the member.
                    let span = json::span_in(text, event.object.raw.get());
                    let close = span.end - 1;
                    let empty = Object {
                        raw: event.object.raw,
                        members: Vec::new(),
                    };
                    if let Some(params) = self.apply_params(&empty, ctx) {
                        let mut insert = Vec::with_capacity(params.len() + 12);
                        if !event.object.is_empty() {
                            insert.push(b',');
                        }
                        insert.extend_from_slice(b"\"params\":");
                        insert.extend_from_slice(&params);
                        edits.push((close..close, insert));
                    }
                }
                None => {} // params present but not an object: invalid, leave it alone.
            }
        }
        if edits.is_empty() {
            return None;
        }
        Some(splice(text.as_bytes(), &mut edits))
    }

    /// The rebuilt `params` object, or `None` when the rules change nothing.
    fn apply_params(&self, params: &Object, ctx: &Context) -> Option<Vec<u8>> {
        let mut replaced: Vec<Option<Vec<u8>>> = vec![None; params.members.len()];
        let mut appended: Vec<(&str, Vec<u8>)> = Vec::new();
        for rule in &self.session_params {
            let position = params.members.iter().position(|m| m.key == rule.key);
            match position {
                Some(_) if !rule.always => continue,
                Some(i) => {
                    let value = rule.render(ctx);
                    if params.members[i].value.get().as_bytes() != value.as_slice() {
                        replaced[i] = Some(value);
                    }
                }
                None => appended.push((&rule.key, rule.render(ctx))),
            }
        }
        if appended.is_empty() && replaced.iter().all(Option::is_none) {
            return None;
        }
        let mut out = Vec::with_capacity(params.raw.get().len() + 64 * appended.len());
        out.push(b'{');
        let mut first = true;
        let mut member = |out: &mut Vec<u8>, key: &str, value: &[u8]| {
            if !first {
                out.push(b',');
            }
            first = false;
            json::write_str(out, key);
            out.push(b':');
            out.extend_from_slice(value);
        };
        for (m, new) in params.members.iter().zip(&replaced) {
            let value = new.as_deref().unwrap_or(m.value.get().as_bytes());
            member(&mut out, &m.key, value);
        }
        for (key, value) in &appended {
            member(&mut out, key, value);
        }
        out.push(b'}');
        Some(out)
    }
}

impl ParamRule {
    fn render(&self, ctx: &Context) -> Vec<u8> {
        match &self.value {
            Value::Literal(raw) => raw.clone(),
            Value::Template(t) => {
                let mut out = Vec::new();
                json::write_str(&mut out, &t.render(ctx));
                out
            }
        }
    }
}

fn compile_param(
    key: &str,
    value: &toml::Value,
    policies: &Policies,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Value, String> {
    let json_value = serde_json::to_value(value).map_err(|e| e.to_string())?;
    if let toml::Value::String(s) = value {
        let template = Template::compile(s, env)?;
        let probe = template.as_constant().unwrap_or("x").to_owned();
        crate::mcapi::rules::check_param_value(
            EventType::SessionStart,
            key,
            &serde_json::Value::String(probe),
            policies,
        )?;
        if let Some(c) = template.as_constant() {
            return Ok(Value::Literal(
                serde_json::to_vec(c).map_err(|e| e.to_string())?,
            ));
        }
        return Ok(Value::Template(template));
    }
    crate::mcapi::rules::check_param_value(EventType::SessionStart, key, &json_value, policies)?;
    Ok(Value::Literal(
        serde_json::to_vec(&json_value).map_err(|e| e.to_string())?,
    ))
}

/// Applies non-overlapping edits (byte range → replacement) to `input`.
fn splice(input: &[u8], edits: &mut [(Range<usize>, Vec<u8>)]) -> Vec<u8> {
    edits.sort_by_key(|(r, _)| r.start);
    let extra: usize = edits.iter().map(|(_, v)| v.len()).sum();
    let mut out = Vec::with_capacity(input.len() + extra);
    let mut at = 0;
    for (range, replacement) in edits.iter() {
        out.extend_from_slice(&input[at..range.start]);
        out.extend_from_slice(replacement);
        at = range.end;
    }
    out.extend_from_slice(&input[at..]);
    out
}

#[cfg(test)]
mod tests;
