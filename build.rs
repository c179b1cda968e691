//! Build metadata: the git commit the binary is built from, for `mediagate --version` and the
//! `commit` label of `mediagate_build_info`. `unknown` when the source is not a git checkout (a
//! release tarball) or git is missing; `MEDIAGATE_COMMIT` set in the environment wins (a
//! container build that copies no `.git`).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=MEDIAGATE_COMMIT");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let commit = std::env::var("MEDIAGATE_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            let text = String::from_utf8(out.stdout).ok()?;
            let text = text.trim();
            (out.status.success() && !text.is_empty()).then(|| text.to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=MEDIAGATE_COMMIT={commit}");
}
