//! Naming labels: `dbrt-convert --labels/--entailment-label` at conversion and
//! `dbrt-convert relabel` for a written file, run as the built binary on the tiny models; the
//! runtime's `Model::entailment_label` following the stored key.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use dbrt::format::ModelFile;
use dbrt::{Model, Sequence, Session};

fn tiny(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/tiny")
        .join(name)
}

fn convert_cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dbrt-convert"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "succeeded: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// v3-style (three labels) converted with `extra` arguments into `dir/name`.
fn converted(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let input = tiny("v3-style");
    let mut args = vec![input.to_str().unwrap(), "-o", out.to_str().unwrap(), "-q"];
    args.extend_from_slice(extra);
    ok(&convert_cli(&args));
    out
}

fn labels_of(path: &Path) -> (Vec<String>, Option<usize>) {
    let m = Model::open(path).unwrap();
    (m.labels().to_vec(), m.entailment_label())
}

fn names(l: &[&str]) -> Vec<String> {
    l.iter().map(|s| s.to_string()).collect()
}

/// The logits of a few id sequences.
fn logits(path: &Path) -> Vec<f32> {
    let model = Arc::new(Model::open(path).unwrap());
    let mut s = Session::new(model, Default::default()).unwrap();
    let mut all = Vec::new();
    for ids in [&[1u32, 5, 9, 2][..], &[1, 300, 7, 42, 17, 2, 8, 2]] {
        let l = s
            .run_logits(Sequence {
                ids,
                type_ids: None,
            })
            .unwrap();
        all.extend_from_slice(l);
    }
    all
}

#[test]
fn labels_and_the_entailment_label_are_named_at_conversion() {
    let dir = tempfile::tempdir().unwrap();
    let plain = converted(dir.path(), "plain.dbrt", &[]);
    assert_eq!(
        labels_of(&plain),
        (names(&["LABEL_0", "LABEL_1", "LABEL_2"]), None)
    );
    let named = converted(
        dir.path(),
        "named.dbrt",
        &["--labels", "no,maybe,yes", "--entailment-label", "yes"],
    );
    assert_eq!(labels_of(&named), (names(&["no", "maybe", "yes"]), Some(2)));
    // The stored label beats the by-name rule; `none` is stored as well.
    let stated = converted(
        dir.path(),
        "stated.dbrt",
        &["--labels", "entailment,b,c", "--entailment-label", "c"],
    );
    assert_eq!(labels_of(&stated).1, Some(2));
    let none = converted(
        dir.path(),
        "none.dbrt",
        &["--labels", "entailment,b,c", "--entailment-label", "none"],
    );
    assert_eq!(labels_of(&none).1, None);
    // Without the key, the name decides.
    let by_name = converted(dir.path(), "by-name.dbrt", &["--labels", "c,Entailment,b"]);
    assert_eq!(labels_of(&by_name).1, Some(1));
    assert_eq!(logits(&plain), logits(&named));
}

#[test]
fn a_wrong_label_count_or_entailment_name_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.dbrt");
    let input = tiny("v3-style");
    let run = |extra: &[&str]| {
        let mut args = vec![input.to_str().unwrap(), "-o", out.to_str().unwrap(), "-q"];
        args.extend_from_slice(extra);
        failed(&convert_cli(&args))
    };
    let e = run(&["--labels", "a,b"]);
    assert!(
        e.contains("--labels gives 2 names (a,b), the model has 3 labels"),
        "{e}"
    );
    let e = run(&["--labels", "a,b,a"]);
    assert!(e.contains("'a' is given twice"), "{e}");
    let e = run(&["--labels", "a,b,c", "--entailment-label", "entail"]);
    assert!(
        e.contains("--entailment-label 'entail' is not one of the labels (a,b,c)"),
        "{e}"
    );
    let e = run(&["--entailment-label", "yes"]);
    assert!(e.contains("(LABEL_0,LABEL_1,LABEL_2)"), "{e}");
    assert!(!out.exists());
}

#[test]
fn relabel_in_place_changes_the_labels_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let path = converted(dir.path(), "m.dbrt", &["--dtype", "int8"]);
    let before = logits(&path);
    let bytes_before = std::fs::read(&path).unwrap();
    let e = ok(&convert_cli(&[
        "relabel",
        path.to_str().unwrap(),
        "--labels",
        "contradiction,neutral,entailment",
    ]));
    assert!(e.contains("entailment label entailment (index 2)"), "{e}");
    assert_eq!(
        labels_of(&path),
        (names(&["contradiction", "neutral", "entailment"]), Some(2))
    );
    assert_eq!(logits(&path), before);
    // Every tensor record as stored, every other metadata entry as it was.
    let old = ModelFile::from_bytes_copied(&bytes_before).unwrap();
    let new = ModelFile::open(&path).unwrap();
    let (a, b): (Vec<_>, Vec<_>) = (old.records().collect(), new.records().collect());
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (&x.name, x.dtype, x.layout, &x.shape),
            (&y.name, y.dtype, y.layout, &y.shape)
        );
        assert_eq!(
            old.tensor(&x.name).unwrap().bytes,
            new.tensor(&y.name).unwrap().bytes,
            "{}",
            x.name
        );
    }
    let others = |f: &ModelFile| {
        (f.metadata().entries().iter())
            .filter(|(k, _)| !k.starts_with("labels."))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(others(&old), others(&new));
    // No temporary file is left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // A model open here is in use: it is not replaced under it.
    let e = failed(&convert_cli(&[
        "relabel",
        path.to_str().unwrap(),
        "--labels",
        "p,q,r",
    ]));
    assert!(e.contains("is open in a dbrt process"), "{e}");
    drop(new);
    // Through a symbolic link, the file it names is relabelled and the link stays.
    let link = dir.path().join("link.dbrt");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    ok(&convert_cli(&[
        "relabel",
        link.to_str().unwrap(),
        "--labels",
        "a, b ,c",
    ]));
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(labels_of(&path).0, names(&["a", "b", "c"]));
}

#[test]
fn relabel_to_another_file_leaves_the_model_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = converted(
        dir.path(),
        "m.dbrt",
        &["--labels", "a,entailment,c", "--entailment-label", "c"],
    );
    let original = std::fs::read(&path).unwrap();
    let copy = dir.path().join("copy.dbrt");
    // Only the entailment label: the names stay.
    ok(&convert_cli(&[
        "relabel",
        path.to_str().unwrap(),
        "--entailment-label",
        "none",
        "-o",
        copy.to_str().unwrap(),
    ]));
    assert_eq!(labels_of(&copy), (names(&["a", "entailment", "c"]), None));
    assert_eq!(std::fs::read(&path).unwrap(), original);
    assert_eq!(logits(&copy), logits(&path));
    // New names without an entailment label drop the stored one: the names decide again.
    ok(&convert_cli(&[
        "relabel",
        copy.to_str().unwrap(),
        "--labels",
        "x,y,entailment",
    ]));
    assert_eq!(labels_of(&copy).1, Some(2));
}

#[test]
fn relabel_refuses_what_it_cannot_do_and_leaves_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = converted(dir.path(), "m.dbrt", &[]);
    let original = std::fs::read(&path).unwrap();
    let p = path.to_str().unwrap();
    let e = failed(&convert_cli(&["relabel", p, "--labels", "a,b,c,d"]));
    assert!(
        e.contains("--labels gives 4 names") && e.contains("has 3 labels"),
        "{e}"
    );
    let e = failed(&convert_cli(&[
        "relabel",
        p,
        "--labels",
        "a,b,c",
        "--entailment-label",
        "d",
    ]));
    assert!(e.contains("'d' is not one of the labels (a,b,c)"), "{e}");
    let e = failed(&convert_cli(&["relabel", p]));
    assert!(e.contains("nothing to change"), "{e}");
    let missing = dir.path().join("missing.dbrt");
    let e = failed(&convert_cli(&[
        "relabel",
        missing.to_str().unwrap(),
        "--labels",
        "a",
    ]));
    assert!(e.contains(missing.to_str().unwrap()), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), original);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// Drop `labels.entailment` into a file by hand: an index out of range is a typed error at
/// open, naming the key.
#[test]
fn a_stored_entailment_label_out_of_range_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = converted(dir.path(), "m.dbrt", &[]);
    let file = ModelFile::open(&path).unwrap();
    let mut w = dbrt::format::FileWriter::new();
    w.metadata = file.metadata().clone();
    w.metadata
        .set("labels.entailment", dbrt::format::MetaValue::I64(3));
    for r in file.records() {
        let v = file.tensor(&r.name).unwrap();
        w.add_tensor_with_layout(&r.name, r.dtype, r.layout, &r.shape, v.bytes.to_vec())
            .unwrap();
    }
    let bad = dir.path().join("bad.dbrt");
    w.write_to_path(&bad).unwrap();
    let e = Model::open(&bad).unwrap_err().to_string();
    assert!(
        e.contains("labels.entailment") && e.contains("below 3"),
        "{e}"
    );
}

/// The default model relabelled as `scripts/fetch-model.sh` names it: the same probabilities
/// for a real pair, the names and "no entailment label" stated.
#[test]
fn the_default_model_relabelled_answers_as_before() {
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/aegis-nli-xsmall-int8.dbrt");
    assert!(
        real.is_file(),
        "{} is missing: run scripts/fetch-model.sh",
        real.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.dbrt");
    std::fs::copy(&real, &path).unwrap();
    let probs = |p: &Path| {
        let m = Arc::new(Model::open(p).unwrap());
        let mut s = Session::new(m, Default::default()).unwrap();
        s.classify(
            "A man is playing a guitar on stage.",
            Some("A man is performing music."),
        )
        .unwrap()
    };
    let before = probs(&path);
    ok(&convert_cli(&[
        "relabel",
        path.to_str().unwrap(),
        "--labels",
        "neutral,contradiction_or_entailment",
        "--entailment-label",
        "none",
    ]));
    assert_eq!(
        labels_of(&path),
        (names(&["neutral", "contradiction_or_entailment"]), None)
    );
    assert_eq!(probs(&path), before);
}
