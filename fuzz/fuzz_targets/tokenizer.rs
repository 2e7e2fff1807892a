//! Arbitrary bytes through the compiled tokenizer of the real model (when fetched; the tiny
//! fixtures' tokenizer otherwise), alone and as a pair; on valid UTF-8 the ids must equal those
//! of the `tokenizers` crate on the same tokenizer.json.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

dbrt_fuzz::fuzz_setup!();

struct Pair {
    file: dbrt::format::ModelFile,
    compiled: dbrt::tokenizer::Tokenizer,
    oracle: tokenizers::Tokenizer,
    model: std::sync::Arc<dbrt::Model>,
}

const MAX_LEN: usize = 64;

fn pair() -> &'static Pair {
    static P: OnceLock<Pair> = OnceLock::new();
    P.get_or_init(|| {
        let path = dbrt_fuzz::real_tokenizer().unwrap_or_else(dbrt_fuzz::tiny_tokenizer);
        let json = std::fs::read(&path).expect("tokenizer.json");
        let mut w = dbrt::format::FileWriter::new();
        dbrt_convert::tokenizer_compile::compile(&json, MAX_LEN)
            .expect("compiles")
            .add_to(&mut w)
            .expect("adds");
        let mut bytes = Vec::new();
        w.write(&mut bytes).expect("writes");
        let file = dbrt::format::ModelFile::from_bytes_copied(&bytes).expect("reads");
        let mut oracle = tokenizers::Tokenizer::from_bytes(&json).expect("oracle loads");
        let vocab = oracle.get_vocab_size(true);
        let compiled = dbrt::tokenizer::Tokenizer::from_file(&file, MAX_LEN, vocab)
            .expect("loads")
            .expect("present");
        oracle.with_padding(None);
        oracle
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: MAX_LEN,
                strategy: tokenizers::TruncationStrategy::LongestFirst,
                stride: 0,
                direction: tokenizers::TruncationDirection::Right,
            }))
            .expect("truncation");
        // A whole model too, for the session's byte-level entry point.
        let model = std::sync::Arc::new(
            dbrt::Model::from_file(
                dbrt::format::ModelFile::from_bytes_copied(&dbrt_fuzz::base_models()[1])
                    .expect("base"),
            )
            .expect("base opens"),
        );
        Pair {
            file,
            compiled,
            oracle,
            model,
        }
    })
}

fn session() -> &'static std::sync::Mutex<dbrt::Session> {
    static S: OnceLock<std::sync::Mutex<dbrt::Session>> = OnceLock::new();
    S.get_or_init(|| {
        let opts = dbrt::SessionOptions {
            max_sequence_length: Some(16),
            max_word_bytes: Some(256),
            ..Default::default()
        };
        std::sync::Mutex::new(dbrt::Session::new(pair().model.clone(), opts).expect("session"))
    })
}

fuzz_target!(|data: &[u8]| {
    dbrt_fuzz::init();
    let p = pair();
    // The first byte splits the input into a pair (0 = a single text).
    let (a, b) = match data.split_first() {
        Some((&k, rest)) if k != 0 && !rest.is_empty() => {
            let at = k as usize % rest.len();
            (&rest[..at], Some(&rest[at..]))
        }
        Some((_, rest)) => (rest, None),
        None => (data, None),
    };
    if let Ok(mut s) = session().lock() {
        let _ = s.tokenize_bytes(a, b);
    }
    let (Ok(a), Ok(b)) = (
        std::str::from_utf8(a),
        b.map(std::str::from_utf8).transpose(),
    ) else {
        return;
    };
    let ours = p.compiled.encode(p.file.bytes(), a, b);
    let theirs = match b {
        Some(b) => p.oracle.encode((a, b), true),
        None => p.oracle.encode(a, true),
    };
    match (ours, theirs) {
        (Ok(o), Ok(t)) => {
            assert_eq!(o.ids, t.get_ids(), "ids differ on {a:?} / {b:?}");
            assert_eq!(
                o.type_ids,
                t.get_type_ids(),
                "type ids differ on {a:?} / {b:?}"
            );
        }
        // A word over dbrt's byte limit is a typed error; tokenizers has none.
        (Err(_), _) => {}
        (Ok(o), Err(e)) => panic!("tokenizers failed ({e}) where dbrt gave {:?}", o.ids),
    }
});
