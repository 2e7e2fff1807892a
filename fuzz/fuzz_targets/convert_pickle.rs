//! Arbitrary bytes as the pickle (`data.pkl`) of the tiny fixture's torch `pytorch_model.bin`:
//! the zip archive is rebuilt around it with the fixture's tensor storages (raw bytes would
//! mostly break the archive's checksums), then converted.
#![no_main]

use std::io::{Read, Write};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

dbrt_fuzz::fuzz_setup!();

/// The fixture archive's members other than data.pkl (name, bytes), and the pickle's name.
type Members = (Vec<(String, Vec<u8>)>, String);

fn members() -> &'static Members {
    static M: OnceLock<Members> = OnceLock::new();
    M.get_or_init(|| {
        let p = dbrt_fuzz::tiny_fixture("v3-style-pytorch-bin").join("pytorch_model.bin");
        let mut z = zip::ZipArchive::new(std::fs::File::open(p).expect("fixture")).expect("zip");
        let mut out = Vec::new();
        let mut pkl = String::new();
        for i in 0..z.len() {
            let mut f = z.by_index(i).expect("member");
            let name = f.name().to_string();
            if name.ends_with("data.pkl") {
                pkl = name;
                continue;
            }
            let mut b = Vec::new();
            f.read_to_end(&mut b).expect("read member");
            out.push((name, b));
        }
        (out, pkl)
    })
}

fuzz_target!(|data: &[u8]| {
    dbrt_fuzz::init();
    let dir = dbrt_fuzz::fixture_dir("v3-style-pytorch-bin");
    let (rest, pkl) = members();
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        // Stored and 64-byte aligned, as torch.save writes them (the converter reads the
        // storages in place).
        let opts =
            zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
        z.start_file_aligned(pkl.as_str(), opts, 64).expect("zip");
        z.write_all(data).expect("zip");
        for (name, b) in rest {
            z.start_file_aligned(name.as_str(), opts, 64).expect("zip");
            z.write_all(b).expect("zip");
        }
        z.finish().expect("zip");
    }
    std::fs::write(dir.join("pytorch_model.bin"), buf.into_inner()).expect("scratch write");
    dbrt_fuzz::convert_and_check(&dir, &Default::default());
});
