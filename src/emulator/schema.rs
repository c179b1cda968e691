//! `GET /api/v1/schemas/{eventType}`: the JSON Schema (draft-04) of one event type.
//!
//! For now a minimal placeholder schema naming the type; [`schema_for`] is the single place a
//! later task replaces with schemas generated from the rule table.

use crate::mcapi::EventType;

/// The schema of `event_type` as JSON text, or `None` when the type is unknown.
pub fn schema_for(event_type: &str) -> Option<Vec<u8>> {
    let t = EventType::parse(event_type)?;
    let schema = serde_json::json!({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": t.as_str(),
    });
    serde_json::to_vec(&schema).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_types_get_a_draft_04_schema() {
        let body = schema_for("sessionStart").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["$schema"], "http://json-schema.org/draft-04/schema#");
        assert_eq!(v["title"], "sessionStart");
    }

    #[test]
    fn unknown_types_have_none() {
        assert!(schema_for("sessionstart").is_none());
        assert!(schema_for("").is_none());
    }
}
