//! The one error type of the runtime crate. Each variant maps to one C status in `dbrt-ffi`.

use std::path::PathBuf;

/// Everything that can go wrong when opening a `.dbrt` file or running a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("file is truncated: {what} needs {needed} bytes, the file has {actual}")]
    Truncated {
        what: &'static str,
        needed: u64,
        actual: u64,
    },
    #[error("not a .dbrt file (bad magic)")]
    BadMagic,
    #[error("unsupported .dbrt format version {major}.{minor} (this runtime reads {supported}.x)")]
    UnsupportedVersion {
        major: u16,
        minor: u16,
        supported: u16,
    },
    #[error("the file was written with a byte order this runtime does not read")]
    ByteOrder,
    #[error("header or tables checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the file is corrupt")]
    ChecksumMismatch { stored: u32, computed: u32 },
    #[error("tensor data checksum mismatch in '{tensor}': the file is corrupt")]
    DataChecksumMismatch { tensor: String },
    #[error("corrupt header: {0}")]
    CorruptHeader(String),
    #[error("corrupt metadata: {0}")]
    CorruptMetadata(String),
    #[error("corrupt tensor record {index}: {reason}")]
    CorruptTensorRecord { index: u64, reason: String },
    #[error("tensor '{name}' lies outside the data section")]
    TensorOutOfBounds { name: String },
    #[error("tensor '{name}' is not aligned for its dtype")]
    MisalignedTensor { name: String },
    #[error("the model buffer must start on a {required}-byte boundary")]
    MisalignedBuffer { required: usize },
    #[error("missing tensor '{name}'")]
    MissingTensor { name: String },
    #[error("tensor '{name}' has shape {actual:?} and dtype {dtype}, expected shape {expected:?}")]
    TensorShape {
        name: String,
        expected: Vec<u64>,
        actual: Vec<u64>,
        dtype: &'static str,
    },
    #[error("tensor '{name}' has dtype {dtype}, which cannot be used there")]
    TensorDtype { name: String, dtype: &'static str },
    #[error("missing metadata key '{key}'")]
    MissingMetadata { key: String },
    #[error("metadata key '{key}' has the wrong type or value: {reason}")]
    BadMetadata { key: String, reason: String },
    #[error("unsupported model: {0}")]
    Unsupported(String),
    #[error("tokenizer error: {0}")]
    Tokenizer(String),
    #[error("input is not valid UTF-8")]
    InvalidUtf8,
    #[error("input of {len} tokens exceeds the maximum of {max}")]
    InputTooLong { len: usize, max: usize },
    #[error(
        "a word of more than {max} bytes (SessionOptions::max_word_bytes) after normalization"
    )]
    WordTooLong { max: usize },
    #[error("empty input: a sequence needs at least one token")]
    EmptyInput,
    #[error("token id {id} is outside the vocabulary of {vocab}")]
    InvalidTokenId { id: i64, vocab: usize },
    #[error("token type id {id} is outside the {types} token types")]
    InvalidTokenType { id: i64, types: usize },
    #[error("batch of {len} sequences exceeds the session maximum of {max}")]
    BatchTooLarge { len: usize, max: usize },
    #[error("this CPU cannot run the {isa} kernels")]
    UnsupportedIsa { isa: &'static str },
    #[error("the model's labels name no entailment label: set one in the session options")]
    NoEntailmentLabel,
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A run produced infinities or NaNs: the model's weights are finite but overflow f32
    /// on this input (a usable model never does; the converter checks weights one by one).
    #[error("the model's {what} are not finite on this input: its weights overflow f32")]
    NonFinite { what: &'static str },
    #[error("cannot allocate {bytes} bytes for {what}")]
    OutOfMemory { what: &'static str, bytes: u64 },
    #[error("no backend named '{0}' (cpu, auto, qnn, ort-cpu)")]
    UnknownBackend(String),
    /// The backend's libraries are absent or do not load, or it finds no device.
    #[error("backend {backend} is unavailable: {reason}")]
    BackendUnavailable {
        backend: &'static str,
        reason: String,
    },
    /// An artifact directory that is missing, corrupt or exported from another model.
    #[error("invalid encoder artifacts: {0}")]
    InvalidArtifacts(String),
    /// The device failed during a run (and the session's policy is not to fall back).
    #[error("the {backend} device failed: {message}")]
    Device {
        backend: &'static str,
        message: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
