//! `dbrt --help` and every subcommand's: each option has a description, each subcommand's help
//! ends with an example of it, and the top-level help lists the environment variables.

mod common;

use common::dbrt;

fn help(args: &[&str]) -> String {
    let o = dbrt(args, &[]);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// The lines of the section headed `title` (e.g. "Options:"), up to the next blank line that
/// is followed by an unindented line.
fn section<'a>(text: &'a str, title: &str) -> Vec<&'a str> {
    let mut lines = text.lines().skip_while(|l| *l != title).skip(1).peekable();
    let mut out = Vec::new();
    while let Some(l) = lines.next() {
        if l.is_empty() && lines.peek().is_none_or(|n| !n.starts_with(' ')) {
            break;
        }
        out.push(l);
    }
    out
}

/// Every option (or argument) in `lines` that has no description, neither after it on its
/// line nor on the more indented line below it.
fn undescribed(lines: &[&str]) -> Vec<String> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut missing = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        if indent(l) > 6 || !(t.starts_with('-') || t.starts_with('<')) {
            continue; // a description's line
        }
        // The option's spec ends at the first run of two spaces.
        let rest = t.split_once("  ").map_or("", |(_, d)| d.trim());
        let below = lines
            .get(i + 1)
            .filter(|n| indent(n) > indent(l) && !n.trim_start().starts_with('-'))
            .map_or("", |n| n.trim());
        if rest.is_empty() && below.is_empty() {
            missing.push(t.trim_end().to_string());
        }
    }
    missing
}

#[test]
fn every_option_is_described_and_every_subcommand_has_an_example() {
    let top = help(&["--help"]);
    for var in [
        "RUST_LOG",
        "DBRT_FORCE_ISA",
        "DBRT_ONNXRUNTIME_LIB",
        "DBRT_QNN_EP_LIB",
        "DBRT_ASCENDCL_LIB",
    ] {
        assert!(
            top.contains(&format!("\n  {var} ")),
            "{var} not listed:\n{top}"
        );
    }
    assert!(top.contains("\nExample:\n  dbrt "), "{top}");
    let subcommands: Vec<&str> = section(&top, "Commands:")
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    for c in ["classify", "tokenize", "bench", "eval", "zero-shot"] {
        assert!(subcommands.contains(&c), "{c} not in {subcommands:?}");
    }
    assert!(undescribed(&section(&top, "Options:")).is_empty(), "{top}");
    for sub in subcommands {
        for flag in ["--help", "-h"] {
            let text = help(&[sub, flag]);
            let options = section(&text, "Options:");
            assert!(
                options.iter().any(|l| l.contains("--help")),
                "{sub}: no options?\n{text}"
            );
            let missing = undescribed(&options);
            let args = undescribed(&section(&text, "Arguments:"));
            assert!(
                missing.is_empty() && args.is_empty(),
                "{sub} {flag}: {missing:?} {args:?}\n{text}"
            );
            // The example comes last and runs this subcommand.
            let example = text.rsplit_once("\nExample").map(|(_, e)| e);
            assert!(
                example.is_some_and(|e| e.contains(&format!("\n  dbrt {sub} "))),
                "{sub} {flag}: no example\n{text}"
            );
        }
    }
}

/// The checks above can fail: an option without a description is found.
#[test]
fn an_undescribed_option_is_found() {
    let lines = [
        "      --model <FILE>  The model",
        "      --data <FILE>",
        "      --out <FILE>",
        "          Where it goes",
        "  -h, --help  Print help",
    ];
    assert_eq!(undescribed(&lines), ["--data <FILE>"]);
}
