//! `scripts/ascend/compile.sh` and `board-check.sh` where no CANN is installed: compile.sh
//! against a stand-in `atc` the test writes (it records its arguments and writes
//! `<output><suffix>.om`), then register-om through this package's `dbrt-convert`; board-check's
//! argument parsing and `--dry-run` commands.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dbrt::offload::manifest::{Precision, MANIFEST_FILE};
use dbrt_convert::export::{export_ascend, om::read_manifest, AscendOptions};
use dbrt_convert::{ConvertOptions, StorageType};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn script(name: &str) -> PathBuf {
    repo().join("scripts/ascend").join(name)
}

/// An Ascend export of the tiny model (gears 16, 64) in `dir/art`.
fn export(dir: &Path) -> (PathBuf, PathBuf) {
    let model = dir.join("tiny.dbrt");
    let opts = ConvertOptions {
        storage: StorageType::F32,
        ..Default::default()
    };
    let src = repo().join("tests/fixtures/tiny/v3-style");
    dbrt_convert::convert(&src, &model, &opts, &mut ()).unwrap();
    let art = dir.join("art");
    let options = AscendOptions {
        gears: vec![16, 64],
        precision: Precision::F32,
    };
    export_ascend(&model, &art, &options).unwrap();
    (model, art)
}

/// A stand-in `atc` in `dir`: writes its arguments to `dir/atc-args`, fails when
/// `FAKE_ATC_FAIL` is set, else writes `<output>$FAKE_ATC_SUFFIX.om`.
fn fake_atc(dir: &Path) -> PathBuf {
    let path = dir.join("atc");
    let body = format!(
        "#!/usr/bin/env bash\nprintf '%s\\n' \"$@\" > {}\n\
         [ -z \"${{FAKE_ATC_FAIL:-}}\" ] || exit 3\n\
         for a in \"$@\"; do case \"$a\" in --output=*) out=\"${{a#--output=}}\";; esac; done\n\
         printf 'compiled %s' \"$*\" > \"$out${{FAKE_ATC_SUFFIX:-}}.om\"\n",
        dir.join("atc-args").display()
    );
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (status.code().unwrap_or(-1), text(stdout), text(stderr))
}

fn compile(art: &Path, atc: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("bash");
    c.arg(script("compile.sh")).arg(art).args(args);
    c.env("ATC", atc)
        .env("DBRT_CONVERT", env!("CARGO_BIN_EXE_dbrt-convert"));
    c
}

#[test]
fn compile_sh_runs_atc_with_the_manifests_gears_and_registers_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let (_, art) = export(dir.path());
    let atc = fake_atc(dir.path());
    let args = [
        "--soc_version",
        "Ascend310B1",
        "--precision_mode=force_fp32",
        "--log=info",
    ];
    let (code, _, err) = run(&mut compile(&art, &atc, &args));
    assert_eq!(code, 0, "{err}");
    let sent = std::fs::read_to_string(dir.path().join("atc-args")).unwrap();
    let want = [
        "--framework=5".to_string(),
        format!("--model={}/encoder-ascend.onnx", art.display()),
        format!("--output={}/encoder", art.display()),
        "--input_format=ND".into(),
        "--input_shape=hidden:1,-1,32;mask:1,-1".into(),
        "--dynamic_dims=16,16;64,64".into(),
        "--soc_version=Ascend310B1".into(),
        "--precision_mode=force_fp32".into(),
        "--log=info".into(),
    ];
    assert_eq!(sent.lines().collect::<Vec<_>>(), want);
    let om = read_manifest(&art).unwrap().ascend.unwrap().om.unwrap();
    let bytes = std::fs::read(art.join("encoder.om")).unwrap();
    assert_eq!(
        (om.file.as_str(), om.soc_version.as_str()),
        ("encoder.om", "Ascend310B1")
    );
    assert_eq!(
        (om.bytes, om.crc32),
        (bytes.len() as u64, crc32fast::hash(&bytes))
    );

    // ATC's suffixed name is found and registered in place of the first.
    let mut c = compile(&art, &atc, &["--soc_version=Ascend310P3"]);
    let (code, _, err) = run(c.env("FAKE_ATC_SUFFIX", "_linux_aarch64"));
    assert_eq!(code, 0, "{err}");
    let om = read_manifest(&art).unwrap().ascend.unwrap().om.unwrap();
    assert_eq!(
        (om.file.as_str(), om.soc_version.as_str()),
        ("encoder_linux_aarch64.om", "Ascend310P3")
    );
}

#[test]
fn compile_sh_refuses_with_a_message_and_leaves_the_manifest_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (_, art) = export(dir.path());
    let atc = fake_atc(dir.path());
    let before = std::fs::read_to_string(art.join(MANIFEST_FILE)).unwrap();
    let missing = dir.path().join("nothing");
    let cases: Vec<(Command, &str)> = vec![
        (compile(&art, &atc, &[]), "no --soc_version"),
        (
            compile(&art, &atc, &["--soc_version", "a b"]),
            "letters, digits",
        ),
        (
            compile(&art, &atc, &["--soc_version=X", "--output=x"]),
            "set by this script",
        ),
        (
            compile(&art, &atc, &["--soc_version=X", "-v"]),
            "unknown option",
        ),
        (compile(&missing, &atc, &["--soc_version=X"]), "not found"),
        (compile(&art, &missing, &["--soc_version=X"]), "not found"),
        (compile(dir.path(), &atc, &["--soc_version=X"]), "not found"),
    ];
    for (mut c, says) in cases {
        let (code, _, err) = run(&mut c);
        assert_eq!(code, 2, "{c:?}: {err}");
        assert!(err.contains(says), "{c:?}: {err}");
    }
    let mut c = compile(&art, &atc, &["--soc_version=X"]);
    let (code, _, err) = run(c.env("FAKE_ATC_FAIL", "1"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("atc failed (exit 3)"), "{err}");
    assert_eq!(
        std::fs::read_to_string(art.join(MANIFEST_FILE)).unwrap(),
        before
    );
    // A static export is not compiled.
    let stat = dir.path().join("static");
    std::fs::create_dir(&stat).unwrap();
    std::fs::write(
        stat.join(MANIFEST_FILE),
        before.replace("target ascend\n", ""),
    )
    .unwrap();
    let (code, _, err) = run(&mut compile(&stat, &atc, &["--soc_version=X"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not an Ascend export"), "{err}");
}

fn board_check(args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new("bash");
    c.arg(script("board-check.sh")).args(args);
    c.env("DBRT", "dbrt").env("DBRT_CONVERT", "dbrt-convert");
    run(&mut c)
}

#[test]
fn board_check_dry_run_prints_export_compile_eval_and_bench_per_gear() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh");
    let fresh = fresh.to_str().unwrap();
    let args = [
        "--dry-run",
        "--soc_version=Ascend310B1",
        "--model",
        "m.dbrt",
        "--dir",
        fresh,
        "--gears",
        "32,128",
        "--data",
        "a.goldens.jsonl",
        "--out",
        "o",
    ];
    let (code, out, err) = board_check(&args);
    assert_eq!(code, 0, "{err}");
    let want = [
        format!("dbrt-convert export-onnx m.dbrt -o {fresh} --target ascend --gears 32,128 --precision f32"),
        format!("compile.sh {fresh} --soc_version Ascend310B1"),
        format!("dbrt eval --model m.dbrt --data a.goldens.jsonl --out o/a.ascend.jsonl --backend ascend --artifacts {fresh} --fallback never"),
        "dbrt eval --model m.dbrt --data a.goldens.jsonl --out o/a.cpu.jsonl --backend cpu".into(),
        format!("dbrt bench --model m.dbrt --seq 32,128 --threads 1 --batch 1 --iters 50 --backend ascend --artifacts {fresh} --fallback never"),
        "dbrt bench --model m.dbrt --seq 32,128 --threads 1 --batch 1 --iters 50 --backend cpu".into(),
    ];
    for w in &want {
        assert!(
            out.lines().any(|l| l.ends_with(w.as_str())),
            "no `{w}` in\n{out}"
        );
    }

    // An export compiled for this SoC is used as it is, its gears benched.
    let (_, art) = export(dir.path());
    let atc = fake_atc(dir.path());
    let (code, _, err) = run(&mut compile(&art, &atc, &["--soc_version=Ascend310B1"]));
    assert_eq!(code, 0, "{err}");
    let art = art.to_str().unwrap();
    let args = ["--dry-run", "--soc_version", "Ascend310B1", "--dir", art];
    let (code, out, err) = board_check(&args);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("an Ascend export is there: gears 16 64"),
        "{out}"
    );
    assert!(out.contains("compiled already: om encoder.om"), "{out}");
    assert!(
        !out.contains("export-onnx") && !out.contains("compile.sh"),
        "{out}"
    );
    assert!(out.contains("--seq 16,64 "), "{out}");
    // Another SoC is compiled again.
    let (_, out, _) = board_check(&["--dry-run", "--soc_version=Ascend310P3", "--dir", art]);
    assert!(out.contains("compile.sh"), "{out}");
}

#[test]
fn board_check_refuses_bad_arguments_before_running_anything() {
    for (args, says) in [
        (vec![], "no --soc_version"),
        (vec!["--soc_version"], "needs a value"),
        (
            vec!["--soc_version=A", "--gears", "64"],
            "two or more lengths",
        ),
        (vec!["--soc_version=A", "--precision", "f8"], "f32 or f16"),
        (vec!["--soc_version=A", "--iters", "0"], "positive"),
        (vec!["--soc_version=A", "--frobnicate"], "unknown argument"),
    ] {
        let mut a = vec!["--dry-run"];
        a.extend(args.iter().copied());
        let (code, out, err) = board_check(&a);
        assert_eq!(code, 2, "{a:?}: {err}");
        assert!(err.contains(says), "{a:?}: {err}");
        assert!(out.is_empty(), "{a:?} ran: {out}");
    }
    let (code, out, _) = board_check(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--soc_version"), "{out}");
}
