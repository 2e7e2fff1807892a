//! The one error type of the converter crate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} does not exist ({what})")]
    NotFound { path: PathBuf, what: &'static str },
    #[error(
        "{path} is open in a dbrt process (a model in use); write elsewhere or close it first"
    )]
    InUse { path: PathBuf },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(
        "{input}: tensor '{tensor}' holds {value} at element {index}: weights must be finite{hint}"
    )]
    NonFinite {
        input: PathBuf,
        tensor: String,
        value: f32,
        index: usize,
        /// Why a finite source value became infinite, where it did.
        hint: &'static str,
    },
    #[error(
        "{input}: tensor '{tensor}' holds {value:e} at element {index}: weights must lie within \
         ±{max:e}{hint}",
        max = crate::validate::MAX_WEIGHT
    )]
    WeightTooLarge {
        input: PathBuf,
        tensor: String,
        value: f32,
        index: usize,
        /// Where the value came from, when the converter computed it.
        hint: &'static str,
    },
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("missing tensor '{0}' in the checkpoint")]
    MissingTensor(String),
    #[error("tensor '{name}' has shape {actual:?}, expected {expected:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("no tokenizer found: {0}")]
    NoTokenizer(String),
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error(transparent)]
    Runtime(#[from] dbrt::Error),
}

impl From<dbrt::format::WriteError> for ConvertError {
    fn from(e: dbrt::format::WriteError) -> Self {
        match e {
            dbrt::format::WriteError::Io { path, source } => ConvertError::Write { path, source },
            dbrt::format::WriteError::InUse { path } => ConvertError::InUse { path },
        }
    }
}

pub type Result<T, E = ConvertError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ConvertError + '_ {
    move |source| ConvertError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn parse_err(path: &std::path::Path, message: impl std::fmt::Display) -> ConvertError {
    ConvertError::Parse {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}
