//! Text → token ids. For now the `tokenizers` crate runs the `tokenizer.json` carried inside the
//! model file; a tokenizer compiled into the file replaces it (issue 3).

use crate::error::{Error, Result};

/// Name of the U8 tensor that holds the tokenizer.json bytes.
pub const TOKENIZER_TENSOR: &str = "tokenizer.json";

/// Token ids (and token type ids) of one encoded text or pair.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encoding {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
}

/// A Hugging Face tokenizer with padding off and `longest_first` truncation at the model's
/// maximum length, whatever the tokenizer.json had baked in.
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    max_len: usize,
}

fn tok_err(e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(e.to_string())
}

impl TextTokenizer {
    pub fn from_json_bytes(bytes: &[u8], max_len: usize) -> Result<TextTokenizer> {
        let mut inner = tokenizers::Tokenizer::from_bytes(bytes).map_err(tok_err)?;
        inner.with_padding(None);
        inner
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: max_len,
                strategy: tokenizers::TruncationStrategy::LongestFirst,
                stride: 0,
                direction: tokenizers::TruncationDirection::Right,
            }))
            .map_err(tok_err)?;
        Ok(TextTokenizer { inner, max_len })
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Encodes `[CLS] a [SEP]` or, with `b`, `[CLS] a [SEP] b [SEP]`.
    pub fn encode(&self, a: &str, b: Option<&str>) -> Result<Encoding> {
        let e = match b {
            Some(b) => self.inner.encode((a, b), true),
            None => self.inner.encode(a, true),
        }
        .map_err(tok_err)?;
        Ok(Encoding {
            ids: e.get_ids().to_vec(),
            type_ids: e.get_type_ids().to_vec(),
        })
    }

    /// Like [`TextTokenizer::encode`] for raw bytes, which must be UTF-8.
    pub fn encode_bytes(&self, a: &[u8], b: Option<&[u8]>) -> Result<Encoding> {
        let a = std::str::from_utf8(a).map_err(|_| Error::InvalidUtf8)?;
        let b = b
            .map(std::str::from_utf8)
            .transpose()
            .map_err(|_| Error::InvalidUtf8)?;
        self.encode(a, b)
    }
}
