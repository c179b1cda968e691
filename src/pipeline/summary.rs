//! What the session tracker learns from a checked body, read from the document the validator
//! already split (no second parse): each event as a protocol-neutral [`Observation`] (kind,
//! player clock, playhead, state), and for a session start what the tracker keeps ([`Start`]).
//! The Media Collection API's event types are mapped onto the tracker's kinds here and only
//! here. Pure.

use mcapi::{Document, Event, EventType};
use sessions::observation::state_hash;
use sessions::{Content, Kind, Observation, Start};

/// What one body tells the tracker.
#[derive(Debug, Default, PartialEq)]
pub struct Summary {
    /// The session start, when the body is one.
    pub start: Option<Start>,
    /// Every event, in body order (a `statesUpdate` gives one per state it ends or starts).
    pub observations: Vec<Observation>,
}

/// The tracker's kind of an event type.
pub fn kind_of(t: Option<EventType>) -> Kind {
    match t {
        Some(EventType::SessionStart) => Kind::Start,
        Some(EventType::Play) => Kind::Play,
        Some(EventType::Ping) => Kind::Ping,
        Some(EventType::BufferStart) => Kind::BufferStart,
        Some(EventType::PauseStart) => Kind::PauseStart,
        Some(EventType::AdBreakStart) => Kind::AdBreakStart,
        Some(EventType::AdStart) => Kind::AdStart,
        Some(EventType::AdComplete) => Kind::AdComplete,
        Some(EventType::AdSkip) => Kind::AdSkip,
        Some(EventType::AdBreakComplete) => Kind::AdBreakComplete,
        Some(EventType::ChapterStart) => Kind::ChapterStart,
        Some(EventType::ChapterComplete) => Kind::ChapterComplete,
        Some(EventType::ChapterSkip) => Kind::ChapterSkip,
        Some(EventType::StateStart) => Kind::StateStart,
        Some(EventType::StateEnd) => Kind::StateEnd,
        Some(EventType::SessionComplete) => Kind::Complete,
        Some(EventType::SessionEnd) => Kind::End,
        Some(EventType::BitrateChange | EventType::Error | EventType::StatesUpdate) | None => {
            Kind::Other
        }
    }
}

/// The summary of `doc`'s events.
pub fn summarize(doc: &Document<'_>) -> Summary {
    let mut out = Summary::default();
    for event in doc.events() {
        let ts = event.ts().unwrap_or(0);
        let playhead = event.playhead().unwrap_or(f64::NAN);
        let observation = |kind, state| Observation {
            kind,
            ts,
            playhead,
            state,
        };
        match event.event_type {
            Some(EventType::SessionStart) => {
                out.start = Some(Start {
                    ts,
                    playhead,
                    content: event
                        .param_str("media.contentType")
                        .map_or(Content::Other, |c| Content::of(&c)),
                    length: event.param_f64("media.length"),
                    player: 0,
                    sdk: 0,
                });
            }
            Some(EventType::StateStart | EventType::StateEnd) => {
                let state = event
                    .param_str("media.state.name")
                    .map_or(0, |name| state_hash(&name));
                out.observations
                    .push(observation(kind_of(event.event_type), state));
            }
            Some(EventType::StatesUpdate) => {
                for (list, kind) in [
                    ("statesEnd", Kind::StateEnd),
                    ("statesStart", Kind::StateStart),
                ] {
                    for name in state_names(event, list) {
                        out.observations.push(observation(kind, state_hash(&name)));
                    }
                }
            }
            t => out.observations.push(observation(kind_of(t), 0)),
        }
    }
    out
}

/// The names in a `statesUpdate` list (`[{"media.state.name": ...}]`).
fn state_names(event: &Event<'_>, list: &str) -> Vec<String> {
    let Some(raw) = event.params.as_ref().and_then(|p| p.get(list)) else {
        return Vec::new();
    };
    json::parse_array(raw)
        .unwrap_or_default()
        .into_iter()
        .filter_map(json::Object::parse)
        .filter_map(|o| o.get("media.state.name").and_then(json::as_str))
        .map(|name| name.into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary_of(body: &str) -> Summary {
        let checked = mcapi::check(
            mcapi::Endpoint::Events,
            body.as_bytes(),
            &mcapi::Policies {
                states_update: true,
                ..Default::default()
            },
            1_768_507_245_000,
        );
        summarize(checked.document.as_ref().expect("a document"))
    }

    #[test]
    fn events_become_observations_and_a_start_keeps_content_and_length() {
        let s = summary_of(
            r#"{"eventType":"adStart","playerTime":{"playhead":12.5,"ts":1768507245000},"params":{"media.ad.podFriendlyName":"x","media.ad.name":"a","media.ad.id":"1","media.ad.length":15,"media.ad.podPosition":1}}"#,
        );
        assert_eq!(s.start, None);
        assert_eq!(s.observations.len(), 1);
        assert_eq!(s.observations[0].kind, Kind::AdStart);
        assert_eq!(s.observations[0].ts, 1_768_507_245_000);
        assert_eq!(s.observations[0].playhead, 12.5);

        let checked = mcapi::check(
            mcapi::Endpoint::Sessions,
            include_bytes!("../../tests/fixtures/session-start.json"),
            &mcapi::Policies::default(),
            1_768_507_245_000,
        );
        let s = summarize(checked.document.as_ref().expect("a document"));
        let start = s.start.expect("a start");
        assert_eq!(start.content, Content::Vod);
        assert!(start.length.is_some_and(|l| l > 0.0));
        assert!(s.observations.is_empty());
    }

    #[test]
    fn a_states_update_ends_then_starts_each_state() {
        let s = summary_of(
            r#"{"eventType":"statesUpdate","playerTime":{"playhead":0,"ts":1768507245000},"params":{"statesEnd":[{"media.state.name":"mute"}],"statesStart":[{"media.state.name":"fullScreen"},{"media.state.name":"pictureInPicture"}]}}"#,
        );
        let kinds: Vec<(Kind, u32)> = s.observations.iter().map(|o| (o.kind, o.state)).collect();
        assert_eq!(
            kinds,
            [
                (Kind::StateEnd, state_hash("mute")),
                (Kind::StateStart, state_hash("fullScreen")),
                (Kind::StateStart, state_hash("pictureInPicture")),
            ]
        );
    }
}
