//! The model configuration as stored in a `.dbrt` file's metadata (`deberta.*` keys), decoded
//! into types. It mirrors the fields of Hugging Face's `DebertaV2Config` that change the
//! computation: <https://github.com/huggingface/transformers/blob/main/src/transformers/models/deberta_v2/configuration_deberta_v2.py>

use crate::error::{Error, Result};
use crate::format::{MetaValue, Metadata};

/// Activation functions, as named by Hugging Face's `ACT2FN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `gelu`: exact, `x/2 * (1 + erf(x/√2))`.
    Gelu,
    /// `gelu_new`, `gelu_pytorch_tanh`: the tanh approximation.
    GeluTanh,
    Relu,
    Tanh,
}

impl Activation {
    pub fn parse(name: &str) -> Option<Activation> {
        Some(match name {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            "tanh" => Activation::Tanh,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Activation::Gelu => "gelu",
            Activation::GeluTanh => "gelu_new",
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
        }
    }
}

/// Which disentangled-attention terms a model uses (`pos_att_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PosAttention {
    /// content → position: query against relative-position keys.
    pub c2p: bool,
    /// position → content: key against relative-position queries.
    pub p2c: bool,
}

impl PosAttention {
    pub fn parse(items: &[String]) -> Result<PosAttention> {
        let mut p = PosAttention::default();
        for it in items {
            match it.as_str() {
                "c2p" => p.c2p = true,
                "p2c" => p.p2c = true,
                other => {
                    return Err(Error::Unsupported(format!(
                        "pos_att_type '{other}' (dbrt knows c2p and p2c)"
                    )))
                }
            }
        }
        Ok(p)
    }
    pub fn names(self) -> Vec<String> {
        let mut v = Vec::new();
        if self.p2c {
            v.push("p2c".to_string());
        }
        if self.c2p {
            v.push("c2p".to_string());
        }
        v
    }
    /// `scale_factor` of Hugging Face's `DisentangledSelfAttention`: 1 + number of terms.
    pub fn scale_factor(self) -> usize {
        1 + self.c2p as usize + self.p2c as usize
    }
}

/// `norm_rel_ebd`: whether the relative embeddings pass the encoder's LayerNorm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelEmbeddingNorm {
    None,
    LayerNorm,
}

/// Everything about a DeBERTa-v2/v3 model that changes the computation.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub attention_head_size: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    /// 0: no token types.
    pub type_vocab_size: usize,
    /// Width of the embedding tables; ≠ hidden_size means an `embed_proj`.
    pub embedding_size: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: Activation,
    /// Absolute position embeddings added to the input (`position_biased_input`).
    pub position_biased_input: bool,
    pub relative_attention: bool,
    pub pos_att: PosAttention,
    pub share_att_key: bool,
    pub norm_rel_ebd: RelEmbeddingNorm,
    /// As in the Hugging Face config (-1: use max_position_embeddings).
    pub max_relative_positions: i64,
    /// As in the Hugging Face config (≤ 0: no log bucketing).
    pub position_buckets: i64,
    pub pooler_hidden_size: usize,
    pub pooler_hidden_act: Activation,
    /// 0 for a bare encoder without a classification head.
    pub num_labels: usize,
    pub pad_token_id: u32,
}

/// Bounds on the sizes a file states (docs/FORMAT.md lists them). Sizes that tensors tie down
/// are checked against the tensors too; these bound the ones no tensor ties (all heads' width
/// in a model without layers, `att_span` without relative attention), so that no session size
/// derived from metadata is unbounded. Every DeBERTa published is far inside them (xxlarge:
/// hidden 1536, intermediate 6144, 512 positions, 256 buckets).
pub const MAX_WIDTH: u64 = 1 << 16;
/// Bound on `intermediate_size`.
pub const MAX_INTERMEDIATE: u64 = 1 << 18;
/// Bound on `max_position_embeddings`, `position_buckets` and `max_relative_positions`.
pub const MAX_POSITIONS: u64 = 1 << 16;

impl Config {
    /// `att_span` of Hugging Face's attention: the relative-embedding table has `2 * att_span`
    /// rows.
    pub fn att_span(&self) -> usize {
        if self.position_buckets > 0 {
            self.position_buckets as usize
        } else if self.max_relative_positions >= 1 {
            self.max_relative_positions as usize
        } else {
            self.max_position_embeddings
        }
    }

    /// `max_relative_positions` as the encoder resolves it.
    pub fn resolved_max_relative_positions(&self) -> usize {
        if self.max_relative_positions >= 1 {
            self.max_relative_positions as usize
        } else {
            self.max_position_embeddings
        }
    }

    pub fn all_head_size(&self) -> usize {
        self.num_attention_heads * self.attention_head_size
    }

    /// Checks the relations between fields that the computation relies on.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Unsupported(m));
        if self.hidden_size == 0 || self.num_attention_heads == 0 || self.attention_head_size == 0 {
            return bad("zero hidden size or heads".into());
        }
        if self.vocab_size == 0 || self.max_position_embeddings == 0 || self.intermediate_size == 0
        {
            return bad("zero vocabulary, positions or intermediate size".into());
        }
        if self.embedding_size == 0 || self.pooler_hidden_size == 0 && self.num_labels > 0 {
            return bad("zero embedding or pooler size".into());
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps < 1.0) {
            return bad(format!("layer_norm_eps {}", self.layer_norm_eps));
        }
        if self.relative_attention && !self.pos_att.c2p && !self.pos_att.p2c {
            return bad("relative attention without c2p or p2c".into());
        }
        if self
            .num_attention_heads
            .checked_mul(self.attention_head_size)
            .is_none_or(|w| w as u64 > MAX_WIDTH)
        {
            return bad(format!(
                "{} heads of {} (all heads wider than {MAX_WIDTH})",
                self.num_attention_heads, self.attention_head_size
            ));
        }
        if self.position_buckets > MAX_POSITIONS as i64
            || self.max_relative_positions > MAX_POSITIONS as i64
        {
            return bad(format!(
                "position_buckets {} / max_relative_positions {} (at most {MAX_POSITIONS})",
                self.position_buckets, self.max_relative_positions
            ));
        }
        if self.pad_token_id as usize >= self.vocab_size {
            return bad(format!(
                "pad_token_id {} outside the vocabulary",
                self.pad_token_id
            ));
        }
        Ok(())
    }

    /// Writes the config as `deberta.*` metadata.
    pub fn to_metadata(&self, m: &mut Metadata) {
        let u = |v: usize| MetaValue::U64(v as u64);
        m.set("deberta.vocab_size", u(self.vocab_size));
        m.set("deberta.hidden_size", u(self.hidden_size));
        m.set("deberta.num_hidden_layers", u(self.num_hidden_layers));
        m.set("deberta.num_attention_heads", u(self.num_attention_heads));
        m.set("deberta.attention_head_size", u(self.attention_head_size));
        m.set("deberta.intermediate_size", u(self.intermediate_size));
        m.set(
            "deberta.max_position_embeddings",
            u(self.max_position_embeddings),
        );
        m.set("deberta.type_vocab_size", u(self.type_vocab_size));
        m.set("deberta.embedding_size", u(self.embedding_size));
        m.set(
            "deberta.layer_norm_eps",
            MetaValue::F64(self.layer_norm_eps),
        );
        m.set(
            "deberta.hidden_act",
            MetaValue::Str(self.hidden_act.name().into()),
        );
        m.set(
            "deberta.position_biased_input",
            MetaValue::Bool(self.position_biased_input),
        );
        m.set(
            "deberta.relative_attention",
            MetaValue::Bool(self.relative_attention),
        );
        m.set(
            "deberta.pos_att_type",
            MetaValue::StrList(self.pos_att.names()),
        );
        m.set("deberta.share_att_key", MetaValue::Bool(self.share_att_key));
        let norm = match self.norm_rel_ebd {
            RelEmbeddingNorm::None => "none",
            RelEmbeddingNorm::LayerNorm => "layer_norm",
        };
        m.set("deberta.norm_rel_ebd", MetaValue::Str(norm.into()));
        m.set(
            "deberta.max_relative_positions",
            MetaValue::I64(self.max_relative_positions),
        );
        m.set(
            "deberta.position_buckets",
            MetaValue::I64(self.position_buckets),
        );
        m.set("deberta.pooler_hidden_size", u(self.pooler_hidden_size));
        m.set(
            "deberta.pooler_hidden_act",
            MetaValue::Str(self.pooler_hidden_act.name().into()),
        );
        m.set("deberta.num_labels", u(self.num_labels));
        m.set("deberta.pad_token_id", u(self.pad_token_id as usize));
    }

    /// Reads `deberta.*` metadata back.
    pub fn from_metadata(m: &Metadata) -> Result<Config> {
        let act = |key: &str| -> Result<Activation> {
            let s = m.str(key)?;
            Activation::parse(s).ok_or_else(|| Error::Unsupported(format!("{key} '{s}'")))
        };
        let norm = match m.str("deberta.norm_rel_ebd")? {
            "none" => RelEmbeddingNorm::None,
            "layer_norm" => RelEmbeddingNorm::LayerNorm,
            s => return Err(Error::Unsupported(format!("norm_rel_ebd '{s}'"))),
        };
        let c = Config {
            vocab_size: m.usize_in("deberta.vocab_size", 1..=1 << 24)?,
            hidden_size: m.usize_in("deberta.hidden_size", 1..=MAX_WIDTH)?,
            num_hidden_layers: m.usize_in("deberta.num_hidden_layers", 0..=1024)?,
            num_attention_heads: m.usize_in("deberta.num_attention_heads", 1..=1024)?,
            attention_head_size: m.usize_in("deberta.attention_head_size", 1..=MAX_WIDTH)?,
            intermediate_size: m.usize_in("deberta.intermediate_size", 1..=MAX_INTERMEDIATE)?,
            max_position_embeddings: m
                .usize_in("deberta.max_position_embeddings", 1..=MAX_POSITIONS)?,
            type_vocab_size: m.usize_in("deberta.type_vocab_size", 0..=1 << 16)?,
            embedding_size: m.usize_in("deberta.embedding_size", 1..=MAX_WIDTH)?,
            layer_norm_eps: m.f64("deberta.layer_norm_eps")?,
            hidden_act: act("deberta.hidden_act")?,
            position_biased_input: m.bool("deberta.position_biased_input")?,
            relative_attention: m.bool("deberta.relative_attention")?,
            pos_att: PosAttention::parse(m.str_list("deberta.pos_att_type")?)?,
            share_att_key: m.bool("deberta.share_att_key")?,
            norm_rel_ebd: norm,
            max_relative_positions: m.i64("deberta.max_relative_positions")?,
            position_buckets: m.i64("deberta.position_buckets")?,
            pooler_hidden_size: m.usize_in("deberta.pooler_hidden_size", 0..=MAX_WIDTH)?,
            pooler_hidden_act: act("deberta.pooler_hidden_act")?,
            num_labels: m.usize_in("deberta.num_labels", 0..=1 << 16)?,
            pad_token_id: m.usize_in("deberta.pad_token_id", 0..=u32::MAX as u64)? as u32,
        };
        c.validate()?;
        Ok(c)
    }
}

/// Hugging Face's `make_log_bucket_position` for one relative distance, in f32 as torch
/// computes it. <https://github.com/huggingface/transformers/blob/main/src/transformers/models/deberta_v2/modeling_deberta_v2.py>
pub fn log_bucket_position(relative_pos: i64, bucket_size: i64, max_position: i64) -> i64 {
    let sign = relative_pos.signum();
    let mid = bucket_size / 2;
    let abs_pos = if relative_pos < mid && relative_pos > -mid {
        mid - 1
    } else {
        relative_pos.abs()
    };
    if abs_pos <= mid {
        return relative_pos;
    }
    let log_pos = ((abs_pos as f32 / mid as f32).ln()
        / ((max_position - 1) as f32 / mid as f32).ln()
        * (mid - 1) as f32)
        .ceil()
        + mid as f32;
    log_pos as i64 * sign
}

/// The index into the relative-position projections for every distance `i - j` with
/// `|i - j| < max_len`: entry `(i - j) + max_len - 1` holds
/// `clamp(bucket(i - j) + att_span, 0, 2 * att_span - 1)`. It serves c2p and p2c alike, since
/// buckets are odd in the distance. Computed by the converter, stored in the file.
pub fn relative_position_index(config: &Config, max_len: usize) -> Vec<i32> {
    let span = config.att_span() as i64;
    let buckets = config.position_buckets;
    let max_rel = config.resolved_max_relative_positions() as i64;
    let n = max_len as i64;
    (-(n - 1)..n)
        .map(|d| {
            let r = if buckets > 0 && max_rel > 0 {
                log_bucket_position(d, buckets, max_rel)
            } else {
                d
            };
            (r + span).clamp(0, 2 * span - 1) as i32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_buckets_match_hf_rules() {
        // Within ±mid the distance is kept; beyond, it grows logarithmically and stays odd.
        for d in -128..=128 {
            assert_eq!(log_bucket_position(d, 256, 512), d);
        }
        for d in 129..512 {
            let b = log_bucket_position(d, 256, 512);
            assert!(b > 128 && b <= 255, "{d} -> {b}");
            assert_eq!(log_bucket_position(-d, 256, 512), -b);
            assert!(b >= log_bucket_position(d - 1, 256, 512));
        }
        assert_eq!(log_bucket_position(511, 256, 512), 255);
    }
}
