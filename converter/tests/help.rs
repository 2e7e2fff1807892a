//! `dbrt-convert --help` and every subcommand's: each option described, each help ending with
//! an example, the environment variables listed.

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dbrt-convert"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands the main help lists (without `help`).
fn subcommands(main: &str) -> Vec<String> {
    let list = main
        .split("Commands:\n")
        .nth(1)
        .expect("a Commands section");
    list.lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// Arguments and options of a short (`-h`) help without a description: none beside them,
/// and none on the next line (where clap puts it when the names are long).
fn undescribed(short: &str) -> Vec<String> {
    let lines: Vec<&str> = short.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let is_entry = |l: &str| {
        let t = l.trim_start();
        indent(l) <= 6 && (t.starts_with('-') || t.starts_with('<') || t.starts_with('['))
    };
    let mut in_list = false;
    let mut bare = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.ends_with(':') && !line.starts_with(' ') {
            in_list = *line == "Arguments:" || *line == "Options:";
            continue;
        }
        if !in_list || !is_entry(line) || line.trim().contains("  ") {
            continue;
        }
        let next = lines.get(i + 1).copied().unwrap_or("");
        if next.trim().is_empty() || is_entry(next) || indent(next) <= indent(line) {
            bare.push(line.trim().to_string());
        }
    }
    bare
}

#[test]
fn every_help_describes_every_option_and_ends_with_an_example() {
    let main = help(&["--help"]);
    for var in ["RUST_LOG", "DBRT_FORCE_ISA"] {
        assert!(main.contains(var), "{var} not in:\n{main}");
    }
    let subs = subcommands(&main);
    for want in ["inspect", "relabel", "check-tokenizer", "export-onnx"] {
        assert!(subs.iter().any(|s| s == want), "{want} not in {subs:?}");
    }
    let mut helps = vec![(String::from("dbrt-convert"), main.clone(), help(&["-h"]))];
    for s in &subs {
        helps.push((s.clone(), help(&[s, "--help"]), help(&[s, "-h"])));
    }
    for (name, long, short) in helps {
        let last_section = long.trim_end().rsplit("\n\n").next().unwrap_or("");
        if name == "dbrt-convert" {
            // The main help: examples, then the environment.
            assert!(last_section.starts_with("Environment:"), "{long}");
            assert!(long.contains("\nExamples:\n  dbrt-convert "), "{long}");
        } else {
            assert!(
                last_section.starts_with("Example")
                    && last_section.contains(&format!("dbrt-convert {name} ")),
                "{name}: its help does not end with an example of it:\n{long}"
            );
        }
        let bare = undescribed(&short);
        assert!(bare.is_empty(), "{name}: undescribed {bare:?}:\n{short}");
    }
}
