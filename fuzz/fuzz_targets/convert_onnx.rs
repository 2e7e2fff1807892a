//! Arbitrary bytes as an .onnx file (no config.json beside it: everything is inferred from the
//! graph), converted with the tiny tokenizer.
#![no_main]

use libfuzzer_sys::fuzz_target;

dbrt_fuzz::fuzz_setup!();

fuzz_target!(|data: &[u8]| {
    dbrt_fuzz::init();
    let dir = dbrt_fuzz::scratch_dir().join("onnx");
    std::fs::create_dir_all(&dir).expect("scratch");
    let path = dir.join("model.onnx");
    std::fs::write(&path, data).expect("scratch write");
    let opts = dbrt_convert::ConvertOptions {
        tokenizer: Some(dbrt_fuzz::tiny_tokenizer()),
        ..Default::default()
    };
    dbrt_fuzz::convert_and_check(&path, &opts);
});
