//! JSON Schemas (draft-04) of the event bodies, generated from the rule table of `rules.rs`, so
//! the schemas the emulator serves at `GET /api/v1/schemas/{eventType}` say what the validator
//! checks.
//!
//! A schema describes one event object as the gateway accepts it under the given policies: the
//! envelope (`playerTime`, `eventType`, `params`, `qoeData`, `customMetadata`, nothing else), the
//! event type's params with their JSON types, minimums, enums, patterns and required keys (and,
//! under `unknown_params = "reject"`, nothing else), the params tolerated with a warning, the
//! QoE keys, `customMetadata` where the type allows it (an empty object elsewhere), the
//! customer IDs and the `statesUpdate` lists.
//!
//! What a schema cannot say, the validator still checks: duplicate keys, numbers that overflow
//! (`finite`), where each type may be sent (`endpoint`, `media.downloaded` outside a batch), the
//! batch rules, `statesUpdate` being switched off, and the optional `playerTime.ts` window.

use super::rules::{self, ParamSpec, Table, ValueType};
use super::{EventType, Policies, UnknownParams};
use serde_json::{json, Map, Value};

/// The draft the schemas follow.
pub const DRAFT_04: &str = "http://json-schema.org/draft-04/schema#";

/// The schema of an `event` body under `policies`.
pub fn schema_for(event: EventType, policies: &Policies) -> Value {
    let spec = rules::event_spec(event);
    let name = event.as_str();
    let mut required = vec!["playerTime", "eventType"];
    if spec.requires_params() {
        required.push("params");
    }
    let custom_metadata = if spec.custom_metadata {
        json!({
            "type": "object",
            "description": "Custom metadata: string values, keys of letters, digits, '_' and '.' (keys starting with 'media.' or 'a.' are reserved: forwarded with a warning).",
            "additionalProperties": false,
            "patternProperties": {
                rules::CUSTOM_METADATA_KEY_PATTERN: {"type": "string"},
            },
        })
    } else {
        json!({
            "type": "object",
            "description": format!("{name} carries no custom metadata (an empty object is tolerated)."),
            "maxProperties": 0,
        })
    };
    json!({
        "$schema": DRAFT_04,
        "id": format!("/api/v1/schemas/{name}"),
        "title": name,
        "description": format!(
            "The body of an event of type {name} in the Streaming Media Collection API, as this gateway validates it."
        ),
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": {
            "playerTime": object_of(&rules::PLAYER_TIME, true),
            "eventType": {"type": "string", "enum": [name]},
            "params": params(event, policies),
            "qoeData": object_of(&rules::QOE_DATA, true),
            "customMetadata": custom_metadata,
        },
    })
}

/// The schema of `params` for `event`.
fn params(event: EventType, policies: &Policies) -> Value {
    let spec = rules::event_spec(event);
    let tolerated = if spec.tolerates(policies) {
        spec.tolerated.params
    } else {
        &[]
    };
    let Some(table) = spec.params else {
        if tolerated.is_empty() {
            return json!({
                "type": "object",
                "description": format!("{} takes no parameters (an empty object is tolerated).", event.as_str()),
                "maxProperties": 0,
            });
        }
        // `error`: no documented params, but the tolerated shape is forwarded with a warning.
        let mut schema = members(tolerated, &[]);
        schema.insert("additionalProperties".into(), false.into());
        return Value::Object(schema);
    };
    let mut schema = members(table.params, tolerated);
    if policies.unknown_params == UnknownParams::Reject {
        schema.insert("additionalProperties".into(), false.into());
    }
    if !spec.any_of.is_empty() {
        let any_of: Vec<Value> = spec
            .any_of
            .iter()
            .map(|key| json!({"required": [key], "properties": {*key: {"minItems": 1}}}))
            .collect();
        schema.insert("anyOf".into(), any_of.into());
    }
    Value::Object(schema)
}

/// An object with exactly the members of `table` (`additionalProperties: false` when `closed`).
fn object_of(table: &Table, closed: bool) -> Value {
    let mut schema = members(table.params, &[]);
    if closed {
        schema.insert("additionalProperties".into(), false.into());
    }
    Value::Object(schema)
}

/// `{"type": "object", "required": [...], "properties": {...}}` for documented members and, after
/// them, tolerated ones (never required).
fn members(documented: &[ParamSpec], tolerated: &[ParamSpec]) -> Map<String, Value> {
    let mut properties = Map::new();
    for p in documented {
        properties.insert(p.key.into(), value_schema(p.ty));
    }
    for p in tolerated {
        let mut schema = value_schema(p.ty);
        if let Value::Object(s) = &mut schema {
            s.insert(
                "description".into(),
                "Undocumented but sent by real players: forwarded with a warning.".into(),
            );
        }
        properties.insert(p.key.into(), schema);
    }
    let required: Vec<&str> = documented
        .iter()
        .filter(|p| p.required)
        .map(|p| p.key)
        .collect();
    let mut schema = Map::new();
    schema.insert("type".into(), "object".into());
    if !required.is_empty() {
        schema.insert("required".into(), required.into());
    }
    schema.insert("properties".into(), properties.into());
    schema
}

/// The schema of one value.
fn value_schema(ty: ValueType) -> Value {
    let json_type = ty.json_type();
    match ty {
        ValueType::String | ValueType::Boolean => json!({"type": json_type}),
        ValueType::NonEmptyString => json!({"type": json_type, "minLength": 1}),
        ValueType::Number { min } => match min {
            Some(m) => json!({"type": json_type, "minimum": number(m)}),
            None => json!({"type": json_type}),
        },
        ValueType::Integer { min } => match min {
            Some(m) => json!({"type": json_type, "minimum": m}),
            None => json!({"type": json_type}),
        },
        ValueType::StringEnum(values) => json!({"type": json_type, "enum": values}),
        ValueType::IntegerEnum(values) => json!({"type": json_type, "enum": values}),
        ValueType::StateName => {
            json!({"type": json_type, "pattern": rules::STATE_NAME_PATTERN})
        }
        ValueType::CustomerIds => json!({
            "type": json_type,
            "description": "Customer IDs by ID type.",
            "additionalProperties": object_of(&rules::CUSTOMER_ID, true),
        }),
        ValueType::StateList => json!({
            "type": json_type,
            "items": object_of(&rules::STATE, true),
        }),
    }
}

/// A minimum as an integer when it is one (`0`, not `0.0`).
fn number(m: f64) -> Value {
    if m.fract() == 0.0 && m.abs() < 9_007_199_254_740_992.0 {
        json!(m as i64)
    } else {
        json!(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{check, Endpoint, ErrorParams};

    /// A validator for the subset of draft-04 the generated schemas use: `type`, `enum`,
    /// `minimum`, `minLength`, `pattern` (the two patterns of the rule table, matched by hand),
    /// `required`, `properties`, `additionalProperties` (false or a schema), `patternProperties`,
    /// `maxProperties`, `items`, `minItems` and `anyOf`. Any other keyword fails the test, so the
    /// subset cannot silently fall behind the generator. Returns the failures as JSON Pointers.
    fn validate(schema: &Value, instance: &Value, at: &str, errors: &mut Vec<String>) {
        let schema = schema.as_object().expect("a schema is an object");
        if let Some(ty) = schema.get("type") {
            let ok = match ty.as_str().unwrap() {
                "object" => instance.is_object(),
                "array" => instance.is_array(),
                "string" => instance.is_string(),
                "boolean" => instance.is_boolean(),
                "number" => instance.is_number(),
                // draft-04: a number with no fraction; serde_json reads `1.0` as a float.
                "integer" => instance.is_i64() || instance.is_u64(),
                other => panic!("type {other}"),
            };
            if !ok {
                errors.push(format!("{at}: not of type {ty}"));
                return;
            }
        }
        let fail = |errors: &mut Vec<String>, what: &str| errors.push(format!("{at}: {what}"));
        // Each keyword applies to the instances of its kind only (draft-04 §5).
        let (number, string, object, array) = (
            instance.as_f64(),
            instance.as_str(),
            instance.as_object(),
            instance.as_array(),
        );
        for (keyword, arg) in schema {
            match keyword.as_str() {
                "$schema" | "id" | "title" | "description" | "type" => {}
                "enum" => {
                    if !arg.as_array().unwrap().contains(instance) {
                        fail(errors, "not in enum");
                    }
                }
                "minimum" => {
                    if number.is_some_and(|n| n < arg.as_f64().unwrap()) {
                        fail(errors, "below minimum");
                    }
                }
                "minLength" => {
                    let n = string.map_or(u64::MAX, |s| s.chars().count() as u64);
                    if n < arg.as_u64().unwrap() {
                        fail(errors, "too short");
                    }
                }
                "pattern" => {
                    if string.is_some_and(|s| !matches_pattern(arg.as_str().unwrap(), s)) {
                        fail(errors, "pattern");
                    }
                }
                "maxProperties" => {
                    if object.is_some_and(|o| o.len() as u64 > arg.as_u64().unwrap()) {
                        fail(errors, "too many properties");
                    }
                }
                "minItems" => {
                    if array.is_some_and(|a| (a.len() as u64) < arg.as_u64().unwrap()) {
                        fail(errors, "too few items");
                    }
                }
                "required" => {
                    for key in arg.as_array().unwrap() {
                        if object.is_some_and(|o| !o.contains_key(key.as_str().unwrap())) {
                            fail(errors, &format!("{key} required"));
                        }
                    }
                }
                "properties" | "patternProperties" | "additionalProperties" => {}
                "items" => {
                    for (i, item) in array.into_iter().flatten().enumerate() {
                        validate(arg, item, &format!("{at}/{i}"), errors);
                    }
                }
                "anyOf" => {
                    let any = arg.as_array().unwrap().iter().any(|s| {
                        let mut sub = Vec::new();
                        validate(s, instance, at, &mut sub);
                        sub.is_empty()
                    });
                    if !any {
                        fail(errors, "anyOf");
                    }
                }
                other => panic!("keyword {other} is outside the tested subset"),
            }
        }
        validate_members(schema, instance, at, errors);
    }

    /// `properties`, `patternProperties` and `additionalProperties` of an object instance.
    fn validate_members(
        schema: &Map<String, Value>,
        instance: &Value,
        at: &str,
        errors: &mut Vec<String>,
    ) {
        let Some(object) = instance.as_object() else {
            return;
        };
        let empty = Map::new();
        let properties = schema
            .get("properties")
            .map_or(&empty, |p| p.as_object().unwrap());
        let patterns = schema
            .get("patternProperties")
            .map_or(&empty, |p| p.as_object().unwrap());
        for (key, value) in object {
            let here = format!("{at}/{key}");
            let mut matched = false;
            if let Some(s) = properties.get(key) {
                validate(s, value, &here, errors);
                matched = true;
            }
            for (pattern, s) in patterns {
                if matches_pattern(pattern, key) {
                    validate(s, value, &here, errors);
                    matched = true;
                }
            }
            match schema.get("additionalProperties") {
                Some(Value::Bool(false)) if !matched => errors.push(format!("{here}: additional")),
                Some(s @ Value::Object(_)) if !matched => validate(s, value, &here, errors),
                _ => {}
            }
        }
    }

    fn matches_pattern(pattern: &str, s: &str) -> bool {
        match pattern {
            rules::STATE_NAME_PATTERN => rules::is_state_name(s),
            rules::CUSTOM_METADATA_KEY_PATTERN => rules::check_custom_metadata_key(s).is_ok(),
            other => panic!("pattern {other} is outside the tested subset"),
        }
    }

    fn errors_of(t: EventType, policies: &Policies, body: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        validate(&schema_for(t, policies), body, "", &mut errors);
        errors
    }

    fn fixtures(dirs: &[&str]) -> Vec<(String, Value)> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");
        let mut out = Vec::new();
        for dir in dirs {
            let mut paths: Vec<_> = std::fs::read_dir(format!("{root}/{dir}"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            paths.sort();
            for path in paths {
                let name = format!("{dir}/{}", path.file_name().unwrap().to_string_lossy());
                if let Ok(v) = serde_json::from_slice(&std::fs::read(&path).unwrap()) {
                    out.push((name, v));
                }
            }
        }
        out
    }

    fn type_of(body: &Value) -> EventType {
        EventType::parse(body["eventType"].as_str().unwrap()).unwrap()
    }

    fn policy_sets() -> Vec<Policies> {
        let lenient = Policies {
            unknown_params: UnknownParams::Allow,
            states_update: true,
            error_params: ErrorParams::Reject,
            ..Policies::default()
        };
        vec![Policies::default(), lenient]
    }

    #[test]
    fn every_event_type_has_a_draft_04_schema_of_the_envelope() {
        for policies in policy_sets() {
            for t in EventType::ALL {
                let schema = schema_for(t, &policies);
                let text = serde_json::to_string(&schema).unwrap();
                assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), schema);
                assert_eq!(schema["$schema"], DRAFT_04);
                assert_eq!(schema["id"], format!("/api/v1/schemas/{}", t.as_str()));
                assert_eq!(schema["title"], t.as_str());
                assert_eq!(schema["type"], "object");
                assert_eq!(schema["additionalProperties"], false);
                let properties = schema["properties"].as_object().unwrap();
                let names: Vec<&str> = properties.keys().map(String::as_str).collect();
                let mut envelope = rules::ENVELOPE_MEMBERS.to_vec();
                envelope.sort_unstable();
                assert_eq!(names, envelope, "{t:?}");
                assert_eq!(properties["eventType"]["enum"], json!([t.as_str()]));
                let required = schema["required"].as_array().unwrap();
                assert!(required.contains(&json!("playerTime")));
                assert!(required.contains(&json!("eventType")));
                let spec = rules::event_spec(t);
                assert_eq!(
                    required.contains(&json!("params")),
                    spec.requires_params(),
                    "{t:?}"
                );
                assert_eq!(
                    properties["customMetadata"]
                        .get("patternProperties")
                        .is_some(),
                    t.allows_custom_metadata()
                );
                let params = &properties["params"];
                for p in spec.param_list() {
                    assert_eq!(params["properties"][p.key]["type"], p.ty.json_type());
                }
                let closed =
                    params["additionalProperties"] == false || params["maxProperties"] == 0;
                assert_eq!(
                    closed,
                    policies.unknown_params == UnknownParams::Reject || spec.params.is_none(),
                    "{t:?}"
                );
            }
        }
        let ss = schema_for(EventType::SessionStart, &Policies::default());
        let params = &ss["properties"]["params"];
        assert_eq!(params["required"].as_array().unwrap().len(), 8);
        assert_eq!(
            params["properties"]["media.length"],
            json!({"type": "number", "minimum": 0})
        );
        assert_eq!(
            params["properties"]["visitor.customerIDs"]["additionalProperties"]["properties"]
                ["authState"],
            json!({"type": "integer", "enum": [0, 1, 2]})
        );
        let su = schema_for(EventType::StatesUpdate, &Policies::default());
        assert_eq!(
            su["properties"]["params"]["properties"]["statesStart"]["items"]["properties"]
                ["media.state.name"]["pattern"],
            rules::STATE_NAME_PATTERN
        );
        let error = |p: &Policies| schema_for(EventType::Error, p)["properties"]["params"].clone();
        assert!(error(&Policies::default())["properties"]["media.errorSource"]["enum"].is_array());
        assert_eq!(error(&policy_sets()[1])["maxProperties"], 0);
    }

    #[test]
    fn every_valid_fixture_validates_against_its_schema() {
        let valid = fixtures(&["vod", "live", "resume"]);
        assert_eq!(valid.len(), 44);
        let mut bodies: Vec<(String, Value)> = valid;
        for (name, batch) in fixtures(&["downloaded"]) {
            for (i, event) in batch.as_array().unwrap().iter().enumerate() {
                bodies.push((format!("{name}/{i}"), event.clone()));
            }
        }
        for name in ["session-start.json", "ping.json"] {
            let path =
                concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/").to_owned() + name;
            let body = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            bodies.push((name.into(), body));
        }
        for (name, body) in &bodies {
            let errors = errors_of(type_of(body), &Policies::default(), body);
            assert!(errors.is_empty(), "{name}: {errors:?}");
        }
        // statesUpdate, with the feature on, against a body the validator accepts.
        let su = json!({
            "playerTime": {"playhead": 1, "ts": 2},
            "eventType": "statesUpdate",
            "params": {"statesStart": [{"media.state.name": "mute"}], "statesEnd": []},
        });
        let on = &policy_sets()[1];
        let text = su.to_string();
        assert!(check(Endpoint::Events, text.as_bytes(), on, 0).is_valid());
        assert_eq!(
            errors_of(EventType::StatesUpdate, on, &su),
            Vec::<String>::new()
        );
        let empty = json!({"playerTime": {"playhead": 1, "ts": 2}, "eventType": "statesUpdate",
            "params": {"statesStart": [], "statesEnd": []}});
        assert!(!errors_of(EventType::StatesUpdate, on, &empty).is_empty());
    }

    #[test]
    fn invalid_fixtures_do_not_validate() {
        // The cases a schema can express (x05, x14, x27: endpoint rules; x15: not JSON;
        // x36-x38: batch rules).
        let invalid = fixtures(&["invalid"]);
        let expressible = [
            "x01", "x02", "x03", "x04", "x06", "x07", "x08", "x09", "x10", "x11", "x12", "x13",
            "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x28", "x39",
        ];
        let mut seen = 0;
        for (name, body) in &invalid {
            let id = &name["invalid/".len().."invalid/".len() + 3];
            if expressible.contains(&id) {
                seen += 1;
                let errors = errors_of(type_of(body), &Policies::default(), body);
                assert!(!errors.is_empty(), "{name} validates");
            }
            if ["x25", "x26"].contains(&id) {
                // Not an event type: no schema takes it.
                for t in EventType::ALL {
                    assert!(
                        !errors_of(t, &Policies::default(), body).is_empty(),
                        "{name}"
                    );
                }
            }
        }
        assert_eq!(seen, expressible.len());
        // Unknown params are fine under `allow`, as for the validator.
        let x11 = &invalid.iter().find(|(n, _)| n.contains("x11")).unwrap().1;
        assert!(errors_of(EventType::SessionStart, &policy_sets()[1], x11).is_empty());
    }
}
