//! The one error type of the runtime crate, and the status each error reports in every
//! language dbrt is bound to (C's `dbrt_status`, Java's and Python's exceptions).

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

/// The kind of failure an [`Error`] reports across a language boundary. Each value is the
/// number of the C enumerator `DBRT_<name>` (include/dbrt.h), which also has the statuses
/// only the C boundary produces (NULL pointers, small buffers, closed or busy sessions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[repr(i32)]
pub enum Status {
    InvalidArgument = 1,
    InvalidUtf8 = 3,
    InputTooLong = 5,
    EmptyInput = 6,
    InvalidToken = 7,
    BatchTooLarge = 8,
    IoError = 9,
    NotAModel = 10,
    TruncatedFile = 11,
    CorruptFile = 12,
    UnsupportedFormat = 13,
    InvalidModel = 14,
    UnsupportedModel = 15,
    MisalignedBuffer = 16,
    TokenizerError = 17,
    UnsupportedIsa = 18,
    NoEntailmentLabel = 19,
    /// Not an [`Error`]'s: a bug (a panic) caught at a language boundary.
    InternalError = 22,
    OutOfMemory = 23,
    UnknownBackend = 24,
    BackendUnavailable = 25,
    InvalidArtifacts = 26,
    DeviceError = 27,
}

impl Status {
    /// Every status: those an [`Error`] reports, and `InternalError`.
    pub const ALL: [Status; 23] = [
        Status::InvalidArgument,
        Status::InvalidUtf8,
        Status::InputTooLong,
        Status::EmptyInput,
        Status::InvalidToken,
        Status::BatchTooLarge,
        Status::IoError,
        Status::NotAModel,
        Status::TruncatedFile,
        Status::CorruptFile,
        Status::UnsupportedFormat,
        Status::InvalidModel,
        Status::UnsupportedModel,
        Status::MisalignedBuffer,
        Status::TokenizerError,
        Status::UnsupportedIsa,
        Status::NoEntailmentLabel,
        Status::InternalError,
        Status::OutOfMemory,
        Status::UnknownBackend,
        Status::BackendUnavailable,
        Status::InvalidArtifacts,
        Status::DeviceError,
    ];

    /// The C enumerator's name without its `DBRT_` prefix: `INPUT_TOO_LONG`.
    pub fn name(self) -> &'static str {
        match self {
            Status::InvalidArgument => "INVALID_ARGUMENT",
            Status::InvalidUtf8 => "INVALID_UTF8",
            Status::InputTooLong => "INPUT_TOO_LONG",
            Status::EmptyInput => "EMPTY_INPUT",
            Status::InvalidToken => "INVALID_TOKEN",
            Status::BatchTooLarge => "BATCH_TOO_LARGE",
            Status::IoError => "IO_ERROR",
            Status::NotAModel => "NOT_A_MODEL",
            Status::TruncatedFile => "TRUNCATED_FILE",
            Status::CorruptFile => "CORRUPT_FILE",
            Status::UnsupportedFormat => "UNSUPPORTED_FORMAT",
            Status::InvalidModel => "INVALID_MODEL",
            Status::UnsupportedModel => "UNSUPPORTED_MODEL",
            Status::MisalignedBuffer => "MISALIGNED_BUFFER",
            Status::TokenizerError => "TOKENIZER_ERROR",
            Status::UnsupportedIsa => "UNSUPPORTED_ISA",
            Status::NoEntailmentLabel => "NO_ENTAILMENT_LABEL",
            Status::InternalError => "INTERNAL_ERROR",
            Status::OutOfMemory => "OUT_OF_MEMORY",
            Status::UnknownBackend => "UNKNOWN_BACKEND",
            Status::BackendUnavailable => "BACKEND_UNAVAILABLE",
            Status::InvalidArtifacts => "INVALID_ARTIFACTS",
            Status::DeviceError => "DEVICE_ERROR",
        }
    }

    /// The C enumerator's number.
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl Error {
    /// The one status this kind of error reports. Exhaustive on purpose: a new error kind does
    /// not compile until it has a status.
    pub fn status(&self) -> Status {
        match self {
            Error::Io { .. } => Status::IoError,
            Error::BadMagic => Status::NotAModel,
            Error::Truncated { .. } => Status::TruncatedFile,
            Error::ChecksumMismatch { .. }
            | Error::DataChecksumMismatch { .. }
            | Error::CorruptHeader(_)
            | Error::CorruptMetadata(_)
            | Error::CorruptTensorRecord { .. }
            | Error::TensorOutOfBounds { .. }
            | Error::MisalignedTensor { .. } => Status::CorruptFile,
            Error::UnsupportedVersion { .. } | Error::ByteOrder => Status::UnsupportedFormat,
            Error::MissingTensor { .. }
            | Error::TensorShape { .. }
            | Error::TensorDtype { .. }
            | Error::MissingMetadata { .. }
            | Error::BadMetadata { .. }
            | Error::NonFinite { .. } => Status::InvalidModel,
            Error::Unsupported(_) => Status::UnsupportedModel,
            Error::MisalignedBuffer { .. } => Status::MisalignedBuffer,
            Error::Tokenizer(_) => Status::TokenizerError,
            Error::InvalidUtf8 => Status::InvalidUtf8,
            Error::InputTooLong { .. } | Error::WordTooLong { .. } => Status::InputTooLong,
            Error::EmptyInput => Status::EmptyInput,
            Error::InvalidTokenId { .. } | Error::InvalidTokenType { .. } => Status::InvalidToken,
            Error::BatchTooLarge { .. } => Status::BatchTooLarge,
            Error::UnsupportedIsa { .. } => Status::UnsupportedIsa,
            Error::NoEntailmentLabel => Status::NoEntailmentLabel,
            Error::InvalidArgument(_) => Status::InvalidArgument,
            Error::OutOfMemory { .. } => Status::OutOfMemory,
            Error::UnknownBackend(_) => Status::UnknownBackend,
            Error::BackendUnavailable { .. } => Status::BackendUnavailable,
            Error::InvalidArtifacts(_) => Status::InvalidArtifacts,
            Error::Device { .. } => Status::DeviceError,
        }
    }
}
