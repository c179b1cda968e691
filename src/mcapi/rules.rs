//! STUB — replaced by the rule table.
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    Json,
    BodyKind,
}

impl Rule {
    pub const ALL: &'static [Rule] = &[Rule::Json, Rule::BodyKind];
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Json => "json",
            Rule::BodyKind => "body_kind",
        }
    }
}
