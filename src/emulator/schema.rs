//! `GET /api/v1/schemas/{eventType}`: the JSON Schema (draft-04) of one event type, generated
//! from the validator's rule table ([`mcapi::schema`]) under the emulator's policies.

use mcapi::{self, rules, EventType, Policies};

/// The schema of `event_type` as JSON text, or `None` when the type is unknown (or is
/// `statesUpdate` while the policies switch it off).
pub fn schema_for(event_type: &str, policies: &Policies) -> Option<Vec<u8>> {
    let t = EventType::parse(event_type)?;
    if rules::event_spec(t).feature_flag && !policies.states_update {
        return None;
    }
    serde_json::to_vec(&mcapi::schema::schema_for(t, policies)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_types_get_a_draft_04_schema() {
        let body = schema_for("sessionStart", &Policies::default()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["$schema"], "http://json-schema.org/draft-04/schema#");
        assert_eq!(v["id"], "/api/v1/schemas/sessionStart");
        assert_eq!(v["title"], "sessionStart");
        assert_eq!(v["properties"]["eventType"]["enum"][0], "sessionStart");
    }

    #[test]
    fn unknown_types_have_none() {
        assert!(schema_for("sessionstart", &Policies::default()).is_none());
        assert!(schema_for("", &Policies::default()).is_none());
    }

    #[test]
    fn states_update_only_when_switched_on() {
        assert!(schema_for("statesUpdate", &Policies::default()).is_none());
        let on = Policies {
            states_update: true,
            ..Policies::default()
        };
        assert!(schema_for("statesUpdate", &on).is_some());
    }
}
