//! `DebertaV2Encoder`: the layers, and the relative-position index their attention shares.
//!
//! Input-independent work happened in the converter: the relative embeddings were normalized
//! and projected through the key/query weights (`rel_pos_key`, `rel_pos_query`), and the
//! bucketed relative positions turned into an index table (`rel_pos_index`).

use super::attention::Attention;
use super::feed_forward::FeedForward;
use super::linear::Linear;
use super::stage::CpuEncoder;
use super::tensors::Tensors;
use super::Config;
use crate::error::{Error, Result};

/// `DebertaV2Layer`: attention, then the feed-forward block.
#[derive(Debug)]
pub(crate) struct Layer {
    attention: Attention,
    feed_forward: FeedForward,
}

impl Layer {
    /// The tensors under `deberta.encoder.layer.{l}`.
    fn resolve(t: &Tensors<'_>, c: &Config) -> Result<Layer> {
        Ok(Layer {
            attention: Attention::resolve(&t.pp("attention"), c)?,
            feed_forward: FeedForward::resolve(t, c)?,
        })
    }

    fn linears(&self) -> impl Iterator<Item = &Linear> {
        let [ff_in, ff_out] = self.feed_forward.linears();
        self.attention.linears().into_iter().chain([ff_in, ff_out])
    }

    /// Over the `t` tokens of `hidden` (`[t, hidden_size]`), producing its first `rows` rows
    /// (keys and values always cover all `t`).
    pub fn forward(&self, cpu: &mut CpuEncoder<'_>, hidden: &mut [f32], t: usize, rows: usize) {
        self.attention.forward(cpu, hidden, t, rows);
        self.feed_forward.forward(cpu, hidden, rows);
    }
}

/// `DebertaV2Encoder`.
#[derive(Debug)]
pub(crate) struct Encoder {
    layers: Vec<Layer>,
    rel: Option<RelPositions>,
}

/// The converter's relative-position index: `index[(i - j) + max_len - 1]` is the row of the
/// relative projections for distance `i - j`.
#[derive(Debug, Clone, Copy)]
struct RelPositions {
    offset: usize,
    len: usize,
    /// The longest sequence whose distances all fall in linear buckets (consecutive relative
    /// rows).
    linear_len: usize,
}

impl Encoder {
    /// The tensors under `deberta.encoder`.
    pub fn resolve(t: &Tensors<'_>, c: &Config) -> Result<Encoder> {
        let layers = (0..c.num_hidden_layers)
            .map(|l| Layer::resolve(&t.pp("layer").pp(l), c))
            .collect::<Result<Vec<_>>>()?;
        let rel = match c.relative_attention {
            true => Some(RelPositions::resolve(t, c)?),
            false => None,
        };
        Ok(Encoder { layers, rel })
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Every linear layer of every encoder layer.
    pub fn linears(&self) -> impl Iterator<Item = &Linear> {
        self.layers.iter().flat_map(Layer::linears)
    }

    /// The relative-position index in `bytes` (empty without relative attention).
    pub fn rel_index<'a>(&self, bytes: &'a [u8]) -> &'a [i32] {
        match self.rel {
            Some(r) => bytemuck::cast_slice(&bytes[r.offset..r.offset + 4 * r.len]),
            None => &[],
        }
    }

    /// The longest sequence whose relative rows are consecutive (0 without relative
    /// attention).
    pub fn rel_linear_len(&self) -> usize {
        self.rel.map_or(0, |r| r.linear_len)
    }
}

impl RelPositions {
    /// `rel_pos_index`, checked once so that it can be indexed freely later.
    fn resolve(t: &Tensors<'_>, c: &Config) -> Result<RelPositions> {
        let name = t.name("rel_pos_index");
        let v = t.tensor("rel_pos_index")?;
        let n = 2 * c.max_position_embeddings - 1;
        let idx = v.i32()?;
        if v.record.shape != [n as u64] {
            return Err(Error::TensorShape {
                name,
                expected: vec![n as u64],
                actual: v.record.shape.clone(),
                dtype: "i32",
            });
        }
        // Every entry indexes the relative projections.
        if idx.iter().any(|&i| i < 0 || i as usize >= 2 * c.att_span()) {
            return Err(Error::BadMetadata {
                key: name,
                reason: "index out of range".into(),
            });
        }
        // Buckets grow with the distance (Hugging Face's log buckets, clamped), and the int8
        // attention relies on it: a sequence's relative rows are those between the entries of
        // its extreme distances (`Int8Rel::new`).
        if let Some(at) = idx.windows(2).position(|w| w[0] > w[1]) {
            return Err(Error::BadMetadata {
                key: name,
                reason: format!(
                    "entries {at} and {} decrease: not a relative-position index",
                    at + 1
                ),
            });
        }
        Ok(RelPositions {
            offset: v.record.offset as usize,
            len: n,
            linear_len: linear_len(idx, c.max_position_embeddings),
        })
    }
}

/// The longest `t` for which `index[max_len - t..max_len + t - 1]` (distances -(t-1)..t-1)
/// are consecutive rows.
fn linear_len(index: &[i32], max_len: usize) -> usize {
    let center = max_len - 1;
    let mut t = 1;
    while t < max_len
        && index[center - t] + 1 == index[center - t + 1]
        && index[center + t] == index[center + t - 1] + 1
    {
        t += 1;
    }
    t
}
