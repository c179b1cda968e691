//! Headless Chromium (Debian's `chromium`, installed by `scripts/setup.sh test`) with a profile
//! of its own, nothing fetched but what the page asks for, and a virtual-time budget so that a
//! page's scripts finish before the DOM is read.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `chromium --headless` with `args` (e.g. `--dump-dom URL`) on the profile in `profile`.
pub fn chromium(profile: &Path, args: &[&str]) -> Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium runs (scripts/setup.sh test installs it)")
}
