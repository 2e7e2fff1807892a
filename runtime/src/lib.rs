//! dbrt: an on-device inference runtime for DeBERTa-v3 models.
//!
//! Open a `.dbrt` file (written by `dbrt-convert`) with [`Model::open`], share it through an
//! `Arc`, and run it through a [`Session`] per thread:
//!
//! ```no_run
//! use std::sync::Arc;
//! let model = Arc::new(dbrt::Model::open("models/aegis-nli-xsmall.dbrt")?);
//! let mut session = dbrt::Session::new(model.clone(), Default::default())?;
//! let probs = session.classify("A man plays a guitar.", Some("A person makes music."))?;
//! for (label, p) in model.labels().iter().zip(probs) {
//!     println!("{label}: {p:.4}");
//! }
//! # Ok::<(), dbrt::Error>(())
//! ```

pub mod boundary;
pub mod error;
pub mod format;
pub mod kernels;
mod memory;
pub mod model;
pub mod offload;
mod pool;
pub mod session;
pub mod tokenizer;

pub use error::{Error, Result, Status};
pub use model::config::Config;
pub use model::{Model, WeightType};
pub use session::{
    softmax, PanicPoint, Sequence, Session, SessionOptions, DEFAULT_HYPOTHESIS_TEMPLATE,
    DEFAULT_MAX_WORD_BYTES,
};
pub use tokenizer::{Encoding, Truncation};

/// The runtime's version, from Cargo.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
