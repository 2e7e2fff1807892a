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
        if next().is_multiple_of(2) {
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
        Err(dbrt::Error::WordTooLong { max: 1000 })
    ));
    // Long text of short words is fine whatever its length: it streams.
    let text = "many words ".repeat(50_000);
    assert_eq!(s.tokenize(&text, None).unwrap().0.len(), 512);
}

const STRATEGIES: [dbrt::Truncation; 3] = [
    dbrt::Truncation::LongestFirst,
    dbrt::Truncation::OnlyFirst,
    dbrt::Truncation::OnlySecond,
];

/// Makes the oracle truncate to `max` with `strategy`.
fn truncate_oracle(o: &mut tokenizers::Tokenizer, max: usize, strategy: dbrt::Truncation) {
    o.with_truncation(Some(tokenizers::TruncationParams {
        max_length: max,
        strategy: match strategy {
            dbrt::Truncation::LongestFirst => tokenizers::TruncationStrategy::LongestFirst,
            dbrt::Truncation::OnlyFirst => tokenizers::TruncationStrategy::OnlyFirst,
            dbrt::Truncation::OnlySecond => tokenizers::TruncationStrategy::OnlySecond,
        },
        stride: 0,
        direction: tokenizers::TruncationDirection::Right,
    }))
    .unwrap();
}

/// Ours at `max` with `strategy`: the encoding, or `None` when refused.
fn ours_with(
    p: &TokenizerPair,
    a: &str,
    b: Option<&str>,
    max: usize,
    strategy: dbrt::Truncation,
) -> Option<dbrt::Encoding> {
    let mut scratch =
        dbrt::tokenizer::TokenizerScratch::new(dbrt::session::DEFAULT_MAX_WORD_BYTES, max).unwrap();
    let (mut ids, mut type_ids) = (vec![0; max], vec![0; max]);
    match p.compiled.encode_into(
        p.file.bytes(),
        a,
        b,
        max,
        strategy,
        &mut scratch,
        &mut ids,
        &mut type_ids,
    ) {
        Ok(n) => Some(dbrt::Encoding {
            ids: ids[..n].to_vec(),
            type_ids: type_ids[..n].to_vec(),
        }),
        Err(dbrt::Error::InvalidArgument(_)) => None,
        Err(e) => panic!("{e}"),
    }
}

fn theirs_with(o: &tokenizers::Tokenizer, a: &str, b: Option<&str>) -> Option<dbrt::Encoding> {
    match b {
        Some(b) => o.encode((a, b), true),
        None => o.encode(a, true),
    }
    .ok()
    .map(|e| dbrt::Encoding {
        ids: e.get_ids().to_vec(),
        type_ids: e.get_type_ids().to_vec(),
    })
}

/// Truncation of every length relation against the oracle, with every strategy, at tiny and
/// real limits: first text longer, shorter or equal, one or both over the room, empty texts.
#[test]
fn truncation_of_every_length_relation_matches_tokenizers() {
    let p = json_pair();
    // "▁word" and "▁thing" are one token each: n words are n tokens.
    assert_eq!(
        p.theirs(&"word ".repeat(7), Some(&"thing ".repeat(5)))
            .ids
            .len(),
        15
    );
    let mut compared = [0usize; 3];
    let mut o = p.oracle.clone();
    for max in [2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 128, 512] {
        for strategy in STRATEGIES {
            truncate_oracle(&mut o, max, strategy);
            let room = max.saturating_sub(3);
            let mut counts = vec![
                0,
                1,
                2,
                (room / 2).saturating_sub(1),
                room / 2,
                room / 2 + 1,
                room.saturating_sub(2),
                room.saturating_sub(1),
                room,
                room + 1,
                room + 2,
                2 * room + 1,
                3 * room + 7,
            ];
            counts.sort_unstable();
            counts.dedup();
            for &n1 in &counts {
                let a = "word ".repeat(n1);
                if max >= 2 {
                    let ours = ours_with(p, &a, None, max, strategy);
                    assert_eq!(
                        ours,
                        theirs_with(&o, &a, None),
                        "{n1} at {max} {strategy:?}"
                    );
                    compared[ours.is_some() as usize] += 1;
                }
                for &n2 in &counts {
                    let b = "thing ".repeat(n2);
                    let ours = ours_with(p, &a, Some(&b), max, strategy);
                    if max < 3 {
                        // No room for [CLS] [SEP] [SEP]: tokenizers underflows, dbrt refuses.
                        assert_eq!(ours, None);
                        continue;
                    }
                    let theirs = theirs_with(&o, &a, Some(&b));
                    assert_eq!(ours, theirs, "{n1} + {n2} at {max} {strategy:?}");
                    compared[ours.is_some() as usize] += 1;
                    if n1 > room && n2 > room && n1 > n2 && strategy == STRATEGIES[0] {
                        compared[2] += 1;
                    }
                }
            }
        }
    }
    // Refusals (only_first/only_second) and encodings, and the case of the issue: both over
    // the room, the first longer.
    assert!(compared.iter().all(|&c| c > 50), "{compared:?}");
}

/// Long generated pairs (and singles) at random limits and strategies against the oracle.
#[test]
fn long_generated_pairs_at_random_limits_match_tokenizers() {
    let p = json_pair();
    let mut next = xorshift(0x0005_EED0_F7E5);
    fn long_text(next: &mut impl FnMut() -> u64) -> String {
        let target = (next() % 3000) as usize;
        let mut s = String::new();
        while s.len() < target {
            s.push_str(&random_text(next));
            s.push(' ');
        }
        s
    }
    let mut o = p.oracle.clone();
    for case in 0..300 {
        let max = match case % 3 {
            0 => 3 + (next() % 14) as usize,
            1 => 3 + (next() % 510) as usize,
            _ => 512,
        };
        let strategy = STRATEGIES[(next() % 3) as usize];
        truncate_oracle(&mut o, max, strategy);
        let a = long_text(&mut next);
        let b = (!next().is_multiple_of(4)).then(|| long_text(&mut next));
        assert_eq!(
            ours_with(p, &a, b.as_deref(), max, strategy),
            theirs_with(&o, &a, b.as_deref()),
            "case {case}: {} / {:?} bytes at {max} {strategy:?}",
            a.len(),
            b.as_ref().map(String::len)
        );
    }
}
