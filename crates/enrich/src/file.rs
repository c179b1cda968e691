//! The `[enrich]` tables of the configuration file, exactly as written: the file model that
//! [`crate::Rules::compile`] turns into rules. Every table rejects unknown keys; defaults live
//! here, next to the keys.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Enrich {
    pub x_forwarded_for: bool,
    pub x_forwarded_proto: bool,
    pub request_id_header: String,
    pub trusted_proxies: Vec<String>,
    pub session_params: SessionParams,
    pub custom_metadata: BTreeMap<String, String>,
    pub privacy: Privacy,
    pub upstream_headers: BTreeMap<String, String>,
    /// Rule sets for some sites, selected by request host and/or path prefix.
    pub site: Vec<Site>,
}

impl Default for Enrich {
    fn default() -> Self {
        Enrich {
            x_forwarded_for: true,
            x_forwarded_proto: true,
            request_id_header: "x-request-id".into(),
            trusted_proxies: Vec::new(),
            session_params: SessionParams::default(),
            custom_metadata: BTreeMap::new(),
            privacy: Privacy::default(),
            upstream_headers: BTreeMap::new(),
            site: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct SessionParams {
    pub if_absent: BTreeMap<String, toml::Value>,
    pub always: BTreeMap<String, toml::Value>,
}

/// Identity params removed from, or hashed in, every `sessionStart`.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct Privacy {
    pub remove: Vec<String>,
    pub hash: Vec<String>,
    /// The HMAC-SHA256 key for `hash`, usually `${env:NAME}`.
    pub hash_secret: Option<String>,
}

/// A site: the rules of `[enrich]`, amended for requests matching `host` and/or `path_prefix`.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub name: String,
    pub host: Option<String>,
    pub path_prefix: Option<String>,
    #[serde(default)]
    pub session_params: SessionParams,
    #[serde(default)]
    pub custom_metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub privacy: Privacy,
    #[serde(default)]
    pub upstream_headers: BTreeMap<String, String>,
}
