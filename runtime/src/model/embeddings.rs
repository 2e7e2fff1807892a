//! `DebertaV2Embeddings`: token ids to the encoder's input hidden states.

use super::exec::Exec;
use super::layer_norm::LayerNorm;
use super::linear::Linear;
use super::scratch::ForwardScratch;
use super::tensors::Tensors;
use super::weights::MatRef;
use super::Config;
use crate::error::Result;
use crate::kernels::scalar;

/// `DebertaV2Embeddings`.
#[derive(Debug)]
pub(crate) struct Embeddings {
    word: MatRef,
    position: Option<MatRef>,
    token_type: Option<MatRef>,
    embed_proj: Option<Linear>,
    norm: LayerNorm,
}

impl Embeddings {
    /// The tensors under `deberta.embeddings`.
    pub fn resolve(t: &Tensors<'_>, c: &Config) -> Result<Embeddings> {
        let (h, e) = (c.hidden_size, c.embedding_size);
        Ok(Embeddings {
            word: t.matrix("word_embeddings.weight", c.vocab_size, e)?,
            position: match c.position_biased_input {
                true => {
                    Some(t.matrix("position_embeddings.weight", c.max_position_embeddings, e)?)
                }
                false => None,
            },
            token_type: match c.type_vocab_size {
                0 => None,
                n => Some(t.matrix("token_type_embeddings.weight", n, e)?),
            },
            embed_proj: match e != h {
                true => Some(Linear::resolve(&t.pp("embed_proj"), h, e, false)?),
                false => None,
            },
            norm: LayerNorm::resolve(&t.pp("LayerNorm"), h, c.layer_norm_eps)?,
        })
    }

    pub fn embed_proj(&self) -> Option<&Linear> {
        self.embed_proj.as_ref()
    }

    /// The hidden states of `ids` (with their token `types`) into `s.hidden[..t * hidden]`,
    /// after the LayerNorm. Ids and types were checked against the vocabularies.
    pub fn forward(
        &self,
        ex: &Exec<'_>,
        ids: &[u32],
        types: Option<&[u32]>,
        s: &mut ForwardScratch,
    ) {
        let t = ids.len();
        let (h, e) = (ex.config.hidden_size, ex.config.embedding_size);
        let word = self.word.view(ex.bytes);
        let pos = self.position.map(|m| m.view(ex.bytes));
        let typ = self.token_type.map(|m| m.view(ex.bytes));
        let row = &mut s.linear.row[..s.linear.widest];
        let target = match self.embed_proj {
            Some(_) => &mut s.embedded[..t * e],
            None => &mut s.hidden[..t * h],
        };
        for (i, out) in target.chunks_exact_mut(e).enumerate() {
            out.copy_from_slice(word.row(ids[i] as usize, e, row));
            if let Some(p) = &pos {
                scalar::axpy(1.0, p.row(i, e, row), out);
            }
            if let (Some(tt), Some(types)) = (&typ, types) {
                scalar::axpy(1.0, tt.row(types[i] as usize, e, row), out);
            }
        }
        let hidden = &mut s.hidden[..t * h];
        if let Some(proj) = &self.embed_proj {
            proj.forward(ex, &s.embedded[..t * e], t, hidden, None, &mut s.linear);
        }
        self.norm.forward(ex, hidden, None);
    }
}
