//! What the emulator takes from a body [`mcapi::check`] accepted: its event objects (as JSON
//! text, to be recorded) and their types (to notice `sessionEnd`), and whether it was one object
//! or a batch.
//!
//! The parsed [`Document`] of the check is used when present. When the check returned no
//! document, the body is split here with the same borrowed JSON view ([`json`]), so
//! the emulator never records a body it cannot read as an object or an array of objects.
//!
//! [`mcapi::check`]: mcapi::check

use json::{self, Kind, Object};
use mcapi::{Checked, Document, EventType};

/// One event object of a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The object's JSON text, as received.
    pub text: String,
    pub event_type: Option<EventType>,
}

/// A body's events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Events {
    /// True when the body was an array.
    pub batch: bool,
    pub events: Vec<Received>,
}

impl Events {
    /// Whether one of the events is a `sessionEnd`.
    pub fn ends_session(&self) -> bool {
        self.events
            .iter()
            .any(|e| e.event_type == Some(EventType::SessionEnd))
    }

    pub fn into_texts(self) -> Vec<String> {
        self.events.into_iter().map(|e| e.text).collect()
    }
}

/// The events of a checked body, or `None` when it holds no event object.
pub fn events_of(checked: &Checked<'_>, body: &[u8]) -> Option<Events> {
    let events = match &checked.document {
        Some(doc) => Events {
            batch: matches!(doc, Document::Batch(_)),
            events: doc
                .events()
                .iter()
                .map(|e| Received {
                    text: e.object.raw.get().to_owned(),
                    event_type: e.event_type,
                })
                .collect(),
        },
        None => split(body)?,
    };
    (!events.events.is_empty()).then_some(events)
}

fn split(body: &[u8]) -> Option<Events> {
    let raw = json::parse_body(body).ok()?;
    let (batch, objects) = match Kind::of(raw) {
        Kind::Object => (false, vec![Object::parse(raw)?]),
        Kind::Array => (
            true,
            json::parse_array(raw)?
                .into_iter()
                .filter_map(Object::parse)
                .collect(),
        ),
        _ => return None,
    };
    let events = objects
        .iter()
        .map(|o| Received {
            text: o.raw.get().to_owned(),
            event_type: o
                .get("eventType")
                .and_then(json::as_str)
                .and_then(|t| EventType::parse(&t)),
        })
        .collect();
    Some(Events { batch, events })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unchecked(body: &[u8]) -> Checked<'_> {
        Checked {
            text: std::str::from_utf8(body).unwrap_or(""),
            document: None,
            violations: Vec::new(),
            omitted: Vec::new(),
        }
    }

    #[test]
    fn splits_one_object() {
        let body = br#" {"eventType":"sessionEnd","playerTime":{"playhead":1,"ts":2}} "#;
        let e = events_of(&unchecked(body), body).unwrap();
        assert!(!e.batch);
        assert!(e.ends_session());
        assert_eq!(
            e.into_texts(),
            [r#"{"eventType":"sessionEnd","playerTime":{"playhead":1,"ts":2}}"#]
        );
    }

    #[test]
    fn splits_a_batch_keeping_order() {
        let body = br#"[{"eventType":"sessionStart"},{"eventType":"play"},{"eventType":"x"}]"#;
        let e = events_of(&unchecked(body), body).unwrap();
        assert!(e.batch);
        let types: Vec<_> = e.events.iter().map(|e| e.event_type).collect();
        assert_eq!(
            types,
            [Some(EventType::SessionStart), Some(EventType::Play), None]
        );
        assert!(!e.ends_session());
    }

    #[test]
    fn uses_the_checked_document_when_present() {
        let body = br#"{"eventType":"ping"}"#;
        let text = std::str::from_utf8(body).unwrap();
        let raw: &serde_json::value::RawValue = serde_json::from_str(text).unwrap();
        let event = mcapi::Event {
            index: 0,
            object: Object::parse(raw).unwrap(),
            event_type: Some(EventType::Ping),
            params: None,
            custom_metadata: None,
            player_time: None,
        };
        let checked = Checked {
            text,
            document: Some(Document::Single(event)),
            violations: Vec::new(),
            omitted: Vec::new(),
        };
        let e = events_of(&checked, b"ignored").unwrap();
        assert_eq!(e.events[0].event_type, Some(EventType::Ping));
        assert_eq!(e.events[0].text, text);
    }

    #[test]
    fn non_event_bodies_have_no_events() {
        for body in [&b"nope"[..], b"", b"[]", b"[1, 2]", b"42", b"\xff"] {
            assert!(events_of(&unchecked(body), body).is_none(), "{body:?}");
        }
    }
}
