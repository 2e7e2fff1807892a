//! The compiled tokenizer against the `tokenizers` crate (the oracle) on the real model's
//! tokenizer: fixture texts, edge cases, and 100,000 generated strings, with failures shrunk to a
//! minimal input.

use std::sync::OnceLock;

use dbrt_tests::*;

const MAX_LEN: usize = 512;

fn json_pair() -> &'static TokenizerPair {
    static P: OnceLock<TokenizerPair> = OnceLock::new();
    P.get_or_init(|| {
        TokenizerPair::from_json(
            &std::fs::read(real_tokenizer_dir().join("tokenizer.json")).unwrap(),
            MAX_LEN,
        )
    })
}

fn spm_pair() -> &'static TokenizerPair {
    static P: OnceLock<TokenizerPair> = OnceLock::new();
    P.get_or_init(|| {
        let dir = real_tokenizer_dir();
        let (json, _) =
            dbrt_convert::tokenizer_source::find(&dir, Some(&dir.join("spm.model"))).unwrap();
        TokenizerPair::from_json(&json.unwrap(), MAX_LEN)
    })
}

fn fixture_texts() -> Vec<(String, String)> {
    ["mnli_dev_matched.goldens.jsonl", "rte_dev.goldens.jsonl"]
        .iter()
        .flat_map(|f| real_rows(f))
        .map(|r| (r.premise, r.hypothesis))
        .collect()
}

/// Deletes characters of a failing input while it keeps failing.
fn shrink(
    mut a: String,
    mut b: Option<String>,
    fails: impl Fn(&str, Option<&str>) -> bool,
) -> (String, Option<String>) {
    loop {
        let mut progress = false;
        for which in 0..2 {
            let s = if which == 0 {
                a.clone()
            } else {
                match &b {
                    Some(b) => b.clone(),
                    None => continue,
                }
            };
            let chars: Vec<char> = s.chars().collect();
            let mut chunk = chars.len().max(1);
            while chunk >= 1 {
                let mut i = 0;
                while i < chars.len() {
                    let cand: String = chars[..i]
                        .iter()
                        .chain(chars[(i + chunk).min(chars.len())..].iter())
                        .collect();
                    let ok = if which == 0 {
                        fails(&cand, b.as_deref())
                    } else {
                        fails(&a, Some(&cand))
                    };
                    if ok && cand.len() < s.len() {
                        if which == 0 {
                            a = cand
                        } else {
                            b = Some(cand)
                        }
                        progress = true;
                        break;
                    }
                    i += chunk;
                }
                if progress {
                    break;
                }
                chunk /= 2;
            }
            if progress {
                break;
            }
        }
        if !progress {
            return (a, b);
        }
    }
}

fn assert_same(p: &TokenizerPair, a: &str, b: Option<&str>) {
    if p.ours(a, b) != p.theirs(a, b) {
        let (a, b) = shrink(a.to_string(), b.map(str::to_string), |a, b| {
            p.ours(a, b) != p.theirs(a, b)
        });
        panic!(
            "ids differ on the minimal input {a:?} / {b:?}\n ours:   {:?}\n theirs: {:?}",
            p.ours(&a, b.as_deref()).ids,
            p.theirs(&a, b.as_deref()).ids
        );
    }
}

#[test]
fn fixture_texts_singles_and_pairs_both_orders() {
    let p = json_pair();
    for (a, b) in fixture_texts() {
        assert_same(p, &a, None);
        assert_same(p, &b, None);
        assert_same(p, &a, Some(&b));
        assert_same(p, &b, Some(&a));
    }
}

#[test]
fn edge_cases() {
    let p = json_pair();
    let long_word = "a".repeat(100_000);
    let mb: String = (0..150_000)
        .map(|i| ["word ", "Ünïcödé ", "数据 ", "x\u{0301} "][i % 4])
        .collect();
    assert!(mb.len() > 1_000_000);
    let cases: Vec<&str> = vec![
        "",
        " ",
        "   \t\n ",
        "\u{3000}",
        "a",
        "[CLS]",
        "[MASK] x",
        "x[SEP]y",
        "a [UNK] b",
        "[UNK]",
        "a[UNK]",
        "[UNK] b",
        "  lead and trail  ",
        "double  space",
        "▁",
        "▁▁a",
        "a▁b",
        "ﬁ ligature ①②",
        "ｆｕｌｌ　ｗｉｄｔｈ",
        "👨‍👩‍👧 family",
        "e\u{0301}",
        "\u{0000}\u{0001}ctrl",
        "ﷺ",
        "ｶﾞ",
        &long_word,
        &mb,
    ];
    for a in &cases {
        assert_same(p, a, None);
        for b in &cases[..8] {
            assert_same(p, a, Some(b));
            assert_same(p, b, Some(a));
        }
    }
    // Truncated, not refused: a megabyte pair still yields at most 512 tokens.
    assert_eq!(p.ours(&mb, Some(&mb)).ids.len(), MAX_LEN);
}

/// Characters from the places where tokenizers differ: scripts, marks, emoji sequences, widths,
/// controls, spaces of every kind, what the charsmap rewrites, and the added tokens.
fn random_text(next: &mut impl FnMut() -> u64) -> String {
    const RANGES: &[(u32, u32)] = &[
        (0x20, 0x7E),
        (0x20, 0x7E),
        (0x20, 0x7E),
        (0x61, 0x7A),
        (0x61, 0x7A),
        (0x00, 0x1F),
        (0x7F, 0xA0),
        (0xA0, 0x17F),
        (0x300, 0x36F),
        (0x370, 0x3FF),
        (0x400, 0x4FF),
        (0x590, 0x6FF),
        (0x900, 0x97F),
        (0xE00, 0xE7F),
        (0x1100, 0x11FF),
        (0x2000, 0x206F),
        (0x2100, 0x24FF),
        (0x2E80, 0x2FDF),
        (0x3000, 0x30FF),
        (0x3300, 0x33FF),
        (0x4E00, 0x9FFF),
        (0xAC00, 0xD7A3),
        (0xFB00, 0xFB4F),
        (0xFB50, 0xFDFF),
        (0xFE00, 0xFE6F),
        (0xFE70, 0xFEFF),
        (0xFF00, 0xFFEF),
        (0x1F300, 0x1FAFF),
        (0x1F3FB, 0x1F3FF),
        (0x1D400, 0x1D7FF),
        (0x10000, 0x1007F),
    ];
    const PIECES: &[&str] = &[
        " ",
        "  ",
        "   ",
        "\t",
        "\n",
        "\u{A0}",
        "\u{3000}",
        "\u{200B}",
        "\u{200D}",
        "\u{FE0F}",
        "\u{FEFF}",
        "\u{AD}",
        "▁",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "[UNK]",
        "[PAD]",
        "👩‍💻",
        "🏳️‍🌈",
        "ﷺ",
        "ﬁ",
        "™",
        "…",
        "½",
        "Å",
        "ﾊﾟ",
        "ｶﾞ",
        "e\u{301}",
        "n\u{303}",
    ];
    let len = (next() % 24) as usize;
    let mut s = String::new();
    for _ in 0..len {
        match next() % 10 {
            0..=2 => s.push_str(PIECES[(next() % PIECES.len() as u64) as usize]),
            3 => {
                // A long run of one letter: long words.
                let c = char::from(b'a' + (next() % 26) as u8);
                (0..next() % 200).for_each(|_| s.push(c));
            }
            _ => {
                let (lo, hi) = RANGES[(next() % RANGES.len() as u64) as usize];
                if let Some(c) = char::from_u32(lo + (next() % (hi - lo + 1) as u64) as u32) {
                    s.push(c);
                }
            }
        }
    }
    s
}

fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

fn property(seed: u64, cases: usize) {
    let p = json_pair();
    let mut next = xorshift(seed);
    for _ in 0..cases {
        let a = random_text(&mut next);
        if next() % 2 == 0 {
            assert_same(p, &a, None);
        } else {
            let b = random_text(&mut next);
            assert_same(p, &a, Some(&b));
        }
    }
}

// 100,000 generated cases in all, in four tests so that they run in parallel.
#[test]
fn generated_strings_1() {
    property(0x9E37_79B9_7F4A_7C15, 25_000);
}
#[test]
fn generated_strings_2() {
    property(0xD1B5_4A32_D192_ED03, 25_000);
}
#[test]
fn generated_strings_3() {
    property(0xABCD_EF01_2345_6789, 25_000);
}
#[test]
fn generated_strings_4() {
    property(0x1234_5678_9ABC_DEF1, 25_000);
}

/// tokenizer.json and spm.model of the real model compile to tokenizers that agree.
#[test]
fn spm_model_and_tokenizer_json_agree() {
    let (j, s) = (json_pair(), spm_pair());
    let mut next = xorshift(42);
    let generated: Vec<String> = (0..5_000).map(|_| random_text(&mut next)).collect();
    for (a, b) in fixture_texts() {
        assert_eq!(j.ours(&a, Some(&b)), s.ours(&a, Some(&b)), "{a:?} / {b:?}");
    }
    for g in &generated {
        if j.ours(g, None) != s.ours(g, None) {
            let (m, _) = shrink(g.clone(), None, |a, _| j.ours(a, None) != s.ours(a, None));
            panic!(
                "spm.model and tokenizer.json differ on {m:?}: {:?} vs {:?}",
                j.ours(&m, None).ids,
                s.ours(&m, None).ids
            );
        }
    }
}

#[test]
fn invalid_utf8_and_oversized_words_are_typed_errors() {
    let onnx = real_model_onnx();
    let (_d, path) = convert(&onnx, dbrt_convert::StorageType::F16);
    let model = open(&path);
    let opts = dbrt::SessionOptions {
        max_word_bytes: Some(1000),
        ..Default::default()
    };
    let mut s = dbrt::Session::new(model, opts).unwrap();
    assert!(matches!(
        s.tokenize_bytes(b"ok \xff\xfe", None),
        Err(dbrt::Error::InvalidUtf8)
    ));
    assert!(matches!(
        s.tokenize_bytes(b"ok", Some(b"\xc3")),
        Err(dbrt::Error::InvalidUtf8)
    ));
    assert!(matches!(
        s.tokenize(&"x".repeat(2000), None),
        Err(dbrt::Error::InputTooLong { .. })
    ));
    // Long text of short words is fine whatever its length: it streams.
    let text = "many words ".repeat(50_000);
    assert_eq!(s.tokenize(&text, None).unwrap().0.len(), 512);
}
