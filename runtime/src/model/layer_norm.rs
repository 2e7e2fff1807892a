//! `nn.LayerNorm`.

use super::exec::Exec;
use super::tensors::Tensors;
use super::weights::VecRef;
use crate::error::Result;
use crate::pool::{share, SharedMut};

/// `nn.LayerNorm` with its weight and bias.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerNorm {
    gamma: VecRef,
    beta: VecRef,
    eps: f32,
}

impl LayerNorm {
    /// `{prefix}.weight` and `{prefix}.bias`, `n` values each.
    pub fn resolve(t: &Tensors<'_>, n: usize, eps: f64) -> Result<LayerNorm> {
        Ok(LayerNorm {
            gamma: t.vector("weight", n)?,
            beta: t.vector("bias", n)?,
            eps: eps as f32,
        })
    }

    /// `LayerNorm(x + residual)` in place over the `[rows, n]` rows of `x`, the rows split
    /// across the threads.
    pub fn forward(&self, ex: &Exec<'_>, x: &mut [f32], residual: Option<&[f32]>) {
        let (g, b) = (self.gamma.view(ex.bytes), self.beta.view(ex.bytes));
        let n = self.gamma.len;
        let rows = x.len() / n;
        let x = SharedMut::new(x);
        ex.pool.run(&|ti, tn| {
            let mine = share(rows, ti, tn);
            // SAFETY: rows are split between the threads.
            let part = unsafe { x.slice(mine.start * n..mine.end * n) };
            let res = residual.map(|r| &r[mine.start * n..mine.end * n]);
            (ex.kernels.layer_norm_rows_f32)(part, res, g, b, self.eps);
        });
    }
}
