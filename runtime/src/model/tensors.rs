//! A prefix-carrying view over a model file's tensors: each module finds its own tensors by
//! their names under the prefix it is given (as candle's `VarBuilder::pp` does), and every
//! handle is checked once, when the model is opened.

use std::fmt::Display;

use super::weights::{MatRef, PackedRef, VecRef};
use crate::error::Result;
use crate::format::{ModelFile, TensorView};

/// The tensors of `file` whose names start with `prefix` (`""` for the root).
#[derive(Clone)]
pub(crate) struct Tensors<'a> {
    file: &'a ModelFile,
    prefix: String,
}

impl<'a> Tensors<'a> {
    pub fn root(file: &'a ModelFile) -> Tensors<'a> {
        Tensors {
            file,
            prefix: String::new(),
        }
    }

    /// The view one level down: `prefix.part`.
    pub fn pp(&self, part: impl Display) -> Tensors<'a> {
        Tensors {
            file: self.file,
            prefix: self.name(part),
        }
    }

    /// The full name of `leaf` under this prefix.
    pub fn name(&self, leaf: impl Display) -> String {
        match self.prefix.is_empty() {
            true => leaf.to_string(),
            false => format!("{}.{leaf}", self.prefix),
        }
    }

    /// The raw tensor `leaf`.
    pub fn tensor(&self, leaf: &str) -> Result<TensorView<'a>> {
        self.file.tensor(&self.name(leaf))
    }

    /// A `[rows, cols]` row-major matrix `leaf` (float, or int8 / int4 with row scales).
    pub fn matrix(&self, leaf: &str, rows: usize, cols: usize) -> Result<MatRef> {
        MatRef::resolve(self.file, &self.name(leaf), rows, cols)
    }

    /// A packed int8 `[rows, cols]` matrix `leaf`; `None` when it is stored row-major.
    pub fn packed(&self, leaf: &str, rows: usize, cols: usize) -> Result<Option<PackedRef>> {
        PackedRef::resolve(self.file, &self.name(leaf), rows, cols)
    }

    /// An f32 vector `leaf` of `len` values.
    pub fn vector(&self, leaf: &str, len: usize) -> Result<VecRef> {
        VecRef::resolve(self.file, &self.name(leaf), len)
    }
}
