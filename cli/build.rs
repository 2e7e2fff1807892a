//! Names the commit `dbrt` was built from, so that a `dbrt bench` record pasted into an issue
//! says which code measured it: `DBRT_VERSION` is the crate version, with the short git hash
//! when the source is a git checkout (a packaged crate has the version only).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let hash = git(&["rev-parse", "--short=10", "HEAD"]);
    println!(
        "cargo:rustc-env=DBRT_VERSION={}",
        match &hash {
            Some(h) => format!("{version} ({h})"),
            None => version,
        }
    );
    // Rebuilt when HEAD moves: HEAD itself (a checkout), the branch it points at (a commit).
    println!("cargo:rerun-if-changed=build.rs");
    if hash.is_some() {
        for path in [
            Some("HEAD".to_string()),
            git(&["symbolic-ref", "-q", "HEAD"]),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(file) = git(&["rev-parse", "--path-format=absolute", "--git-path", &path]) {
                println!("cargo:rerun-if-changed={file}");
            }
        }
    }
}
