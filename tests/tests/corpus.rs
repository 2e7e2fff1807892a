//! The robustness corpus (tests/corpus/, fuzz/README.md): crafted files for every defect class
//! of the hardening work and every fuzz finding, each run as an app would run it. An entry
//! passes when every step returns `Ok` or a typed error; it fails on a panic, an abort (an
//! allocation failure cannot be caught), a hang, or, for converter inputs, a converted file
//! that cannot be used.
//!
//! Each entry runs in a child process (this test binary again, `corpus_child`, under a 2 GiB
//! address-space limit) so that one abort does not hide the others; the parent lists every
//! entry that failed and how.
//!
//! Kinds of entry:
//! - `model/*` (`.dbrt` files, named without the extension): opened from bytes, then a session with default options and one with
//!   `max_sequence_length` 8, each running classify on a pair and on a text, logits on ids,
//!   and logits again (the session must still work after an error).
//! - `convert/<name>/`: files laid over a copy of the tiny fixture named in `<name>/base` (with
//!   `tests/corpus/tiny-tokenizer.json` as tokenizer.json), then converted: a conversion that
//!   succeeds must give a file that opens and classifies a short pair to finite probabilities.
//! - `text/*`: the tokenizer fuzz target's input (first byte: where a pair splits, 0 = one
//!   text) through a session's byte-level tokenizer; valid UTF-8 is also compared with the
//!   `tokenizers` crate on the tiny tokenizer.
//!
//! `DBRT_MAKE_CORPUS=1` rewrites the crafted entries (scripts/make-fuzz-corpus.sh); otherwise
//! `crafted_entries_are_up_to_date` checks that the committed ones are what the builder makes.

#[path = "corpus/make.rs"]
mod make;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dbrt::{Model, Sequence, Session, SessionOptions};
use dbrt_tests::*;

const ENTRY_ENV: &str = "DBRT_CORPUS_ENTRY";
const PER_ENTRY: Duration = Duration::from_secs(120);

fn corpus_dir() -> PathBuf {
    workspace_root().join("tests/corpus")
}

fn entries() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for kind in ["model", "convert", "text"] {
        let d = corpus_dir().join(kind);
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut e: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).collect();
        e.sort();
        v.extend(e);
    }
    v
}

fn summary(r: dbrt::Result<Vec<f32>>) -> String {
    match r {
        Ok(p) if p.iter().all(|x| x.is_finite()) => format!("Ok({} finite)", p.len()),
        Ok(p) => format!("Ok(NON-FINITE {p:?})"),
        Err(e) => format!("Err({e})"),
    }
}

fn run_model(bytes: &[u8]) -> Result<(), String> {
    let file = match dbrt::format::ModelFile::from_bytes_copied(bytes) {
        Ok(f) => f,
        Err(e) => return Err(format!("refused by the reader: {e}")),
    };
    let model = Arc::new(Model::from_file(file).map_err(|e| format!("refused at open: {e}"))?);
    let mut outcome = Vec::new();
    for opts in [
        SessionOptions::default(),
        SessionOptions {
            max_sequence_length: Some(8.min(model.max_sequence_length())),
            ..Default::default()
        },
    ] {
        let mut s = match Session::new(model.clone(), opts) {
            Ok(s) => s,
            Err(e) => {
                outcome.push(format!("session: {e}"));
                continue;
            }
        };
        // [MASK] is the tiny tokenizer's added token.
        let r = s.classify("A man plays a [MASK].", Some("A person makes music."));
        outcome.push(format!("classify pair: {}", summary(r)));
        let r = s.classify("naïve café", None);
        outcome.push(format!("classify: {}", summary(r)));
        for ids in [&[1u32, 10, 2][..], &[1, 5, 6, 7, 2]] {
            let r = s
                .run_logits(Sequence {
                    ids,
                    type_ids: None,
                })
                .map(|l| l.len());
            outcome.push(format!("logits: {r:?}"));
        }
    }
    // Not a failure by itself: only a panic or an abort is. Printed for the parent's report.
    Err(outcome.join("; "))
}

fn run_convert(dir: &Path) -> Result<(), String> {
    let base = std::fs::read_to_string(dir.join("base")).map_err(|e| format!("base: {e}"))?;
    let work = tempfile::tempdir().unwrap();
    let fixture = fixtures().join("tiny").join(base.trim());
    for e in std::fs::read_dir(&fixture).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, work.path().join(p.file_name().unwrap())).unwrap();
    }
    std::fs::copy(
        corpus_dir().join("tiny-tokenizer.json"),
        work.path().join("tokenizer.json"),
    )
    .unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap() != "base" {
            std::fs::copy(&p, work.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    let out = work.path().join("out.dbrt");
    let opts = dbrt_convert::ConvertOptions::default();
    if let Err(e) = dbrt_convert::convert(work.path(), &out, &opts, &mut ()) {
        return Err(format!("refused by the converter: {e}"));
    }
    let model = Model::open(&out).map_err(|e| format!("UNUSABLE: converted, then refused: {e}"))?;
    let model = Arc::new(model);
    let mut s = Session::new(model, Default::default())
        .map_err(|e| format!("UNUSABLE: converted, but no session: {e}"))?;
    let p = s
        .classify("A man plays a guitar.", Some("A person makes music."))
        .map_err(|e| format!("UNUSABLE: converted, but classify fails: {e}"))?;
    if !p.iter().all(|x| x.is_finite()) {
        return Err(format!("UNUSABLE: converted, but classify gives {p:?}"));
    }
    Ok(())
}

fn run_text(data: &[u8]) -> Result<(), String> {
    let (a, b) = match data.split_first() {
        Some((&k, rest)) if k != 0 && !rest.is_empty() => {
            let at = k as usize % rest.len();
            (&rest[..at], Some(&rest[at..]))
        }
        Some((_, rest)) => (rest, None),
        None => (data, None),
    };
    let tok = std::fs::read(corpus_dir().join("tiny-tokenizer.json")).unwrap();
    let pair = TokenizerPair::from_json(&tok, 64);
    let (_d, path) = make::tiny_model(dbrt_convert::StorageType::Int8);
    let model = open(&path);
    let opts = SessionOptions {
        max_sequence_length: Some(64),
        ..Default::default()
    };
    let mut s = Session::new(model, opts).unwrap();
    let r = s.tokenize_bytes(a, b).map(|(ids, _)| ids.to_vec());
    if let (Ok(a), Ok(b)) = (
        std::str::from_utf8(a),
        b.map(std::str::from_utf8).transpose(),
    ) {
        let theirs = pair.theirs(a, b);
        // The tokenizer on its own (Tokenizer::encode) and through a session.
        if let Ok(direct) = pair.compiled.encode(pair.file.bytes(), a, b) {
            if direct.ids != theirs.ids {
                return Err(format!(
                    "WRONG: Tokenizer::encode ids differ from tokenizers: {:?} vs {:?}",
                    direct.ids, theirs.ids
                ));
            }
        }
        if let Ok(ours) = &r {
            if *ours != theirs.ids {
                return Err(format!(
                    "WRONG: ids differ from tokenizers: {ours:?} vs {:?}",
                    theirs.ids
                ));
            }
        }
    }
    r.map(|_| ()).map_err(|e| format!("typed error: {e}"))
}

/// Runs the entry named by `DBRT_CORPUS_ENTRY` (in the child process).
#[test]
#[ignore = "run by `corpus` in a child process, one entry each"]
fn corpus_child() {
    let path = PathBuf::from(std::env::var_os(ENTRY_ENV).expect("DBRT_CORPUS_ENTRY"));
    let kind = path
        .parent()
        .and_then(|p| p.file_name())
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let r = std::panic::catch_unwind(|| match kind.as_str() {
        "model" => run_model(&std::fs::read(&path).unwrap()),
        "convert" => run_convert(&path),
        "text" => run_text(&std::fs::read(&path).unwrap()),
        k => panic!("unknown corpus kind {k}"),
    });
    match r {
        Ok(Ok(())) => println!("CORPUS-RESULT ok"),
        Ok(Err(m)) if m.starts_with("UNUSABLE") || m.starts_with("WRONG") => {
            println!("CORPUS-RESULT {m}");
            std::process::exit(3);
        }
        Ok(Err(m)) => println!("CORPUS-RESULT ok ({m})"),
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            println!("CORPUS-RESULT PANIC: {what}");
            std::process::exit(2);
        }
    }
}

/// Every entry, each in its own child process; fails listing the entries that panicked,
/// aborted, hung, or gave an unusable conversion.
#[test]
fn corpus() {
    let exe = std::env::current_exe().unwrap();
    let entries = entries();
    assert!(
        entries.len() >= 20,
        "{} corpus entries: run scripts/make-fuzz-corpus.sh",
        entries.len()
    );
    let mut failures = Vec::new();
    for e in &entries {
        let name = e.strip_prefix(corpus_dir()).unwrap().display().to_string();
        // The address-space limit turns a runaway allocation into an abort instead of letting
        // it take the machine's memory.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("ulimit -v 2097152 2>/dev/null; exec \"$0\" --exact corpus_child --ignored --nocapture --test-threads=1")
            .arg(&exe)
            .env(ENTRY_ENV, e)
            .env("RUST_BACKTRACE", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if start.elapsed() > PER_ENTRY {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let result = stdout
            .lines()
            // libtest prints "test corpus_child ... " before the line.
            .find_map(|l| l.split_once("CORPUS-RESULT ").map(|(_, r)| r))
            .map(str::to_string);
        let took = start.elapsed().as_secs_f32();
        let verdict = match (status, result) {
            (None, _) => Err(format!("HANG: killed after {PER_ENTRY:?}")),
            (Some(s), Some(r)) if s.success() => Ok(r),
            (Some(_), Some(r)) => Err(r),
            (Some(s), None) => {
                let tail: Vec<&str> = stderr
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .rev()
                    .take(3)
                    .collect();
                Err(format!(
                    "ABORT: {s} ({})",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ))
            }
        };
        match verdict {
            Ok(r) => println!("corpus: {name}: {r} [{took:.2} s]"),
            Err(r) => {
                println!("corpus: {name}: FAILED: {r} [{took:.2} s]");
                failures.push(format!("{name}: {r}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus entries fail:\n  {}",
        failures.len(),
        entries.len(),
        failures.join("\n  ")
    );
}

/// The committed crafted entries are exactly what the builder makes from the fixtures
/// (`DBRT_MAKE_CORPUS=1` rewrites them instead).
#[test]
fn make_corpus() {
    let out = corpus_dir();
    if std::env::var_os("DBRT_MAKE_CORPUS").is_some() {
        let n = make::write_all(&out);
        println!("wrote {n} crafted entries under {}", out.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let n = make::write_all(tmp.path());
    let mut stale = Vec::new();
    for rel in make::list(tmp.path()) {
        let want = std::fs::read(tmp.path().join(&rel)).unwrap();
        match std::fs::read(out.join(&rel)) {
            Ok(have) if have == want => {}
            _ => stale.push(rel.display().to_string()),
        }
    }
    assert!(
        stale.is_empty(),
        "{} of {n} crafted corpus entries are missing or stale (run scripts/make-fuzz-corpus.sh): {stale:?}",
        stale.len()
    );
}
