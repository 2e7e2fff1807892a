//! What `dbrt-convert` says when the input or output is wrong, and the progress bar's length.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dbrt_convert::{ConvertOptions, Progress, StorageType};

fn tiny(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/tiny")
        .join(name)
}

fn convert_cli(input: &Path, output: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dbrt-convert"))
        .arg(input)
        .arg("-o")
        .arg(output)
        .arg("-q")
        .output()
        .unwrap()
}

fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "succeeded: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_missing_input_is_said_not_to_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-model");
    let e = failed(&convert_cli(&missing, &dir.path().join("m.dbrt")));
    assert!(
        e.contains(&format!("{} does not exist", missing.display())),
        "{e}"
    );
    assert!(
        !e.contains("cannot read") && !e.contains("expected a"),
        "{e}"
    );
    // Something that is there but of the wrong kind is still called that.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "x").unwrap();
    let e = failed(&convert_cli(&text, &dir.path().join("m.dbrt")));
    assert!(
        e.contains("expected a Hugging Face model directory or an .onnx file"),
        "{e}"
    );
}

#[test]
fn an_unwritable_output_is_reported_as_not_written_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = tiny("v3-style");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    // A directory, a path under a regular file, a path in a missing directory.
    for (out, why) in [
        (dir.path().to_path_buf(), "it is a directory"),
        (file.join("m.dbrt"), "Not a directory"),
        (dir.path().join("missing/m.dbrt"), "No such file"),
    ] {
        let e = failed(&convert_cli(&input, &out));
        assert!(
            e.contains(&format!("cannot write {}: {why}", out.display())),
            "{}: {e}",
            out.display()
        );
        assert!(!e.contains("cannot read"), "{e}");
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

/// Counts steps against the length it was given.
#[derive(Default)]
struct Count {
    total: usize,
    steps: usize,
}

impl Progress for Count {
    fn start(&mut self, total: usize) {
        self.total = total;
    }
    fn step(&mut self, _: &str) {
        self.steps += 1;
    }
}

#[test]
fn the_progress_bar_ends_at_its_length() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.dbrt");
    for name in ["v3-style", "v2-absolute-pos", "separate-pos-proj"] {
        for (storage, int4) in [
            (StorageType::F32, false),
            (StorageType::Int8, false),
            (StorageType::Int8, true),
        ] {
            let opts = ConvertOptions {
                storage,
                int4_embeddings: int4,
                ..Default::default()
            };
            let mut c = Count::default();
            dbrt_convert::convert(&tiny(name), &out, &opts, &mut c).unwrap();
            assert!(c.total > 0, "{name}");
            assert_eq!(c.steps, c.total, "{name} {storage:?} int4 {int4}");
        }
    }
}
