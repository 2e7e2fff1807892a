//! Arbitrary bytes as the config.json of a tiny Hugging Face checkpoint, converted; a
//! conversion that succeeds must give a usable model (see `convert_and_check`).
#![no_main]

use libfuzzer_sys::fuzz_target;

dbrt_fuzz::fuzz_setup!();

fuzz_target!(|data: &[u8]| {
    dbrt_fuzz::init();
    let dir = dbrt_fuzz::fixture_dir("v3-style");
    std::fs::write(dir.join("config.json"), data).expect("scratch write");
    dbrt_fuzz::convert_and_check(&dir, &Default::default());
});
