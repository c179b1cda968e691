//! STUB — replaced by the validator.
use super::*;

pub fn check<'a>(_endpoint: Endpoint, body: &'a [u8], _policies: &Policies, _now_ms: u64) -> Checked<'a> {
    Checked { text: std::str::from_utf8(body).unwrap_or(""), document: None, violations: vec![] }
}
