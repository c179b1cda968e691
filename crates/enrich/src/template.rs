//! Value templates for enrichment: literal text with `${...}` placeholders.
//!
//! Placeholders: `${client_ip}`, `${request_id}`, `${received_at}` (RFC 3339, UTC, milliseconds),
//! `${received_at_ms}` (Unix milliseconds), `${ua_family}` (a bounded family of the User-Agent,
//! see [`super::ua`]), `${header:NAME}` (a request header, empty when absent)
//! and `${env:NAME}` (an environment variable, read once when the configuration is loaded; a
//! missing variable is a configuration error). `$${` writes a literal `${`.

use crate::Context;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    ClientIp,
    RequestId,
    ReceivedAt,
    ReceivedAtMs,
    UaFamily,
    Header(http::HeaderName),
}

/// Why a template does not compile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

/// A compiled template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Compiles `source`; `env` looks up environment variables (injected for tests).
    pub fn compile(
        source: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        while let Some(start) = rest.find("${") {
            if rest[..start].ends_with('$') {
                text.push_str(&rest[..start - 1]);
                text.push_str("${");
                rest = &rest[start + 2..];
                continue;
            }
            text.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| TemplateError(format!("unclosed placeholder in {source:?}")))?;
            let name = &after[..end];
            let part = match name.split_once(':') {
                None => match name {
                    "client_ip" => Part::ClientIp,
                    "request_id" => Part::RequestId,
                    "received_at" => Part::ReceivedAt,
                    "received_at_ms" => Part::ReceivedAtMs,
                    "ua_family" => Part::UaFamily,
                    _ => return Err(TemplateError(format!("unknown placeholder ${{{name}}}"))),
                },
                Some(("header", h)) => {
                    Part::Header(http::HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                        TemplateError(format!("invalid header name {h:?} in ${{{name}}}"))
                    })?)
                }
                Some(("env", var)) => {
                    let value = env(var).ok_or_else(|| {
                        TemplateError(format!("environment variable {var} is not set"))
                    })?;
                    Part::Text(value)
                }
                Some(_) => return Err(TemplateError(format!("unknown placeholder ${{{name}}}"))),
            };
            if let Part::Text(t) = part {
                text.push_str(&t);
            } else {
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(part);
            }
            rest = &after[end + 1..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template { parts })
    }

    /// The template's value when it has no request-time placeholder.
    pub fn as_constant(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Text(t)] => Some(t),
            _ => None,
        }
    }

    pub fn render(&self, ctx: &Context) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::ClientIp => {
                    out.push_str(&ctx.client_ip.map(|ip| ip.to_string()).unwrap_or_default())
                }
                Part::RequestId => out.push_str(ctx.request_id),
                Part::ReceivedAt => out.push_str(&rfc3339_millis(ctx.received_at_ms)),
                Part::ReceivedAtMs => out.push_str(&ctx.received_at_ms.to_string()),
                Part::UaFamily => {
                    let ua = ctx.headers.get("user-agent").and_then(|v| v.to_str().ok());
                    out.push_str(crate::ua::family(ua))
                }
                Part::Header(name) => {
                    if let Some(v) = ctx.headers.get(name).and_then(|v| v.to_str().ok()) {
                        out.push_str(v)
                    }
                }
            }
        }
        out
    }
}

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (proleptic Gregorian, UTC).
pub fn rfc3339_millis(ms: u64) -> String {
    let mut out = Vec::with_capacity(24);
    rfc3339_millis_to(&mut out, ms);
    // Only ASCII digits and separators were written.
    String::from_utf8(out).unwrap_or_default()
}

/// [`rfc3339_millis`], appended to `out` (no allocation beyond `out`'s growth).
pub fn rfc3339_millis_to(out: &mut Vec<u8>, ms: u64) {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let digits = |out: &mut Vec<u8>, v: u64, width: u32| {
        for i in (0..width).rev() {
            out.push(b'0' + (v / 10u64.pow(i) % 10) as u8);
        }
    };
    digits(out, year.clamp(0, 9999) as u64, 4);
    out.push(b'-');
    digits(out, month as u64, 2);
    out.push(b'-');
    digits(out, day as u64, 2);
    out.push(b'T');
    digits(out, rem / 3600, 2);
    out.push(b':');
    digits(out, rem % 3600 / 60, 2);
    out.push(b':');
    digits(out, rem % 60, 2);
    out.push(b'.');
    digits(out, ms % 1000, 3);
    out.push(b'Z');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn placeholders_render_from_the_context() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-geo", "DE".parse().unwrap());
        let ctx = Context {
            client_ip: Some("203.0.113.7".parse().unwrap()),
            request_id: "rid-1",
            received_at_ms: 1_768_507_200_123,
            headers: &headers,
        };
        let t = Template::compile("${client_ip}|${request_id}|${header:X-Geo}|${header:x-none}|${received_at_ms}|${received_at}", &no_env).unwrap();
        assert_eq!(
            t.render(&ctx),
            "203.0.113.7|rid-1|DE||1768507200123|2026-01-15T20:00:00.123Z"
        );
    }

    #[test]
    fn env_is_resolved_at_compile_time() {
        let env = |k: &str| (k == "REGION").then(|| "eu-west-1".to_string());
        let t = Template::compile("gw-${env:REGION}", &env).unwrap();
        assert_eq!(t.as_constant(), Some("gw-eu-west-1"));
        assert!(Template::compile("${env:MISSING}", &env)
            .unwrap_err()
            .0
            .contains("MISSING"));
    }

    #[test]
    fn malformed_templates_are_errors() {
        assert!(Template::compile("${nope}", &no_env).is_err());
        assert!(Template::compile("${client_ip", &no_env).is_err());
        assert!(Template::compile("${header:bad name}", &no_env).is_err());
        assert_eq!(
            Template::compile("$${literal}", &no_env)
                .unwrap()
                .as_constant(),
            Some("${literal}")
        );
    }

    #[test]
    fn dates_format_like_rfc3339() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
