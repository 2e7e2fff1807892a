//! Gives libdbrt.so its SONAME. On Linux it carries the ABI version, `libdbrt.so.N` with N the
//! C API version (`DBRT_API_VERSION` in src/lib.rs, which changes exactly when the ABI breaks),
//! so that programs linked against one ABI do not load another. On Android it is the bare
//! `libdbrt.so`: an APK only ships and loads `lib*.so` names.

use std::env;
use std::fs;

fn main() {
    println!("cargo:rerun-if-changed=src/lib.rs");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let soname = match os.as_str() {
        "linux" => format!("libdbrt.so.{}", api_version()),
        "android" => "libdbrt.so".to_string(),
        _ => return,
    };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
}

/// `N` from `pub const DBRT_API_VERSION: u32 = N;` in src/lib.rs.
fn api_version() -> u32 {
    const DECLARATION: &str = "pub const DBRT_API_VERSION: u32 = ";
    let source = fs::read_to_string("src/lib.rs").expect("ffi/build.rs: cannot read src/lib.rs");
    source
        .lines()
        .find_map(|line| {
            line.strip_prefix(DECLARATION)?
                .strip_suffix(';')?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("ffi/build.rs: src/lib.rs has no line `{DECLARATION}N;`"))
}
