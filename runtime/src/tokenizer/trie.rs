//! The vocabulary trie, compiled by the converter: nodes with sorted outgoing edges, viewed in
//! place. `edge_start[n]..edge_start[n + 1]` are node `n`'s edges; `labels`/`targets` give each
//! edge's byte and child; `values[n]` is the piece id ending at `n`, or -1.

use crate::error::{Error, Result};

/// Longest piece, in bytes. SentencePiece's pieces are at most 16 characters (64 bytes) by
/// default; the bound keeps a forged trie from making each position of a word cost a walk as
/// long as the word.
pub const MAX_PIECE_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy)]
pub(crate) struct PieceTrie<'a> {
    edge_start: &'a [u32],
    labels: &'a [u8],
    targets: &'a [u32],
    values: &'a [i32],
}

impl<'a> PieceTrie<'a> {
    /// Views the tables without checking them: only for tables [`PieceTrie::validate`] passed.
    pub fn view(
        edge_start: &'a [u32],
        labels: &'a [u8],
        targets: &'a [u32],
        values: &'a [i32],
    ) -> Self {
        PieceTrie {
            edge_start,
            labels,
            targets,
            values,
        }
    }

    /// Checks everything a walk relies on, once, when the model is opened.
    pub fn validate(
        edge_start: &'a [u32],
        labels: &'a [u8],
        targets: &'a [u32],
        values: &'a [i32],
        vocab: usize,
    ) -> Result<Self> {
        let bad = |m: &str| Error::Tokenizer(format!("vocabulary trie: {m}"));
        let nodes = values.len();
        if nodes == 0 || edge_start.len() != nodes + 1 || labels.len() != targets.len() {
            return Err(bad("table sizes"));
        }
        if edge_start[0] != 0
            || edge_start[nodes] as usize != labels.len()
            || edge_start.windows(2).any(|w| w[0] > w[1])
        {
            return Err(bad("edge ranges"));
        }
        // Children lie after their parent (the converter numbers nodes breadth first), so every
        // walk terminates, and a node's depth is known before its children are reached; labels
        // are sorted within a node for the binary search.
        let mut depth = Vec::new();
        depth
            .try_reserve_exact(nodes)
            .map_err(|_| Error::OutOfMemory {
                what: "tokenizer trie check",
                bytes: nodes as u64 * 2,
            })?;
        depth.resize(nodes, 0u16);
        for n in 0..nodes {
            let (s, e) = (edge_start[n] as usize, edge_start[n + 1] as usize);
            if targets[s..e]
                .iter()
                .any(|&t| t as usize <= n || t as usize >= nodes)
                || labels[s..e].windows(2).any(|w| w[0] >= w[1])
            {
                return Err(bad("edges"));
            }
            let d = depth[n] + 1;
            if s < e && d as usize > MAX_PIECE_BYTES {
                return Err(bad(&format!("a piece longer than {MAX_PIECE_BYTES} bytes")));
            }
            for &t in &targets[s..e] {
                depth[t as usize] = depth[t as usize].max(d);
            }
        }
        if values.iter().any(|&v| v < -1 || v >= vocab as i32) {
            return Err(bad("piece ids"));
        }
        Ok(PieceTrie {
            edge_start,
            labels,
            targets,
            values,
        })
    }

    /// Indexing is checked although [`PieceTrie::validate`] made it unnecessary: tables viewed
    /// in the wrong bytes must not panic either.
    #[inline]
    fn child(&self, node: usize, byte: u8) -> Option<usize> {
        let (s, e) = (
            *self.edge_start.get(node)? as usize,
            *self.edge_start.get(node + 1)? as usize,
        );
        let i = self.labels.get(s..e)?.binary_search(&byte).ok()?;
        self.targets.get(s + i).map(|&t| t as usize)
    }

    #[inline]
    fn value(&self, node: usize) -> Option<u32> {
        self.values.get(node).and_then(|&v| u32::try_from(v).ok())
    }

    /// Calls `f(length, piece_id)` for every piece that is a prefix of `bytes`, shortest first.
    #[inline]
    pub fn common_prefixes(&self, bytes: &[u8], mut f: impl FnMut(usize, u32)) {
        let mut node = 0;
        for (i, &b) in bytes.iter().enumerate() {
            match self.child(node, b) {
                Some(n) => node = n,
                None => return,
            }
            if let Some(v) = self.value(node) {
                f(i + 1, v);
            }
        }
    }

    /// The id of the piece equal to `bytes`.
    pub fn exact(&self, bytes: &[u8]) -> Option<u32> {
        let mut node = 0;
        for &b in bytes {
            node = self.child(node, b)?;
        }
        self.value(node)
    }
}
