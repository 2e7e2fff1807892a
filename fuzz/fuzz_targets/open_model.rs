//! Structure-aware: typed edits of a valid tiny model, re-sealed, then open → sessions → calls.
//! `DBRT_FUZZ_DUMP=path` writes the mutated file of the (single) input run, to make a corpus
//! entry of a finding; `DBRT_FUZZ_VERBOSE=1` prints the edits.
#![no_main]

use libfuzzer_sys::fuzz_target;

dbrt_fuzz::fuzz_setup!();

fuzz_target!(|data: &[u8]| {
    dbrt_fuzz::init();
    let m = dbrt_fuzz::mutate::mutate(dbrt_fuzz::base_models(), data);
    if std::env::var_os("DBRT_FUZZ_VERBOSE").is_some() {
        eprintln!("max_len {} ids {:?}", m.max_len, m.ids);
        for l in &m.log {
            eprintln!("  {l}");
        }
    }
    if let Some(p) = std::env::var_os("DBRT_FUZZ_DUMP") {
        std::fs::write(&p, &m.bytes).expect("DBRT_FUZZ_DUMP");
    }
    dbrt_fuzz::exercise_model(&m.bytes, m.max_len, &m.ids);
});
