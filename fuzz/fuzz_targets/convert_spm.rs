//! Arbitrary bytes as a SentencePiece spm.model: brought to tokenizer.json form, compiled, and
//! (when that succeeds) run on a text pair by the runtime's tokenizer.
#![no_main]

use libfuzzer_sys::fuzz_target;

dbrt_fuzz::fuzz_setup!();

fuzz_target!(|data: &[u8]| {
    dbrt_fuzz::init();
    let path = std::path::Path::new("spm.model");
    let Ok(json) = dbrt_convert::tokenizer_source::spm_to_json(path, data) else {
        return;
    };
    // The converter loads the result with `tokenizers` before compiling it (tokenizer_source::find).
    if tokenizers::Tokenizer::from_bytes(&json).is_err() {
        return;
    }
    let Ok(compiled) = dbrt_convert::tokenizer_compile::compile(&json, 64) else {
        return;
    };
    let mut w = dbrt::format::FileWriter::new();
    compiled
        .add_to(&mut w)
        .expect("adding a compiled tokenizer");
    let mut bytes = Vec::new();
    w.write(&mut bytes).expect("writing to memory");
    let file = dbrt::format::ModelFile::from_bytes_copied(&bytes).expect("reading back");
    if let Ok(Some(t)) = dbrt::tokenizer::Tokenizer::from_file(&file, 64, u32::MAX as usize) {
        let _ = t.encode(file.bytes(), "A man plays a guitar.", Some("naïve café"));
    }
});
