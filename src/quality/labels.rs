//! Bounded label values for players and SDKs (`[quality] max_label_values`): a value is
//! normalised (lower-case, `[a-z0-9._-]` with anything else as `_`, at most 40 characters,
//! `unknown` when empty), and gets a label of its own if it is on the allow-list or among the
//! first N distinct values seen; every later one is `other`. So a flood of random player names
//! adds at most N + 1 series. Labels are small numbers (`u16`, kept in each tracked session);
//! their names are looked up here.

use std::collections::HashMap;
use std::sync::RwLock;

/// Characters kept in a label value.
const MAX_LEN: usize = 40;

/// The label of values beyond the bound.
pub const OTHER: u16 = 0;
/// The label of a missing or empty value.
pub const UNKNOWN: u16 = 1;

pub struct LabelSet {
    max: usize,
    inner: RwLock<Inner>,
}

struct Inner {
    names: Vec<String>,
    ids: HashMap<String, u16>,
    /// Values that got a label by being seen (not allow-listed).
    seen: usize,
}

/// `raw` as a label value.
pub fn normalise(raw: &str) -> String {
    let mut buf = [0u8; MAX_LEN];
    normalise_into(raw, &mut buf).to_owned()
}

/// [`normalise`] into `buf` (no allocation: a call's label is looked up without one).
fn normalise_into<'b>(raw: &str, buf: &'b mut [u8; MAX_LEN]) -> &'b str {
    let keep = |c: char| match c {
        'a'..='z' | '0'..='9' | '.' | '_' | '-' => c as u8,
        _ => b'_',
    };
    let raw = raw.trim();
    let mut len = 0;
    if raw.is_ascii() {
        // The usual case, without the per-character Unicode lower-casing.
        for &b in raw.as_bytes().iter().take(MAX_LEN) {
            buf[len] = keep(char::from(b.to_ascii_lowercase()));
            len += 1;
        }
    } else {
        for c in raw.chars().flat_map(char::to_lowercase).take(MAX_LEN) {
            buf[len] = keep(c);
            len += 1;
        }
    }
    // Only ASCII was written.
    match std::str::from_utf8(&buf[..len]) {
        Ok("") | Err(_) => "unknown",
        Ok(name) => name,
    }
}

impl LabelSet {
    /// At most `max` values seen get a label, besides `allow` (normalised) and the two fixed ones.
    pub fn new(max: usize, allow: &[String]) -> LabelSet {
        let mut inner = Inner {
            names: vec!["other".to_owned(), "unknown".to_owned()],
            ids: HashMap::new(),
            seen: 0,
        };
        inner.ids.insert("other".to_owned(), OTHER);
        inner.ids.insert("unknown".to_owned(), UNKNOWN);
        for a in allow {
            let name = normalise(a);
            if !inner.ids.contains_key(&name) && inner.names.len() < usize::from(u16::MAX) {
                inner.ids.insert(name.clone(), inner.names.len() as u16);
                inner.names.push(name);
            }
        }
        LabelSet {
            max,
            inner: RwLock::new(inner),
        }
    }

    /// The label of `raw` (`None`: missing), giving it one while the bound allows.
    pub fn label(&self, raw: Option<&str>) -> u16 {
        let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
            return UNKNOWN;
        };
        let mut buf = [0u8; MAX_LEN];
        let name = normalise_into(raw, &mut buf);
        if let Some(id) = self.read().ids.get(name) {
            return *id;
        }
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = inner.ids.get(name) {
            return *id;
        }
        if inner.seen >= self.max || inner.names.len() >= usize::from(u16::MAX) {
            return OTHER;
        }
        let name = name.to_owned();
        let id = inner.names.len() as u16;
        inner.seen += 1;
        inner.ids.insert(name.clone(), id);
        inner.names.push(name);
        id
    }

    /// The name of label `id` (`other` for an id this set never gave).
    pub fn name(&self, id: u16) -> String {
        self.read()
            .names
            .get(usize::from(id))
            .cloned()
            .unwrap_or_else(|| "other".to_owned())
    }

    /// How many label values exist (the fixed ones included).
    pub fn len(&self) -> usize {
        self.read().names.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// The SDK label of a `sessionStart`: the library's family and major version
/// (`media.libraryVersion` `js-3.1.0` → `js-3`), else `media.sdkVersion` cut to its first two
/// dot-separated parts (`2.4.1-beta` → `2.4`), else none.
pub fn sdk_of(library_version: Option<&str>, sdk_version: Option<&str>) -> Option<String> {
    if let Some(lib) = library_version.map(str::trim).filter(|v| !v.is_empty()) {
        // `<family>-<major>...` or `<family><major>...`
        let split = lib.find(|c: char| c.is_ascii_digit());
        if let Some(at) = split.filter(|at| *at > 0) {
            let family = lib[..at].trim_end_matches(['-', '_', '.', ' ']);
            let major: String = lib[at..].chars().take_while(char::is_ascii_digit).collect();
            if !family.is_empty() {
                return Some(format!("{family}-{major}"));
            }
        }
        return Some(lib.to_owned());
    }
    let sdk = sdk_version.map(str::trim).filter(|v| !v.is_empty())?;
    let mut parts = sdk.split('.');
    let first = parts.next().unwrap_or_default();
    Some(match parts.next() {
        Some(second) => {
            let second: String = second
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            format!("{first}.{second}")
        }
        None => first.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_thousand_random_names_add_at_most_n_plus_one_values() {
        let n = 50;
        let set = LabelSet::new(n, &["Acme Player".to_owned()]);
        let acme = set.label(Some("acme player"));
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut distinct = std::collections::HashSet::new();
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = set.label(Some(&format!("player-{x:x} \u{1F600}")));
            distinct.insert(id);
        }
        // The first N got labels of their own, every later one is `other`.
        assert_eq!(distinct.len(), n + 1, "{}", distinct.len());
        assert!(distinct.contains(&OTHER));
        // Allow-listed values keep theirs whatever came first.
        assert_eq!(set.label(Some("ACME PLAYER")), acme);
        assert_ne!(acme, OTHER);
        assert_eq!(set.len(), 2 + 1 + n);
    }

    #[test]
    fn values_are_normalised_and_missing_ones_unknown() {
        assert_eq!(
            normalise("  My Player/2.0 <script>"),
            "my_player_2.0__script_"
        );
        assert_eq!(normalise(&"x".repeat(100)).len(), MAX_LEN);
        assert_eq!(normalise(""), "unknown");
        let set = LabelSet::new(5, &[]);
        assert_eq!(set.label(None), UNKNOWN);
        assert_eq!(set.label(Some("  ")), UNKNOWN);
        let a = set.label(Some("Web Player"));
        assert_eq!(set.label(Some("web player")), a);
        assert_eq!(set.name(a), "web_player");
        assert_eq!(set.name(999), "other");
    }

    #[test]
    fn the_sdk_is_its_family_and_major_version() {
        assert_eq!(sdk_of(Some("js-3.1.0"), Some("app-9")), Some("js-3".into()));
        assert_eq!(sdk_of(Some("android3.2"), None), Some("android-3".into()));
        assert_eq!(sdk_of(None, Some("2.4.1-beta")), Some("2.4".into()));
        assert_eq!(sdk_of(None, Some("7")), Some("7".into()));
        assert_eq!(sdk_of(Some(" "), None), None);
        assert_eq!(sdk_of(None, None), None);
    }
}
