//! Arbitrary bytes as an artifact directory's manifest.txt: parsing never panics, and a
//! manifest that parses writes back to text that parses to the same manifest.
#![no_main]

use dbrt::offload::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

dbrt_fuzz::fuzz_setup!();

fuzz_target!(|data: &[u8]| {
    dbrt_fuzz::init();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = Manifest::parse(text) {
        let again = Manifest::parse(&m.to_text()).expect("a written manifest parses");
        assert_eq!(again, m);
        let _ = m.bucket_for(usize::MAX);
    }
});
