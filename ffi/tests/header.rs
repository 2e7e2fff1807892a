//! include/dbrt.h is generated from this crate; this test fails when the checked-in header
//! differs from a fresh generation. `DBRT_BLESS=1` rewrites it instead.

use std::path::Path;

#[test]
fn checked_in_header_matches_a_fresh_generation() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let mut fresh = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen")
        .write(&mut fresh);
    let path = crate_dir.join("../include/dbrt.h");
    if std::env::var_os("DBRT_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let current = std::fs::read(&path).unwrap_or_default();
    assert!(
        current == fresh,
        "include/dbrt.h is stale: run `DBRT_BLESS=1 cargo test -p dbrt-ffi --test header`"
    );
}
