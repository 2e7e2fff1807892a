//! The classification head: `ContextPooler` and the classifier `nn.Linear`.

use super::exec::Exec;
use super::linear::Linear;
use super::scratch::ForwardScratch;
use super::tensors::Tensors;
use super::Config;
use crate::error::Result;

/// `ContextPooler` (`pooler.dense`) + the classifier `nn.Linear` (`classifier`).
#[derive(Debug)]
pub(crate) struct Head {
    pooler: Linear,
    classifier: Linear,
}

impl Head {
    /// The tensors under the root, for `labels` outputs.
    pub fn resolve(t: &Tensors<'_>, c: &Config, labels: usize) -> Result<Head> {
        let (h, p) = (c.hidden_size, c.pooler_hidden_size);
        Ok(Head {
            pooler: Linear::resolve(&t.pp("pooler.dense"), p, h, true)?,
            classifier: Linear::resolve(&t.pp("classifier"), labels, p, true)?,
        })
    }

    pub fn layers(&self) -> [&Linear; 2] {
        [&self.pooler, &self.classifier]
    }

    /// The logits of the `[CLS]` row of `s.hidden` (the first `hidden_size` values).
    pub fn forward(&self, ex: &Exec<'_>, s: &mut ForwardScratch, logits: &mut [f32]) {
        let c = ex.config;
        let cls = &s.hidden[..c.hidden_size];
        let act = Some(c.pooler_hidden_act);
        self.pooler
            .forward(ex, cls, 1, &mut s.pooled, act, &mut s.linear);
        self.classifier
            .forward(ex, &s.pooled, 1, logits, None, &mut s.linear);
    }
}
