//! The relative-position constants of an encoder graph (DeBERTa's disentangled attention):
//! the projection rows a length reads, laid out per head, and the gather index into them.

use dbrt::model::export::LayerWeights;
use dbrt::Model;

use super::onnx_builder::Builder;
use crate::error::{ConvertError, Result};

/// The relative-position constants of one length: which projection rows it reads and the
/// gather index into them.
pub(super) struct Relative {
    /// The first row read, and how many (consecutive: the index grows with the distance).
    lo: usize,
    rows: usize,
    heads: usize,
    head_size: usize,
    /// `[1, heads, S, S]` int64: `row(i - j) - lo` for every head.
    pub index: String,
}

/// One layer's relative constants, laid out per head.
pub(super) struct RelLayer {
    /// c2p: `[1, heads, d, R]`.
    pub key_t: Option<String>,
    /// p2c: `[1, heads, R, d]`.
    pub query: Option<String>,
    pub index: String,
}

impl Relative {
    pub fn new(model: &Model, b: &mut Builder, s: usize) -> Result<Option<Relative>> {
        let c = model.config();
        if !c.relative_attention {
            return Ok(None);
        }
        let rows = dbrt::model::export::relative_rows(model, s)?;
        let (Some(&lo), Some(&hi)) = (rows.iter().min(), rows.iter().max()) else {
            return Err(ConvertError::Invalid("no relative rows".into()));
        };
        if hi >= 2 * c.att_span() {
            return Err(ConvertError::Invalid(format!(
                "relative row {hi} outside the {} projections",
                2 * c.att_span()
            )));
        }
        let nh = c.num_attention_heads;
        let mut index = Vec::with_capacity(nh * s * s);
        for _ in 0..nh {
            for i in 0..s {
                index.extend((0..s).map(|j| (rows[i + s - 1 - j] - lo) as i64));
            }
        }
        let index = b.constant_i64("rel_index", &[1, nh, s, s], &index);
        Ok(Some(Relative {
            lo,
            rows: hi - lo + 1,
            heads: nh,
            head_size: c.attention_head_size,
            index,
        }))
    }

    /// Layer `l`'s relative projections as constants, gathered with `index` (this one's, or
    /// its corner a dynamic graph cuts).
    pub fn layer(
        &self,
        b: &mut Builder,
        w: &LayerWeights,
        l: usize,
        index: &str,
    ) -> Result<RelLayer> {
        let mut out = RelLayer {
            key_t: None,
            query: None,
            index: index.to_string(),
        };
        if let Some(k) = &w.rel_key {
            out.key_t = Some(self.per_head(b, k, l, true)?);
        }
        if let Some(q) = &w.rel_query {
            out.query = Some(self.per_head(b, q, l, false)?);
        }
        Ok(out)
    }

    /// Rows `lo..lo + R` of layer `l`'s `[2 · att_span, heads · d]` projection `m` per head:
    /// `[1, heads, d, R]` when `transposed`, else `[1, heads, R, d]`.
    fn per_head(&self, b: &mut Builder, m: &[f32], l: usize, transposed: bool) -> Result<String> {
        let (lo, r, nh, d) = (self.lo, self.rows, self.heads, self.head_size);
        let ah = nh * d;
        if m.len() < (lo + r) * ah {
            return Err(ConvertError::Invalid(format!(
                "layer {l}: a relative projection of {} values has no row {}",
                m.len(),
                lo + r - 1
            )));
        }
        let mut out = Vec::with_capacity(nh * r * d);
        for h in 0..nh {
            match transposed {
                true => {
                    for dd in 0..d {
                        out.extend((lo..lo + r).map(|row| m[row * ah + h * d + dd]));
                    }
                }
                false => {
                    for row in lo..lo + r {
                        out.extend_from_slice(&m[row * ah + h * d..row * ah + (h + 1) * d]);
                    }
                }
            }
        }
        let (hint, dims) = match transposed {
            true => ("rel_key_t", [1, nh, d, r]),
            false => ("rel_query", [1, nh, r, d]),
        };
        Ok(b.weight(hint, &dims, &out))
    }
}
