//! The feed-forward block: `DebertaV2Intermediate` and `DebertaV2Output`.

use super::layer_norm::LayerNorm;
use super::linear::Linear;
use super::stage::CpuEncoder;
use super::tensors::Tensors;
use super::Config;
use crate::error::Result;

/// `DebertaV2Intermediate` (`intermediate.dense` and the activation) and `DebertaV2Output`
/// (`output.dense`, `output.LayerNorm`).
#[derive(Debug)]
pub(crate) struct FeedForward {
    intermediate: Linear,
    output: Linear,
    norm: LayerNorm,
}

impl FeedForward {
    /// The tensors under a layer's prefix.
    pub fn resolve(t: &Tensors<'_>, c: &Config) -> Result<FeedForward> {
        let (h, i) = (c.hidden_size, c.intermediate_size);
        Ok(FeedForward {
            intermediate: Linear::resolve(&t.pp("intermediate.dense"), i, h, true)?,
            output: Linear::resolve(&t.pp("output.dense"), h, i, true)?,
            norm: LayerNorm::resolve(&t.pp("output.LayerNorm"), h, c.layer_norm_eps)?,
        })
    }

    pub fn linears(&self) -> [&Linear; 2] {
        [&self.intermediate, &self.output]
    }

    /// `hidden[..rows]` = `LayerNorm(dense(act(dense(x))) + x)`, `x` the first `rows` rows of
    /// the attention block's output.
    pub fn forward(&self, cpu: &mut CpuEncoder<'_>, hidden: &mut [f32], rows: usize) {
        let CpuEncoder {
            ex,
            scratch,
            linear,
            ..
        } = cpu;
        let c = ex.config;
        let h = c.hidden_size;
        let x = &scratch.attention_out[..rows * h];
        let inter = &mut scratch.intermediate[..rows * c.intermediate_size];
        // The activation is fused into the linear layer.
        self.intermediate
            .forward(ex, x, rows, inter, Some(c.hidden_act), linear);
        let out = &mut hidden[..rows * h];
        self.output.forward(ex, inter, rows, out, None, linear);
        self.norm.forward(ex, out, Some(x));
    }
}
