//! The execution context of a forward pass.

use super::config::Config;
use super::weights::SmmlaWeights;
use crate::kernels::Kernels;
use crate::pool::Pool;

/// What a forward pass runs on and reads: the session's kernel table and threads, the model
/// file's bytes (which every weight handle indexes) and the model's config. Made per run from
/// borrows; it owns nothing.
#[derive(Clone, Copy)]
pub(crate) struct Exec<'a> {
    pub kernels: Kernels,
    pub pool: &'a Pool,
    pub bytes: &'a [u8],
    /// The i8mm repack of the packed weights, when the kernels read it.
    pub smmla: Option<&'a SmmlaWeights>,
    pub config: &'a Config,
}
