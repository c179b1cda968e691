//! A bounded user-agent family for `${ua_family}`: the first matching marker of a table wins.
//! The families are few on purpose (they become report values and may become labels).

/// `(marker found in the User-Agent, family)`, most specific first.
const FAMILIES: &[(&str, &str)] = &[
    ("AppleTV", "appletv"),
    ("tvOS", "appletv"),
    ("Roku", "roku"),
    ("AFT", "firetv"),
    ("Tizen", "smarttv"),
    ("Web0S", "smarttv"),
    ("webOS", "smarttv"),
    ("SMART-TV", "smarttv"),
    ("SmartTV", "smarttv"),
    ("CrKey", "chromecast"),
    ("PlayStation", "console"),
    ("Xbox", "console"),
    ("Edg/", "edge"),
    ("OPR/", "opera"),
    ("SamsungBrowser/", "samsung"),
    ("Firefox/", "firefox"),
    ("Chrome/", "chrome"),
    ("CriOS/", "chrome"),
    ("Dalvik/", "android_app"),
    ("okhttp/", "android_app"),
    ("CFNetwork/", "ios_app"),
    ("Safari/", "safari"),
];

/// The family of a User-Agent value; `other` when nothing matches, `unknown` when absent.
pub fn family(user_agent: Option<&str>) -> &'static str {
    let Some(ua) = user_agent else {
        return "unknown";
    };
    FAMILIES
        .iter()
        .find(|(marker, _)| ua.contains(marker))
        .map_or("other", |(_, family)| family)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_agents() {
        let cases = [
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36", "chrome"),
            ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36 Edg/130.0", "edge"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15", "safari"),
            ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "firefox"),
            ("Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8)", "android_app"),
            ("AcmePlayer/4.2 CFNetwork/1494.0.7 Darwin/23.4.0", "ios_app"),
            ("Mozilla/5.0 (SMART-TV; Linux; Tizen 7.0) AppleWebKit/537.36 (KHTML, like Gecko) 76.0 TV Safari/537.36", "smarttv"),
            ("curl/8.5.0", "other"),
        ];
        for (ua, expected) in cases {
            assert_eq!(family(Some(ua)), expected, "{ua}");
        }
        assert_eq!(family(None), "unknown");
    }
}
