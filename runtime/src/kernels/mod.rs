//! Compute kernels. `scalar` is the reference every faster tier is tested against. A
//! [`Kernels`] table starts from the scalar entries and is overwritten by the best the CPU
//! offers (or by the tier `DBRT_FORCE_ISA` / the session options force); the choice is made once
//! per session and logged.

/// Runs `$body` with the const `$M` equal to the row count `$m`, 1 to [`MR`]: the SIMD bodies
/// take their rows as a const generic so that their accumulators stay in registers. Entry
/// points have checked `m ≤ MR`; no rows run nothing.
macro_rules! by_rows {
    ($m:expr, $M:ident => $body:expr) => {
        by_rows!(@counts $m, $M => $body; 1, 2, 3, 4)
    };
    (@counts $m:expr, $M:ident => $body:expr; $($n:literal),*) => {
        match $m {
            $($n => {
                const $M: usize = $n;
                $body
            })*
            _ => {}
        }
    };
}
// by_rows! lists the row counts 1 to MR.
const _: () = assert!(MR == 4);

#[macro_use]
mod lanes;
#[macro_use]
mod f32_bodies;

#[cfg(target_arch = "aarch64")]
mod aarch64;
pub mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86_64;

use crate::error::{Error, Result};
pub use scalar::{MR, NR, QBLOCK};

/// An instruction-set tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Portable Rust, the reference.
    Scalar,
    /// x86_64 AVX2.
    Avx2,
    /// x86_64 AVX-512 (F, BW) with VNNI for the int8 GEMM; AVX2 for the rest.
    Avx512Vnni,
    /// aarch64 Advanced SIMD.
    Neon,
    /// aarch64 Advanced SIMD with the dot-product extension (`sdot`).
    NeonDotprod,
    /// aarch64 with the int8 matrix multiply extension (`smmla`) for the int8 GEMM, on top of
    /// `NeonDotprod`.
    NeonI8mm,
}

impl Isa {
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512Vnni => "avx512vnni",
            Isa::Neon => "neon",
            Isa::NeonDotprod => "neon-dotprod",
            Isa::NeonI8mm => "neon-i8mm",
        }
    }

    pub fn parse(s: &str) -> Result<Isa> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "scalar" => Isa::Scalar,
            "avx2" => Isa::Avx2,
            "avx512" | "avx512vnni" => Isa::Avx512Vnni,
            "neon" => Isa::Neon,
            "neon-dotprod" | "dotprod" => Isa::NeonDotprod,
            "neon-i8mm" | "i8mm" => Isa::NeonI8mm,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown ISA '{other}' (scalar, avx2, avx512vnni, neon, neon-dotprod, \
                     neon-i8mm)"
                )))
            }
        })
    }

    /// Whether this CPU can run the tier.
    pub fn available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                Isa::Avx2.available()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[cfg(target_arch = "aarch64")]
            Isa::NeonDotprod => {
                std::arch::is_aarch64_feature_detected!("neon")
                    && std::arch::is_aarch64_feature_detected!("dotprod")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::NeonI8mm => {
                Isa::NeonDotprod.available() && std::arch::is_aarch64_feature_detected!("i8mm")
            }
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Every tier of every architecture, each architecture's best last.
    pub const ALL: [Isa; 6] = [
        Isa::Scalar,
        Isa::Avx2,
        Isa::Avx512Vnni,
        Isa::Neon,
        Isa::NeonDotprod,
        Isa::NeonI8mm,
    ];

    /// Every tier this CPU runs, best last.
    pub fn all_available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.available()).collect()
    }
}

/// How a [`Panel`]'s weights are laid out, and which layout a tier's GEMM kernels read
/// ([`Kernels::weights`]). A kernel handed a layout it does not read panics (a bug, not input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightLayout {
    /// The file's layouts (`format::Layout::I8Panel8x4` / `I8Panel16x4`): groups of four
    /// inputs, each output's four bytes contiguous.
    Group4,
    /// The i8mm tier's repacked copy (`format::pack::repack_smmla`): per eight inputs, each
    /// output's eight bytes contiguous, output-major (64 bytes), so that one 16-byte load is
    /// `smmla`'s 8 × 2 operand for two outputs. No interleave (1), no block sums (empty).
    Smmla,
}

/// One packed panel of [`NR`] outputs as the int8 GEMM kernels read it, in either packed
/// layout of the file (`format::Layout::I8Panel8x4`: `interleave` 1; `I8Panel16x4`: 2, the
/// panel and its neighbour alternate group by group so that one 64-byte load holds both), or
/// repacked for `smmla` ([`WeightLayout::Smmla`]).
#[derive(Debug, Clone, Copy)]
pub struct Panel<'a> {
    /// From the panel's first group on: group `g` (`NR · 4` bytes) starts at
    /// `g · NR · 4 · interleave`.
    pub w: &'a [i8],
    /// The panel's block sums ([`scalar::panel_block_sums`]): block `b`'s `NR` start at
    /// `b · NR · interleave`.
    pub sums: &'a [i32],
    /// How many panels alternate group by group: 1 or 2.
    pub interleave: usize,
    /// How `w` is laid out.
    pub layout: WeightLayout,
}

impl Panel<'_> {
    /// Bytes of `w` the kernels read for `kp` inputs.
    pub fn weight_span(kp: usize, interleave: usize) -> usize {
        (kp / 4).saturating_sub(1) * NR * 4 * interleave + if kp > 0 { NR * 4 } else { 0 }
    }

    /// Sums of `sums` the kernels read for `kp` inputs.
    pub fn sums_span(kp: usize, interleave: usize) -> usize {
        (kp / QBLOCK).saturating_sub(1) * NR * interleave + if kp > 0 { NR } else { 0 }
    }
}

/// How a tier's GEMM kernels read quantized activations (and its `quantize_blocks` writes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codes {
    /// Signed bytes in [-127, 127].
    Signed,
    /// The signed value + 128 as an unsigned byte (the sign bit flipped): what `vpdpbusd`
    /// multiplies as u8. The kernels subtract 128 · Σw, exactly.
    Offset,
}

impl Codes {
    /// Turns signed codes into these codes, in place.
    pub fn encode(self, q: &mut [i8]) {
        if self == Codes::Offset {
            for v in q {
                *v ^= i8::MIN;
            }
        }
    }
}

/// Asks the CPU to bring the cache line holding `p` towards the core (into L2), without
/// waiting: for data a loop will read soon in an order the hardware prefetchers do not follow.
/// Any address is fine; a hint never faults and changes no result.
#[inline(always)]
pub fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT1 reads nothing architecturally and never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(p as *const i8)
    };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: PRFM is a hint: it never faults and writes no register or memory.
    unsafe {
        std::arch::asm!("prfm pldl2keep, [{0}]", in(reg) p, options(nostack, readonly, preserves_flags))
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = p;
}

/// Signature of the int8 panel GEMM (see [`scalar::gemm_i8_panel`]).
pub type GemmI8Panel =
    fn(xq: &[i8], xs: &[f32], m: usize, kp: usize, panel: Panel<'_>, acc: &mut [[f32; NR]; MR]);
/// The epilogue of four whole panels (32 outputs), applied by [`GemmI8Panel4`] before it
/// stores: exactly [`scalar::panel_epilogue`] on each panel.
#[derive(Debug, Clone, Copy)]
pub struct Epilogue4<'a> {
    pub scales: &'a [f32; 4 * NR],
    pub bias: Option<&'a [f32; 4 * NR]>,
    pub gelu: bool,
}

/// Where a four-panel GEMM writes: `rows` rows of [`Tile::COLS`] f32 each, `ld` apart: a
/// window of an output matrix. Made from a slice, or (unsafe) from a pointer into a matrix
/// whose other columns other threads write at the same time.
#[derive(Debug)]
pub struct Tile<'a> {
    ptr: *mut f32,
    rows: usize,
    ld: usize,
    _out: std::marker::PhantomData<&'a mut [f32]>,
}

impl<'a> Tile<'a> {
    /// Columns per row: four panels' outputs.
    pub const COLS: usize = 4 * NR;

    /// The first `COLS` columns of `rows` rows of `out`, `ld` apart.
    pub fn new(out: &'a mut [f32], rows: usize, ld: usize) -> Tile<'a> {
        assert!(ld >= Self::COLS && (rows == 0 || out.len() >= (rows - 1) * ld + Self::COLS));
        Tile {
            ptr: out.as_mut_ptr(),
            rows,
            ld,
            _out: std::marker::PhantomData,
        }
    }

    /// # Safety
    /// `ptr` + `r·ld` .. + `COLS` for every `r < rows` lies in one allocation that outlives
    /// the tile, and nothing else reads or writes those values while the tile lives.
    pub unsafe fn from_raw(ptr: *mut f32, rows: usize, ld: usize) -> Tile<'a> {
        assert!(ld >= Self::COLS);
        Tile {
            ptr,
            rows,
            ld,
            _out: std::marker::PhantomData,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Row `r`'s `COLS` values.
    pub fn row(&mut self, r: usize) -> &mut [f32; 4 * NR] {
        assert!(r < self.rows);
        // SAFETY: in the tile (checked), exclusive to it (the constructors' contract).
        unsafe { &mut *(self.ptr.add(r * self.ld) as *mut [f32; 4 * NR]) }
    }
}

// SAFETY: a tile is a unique borrow of its values, as `&mut [f32]` is.
unsafe impl Send for Tile<'_> {}

/// Signature of the four-panel int8 GEMM over `out.rows()` rows (any number, [`MR`] at a
/// time): row `r`'s outputs `8p..8p + 8` are panel `p`'s, each exactly as [`GemmI8Panel`]
/// gives them, then the epilogue if one is given, written straight into `out`. Tiers without
/// one run the single kernel per panel.
pub type GemmI8Panel4 = fn(
    xq: &[i8],
    xs: &[f32],
    kp: usize,
    panels: [Panel<'_>; 4],
    epilogue: Option<Epilogue4<'_>>,
    out: Tile<'_>,
);

/// Signature of the int8 GEMM's whole-panel epilogue (see [`scalar::panel_epilogue`]).
pub type PanelEpilogue = fn(
    acc: &mut [[f32; NR]; MR],
    m: usize,
    scales: &[f32; NR],
    bias: Option<&[f32; NR]>,
    gelu: bool,
);
/// Signature of the eight-row transpose (see [`scalar::transpose8`]).
pub type Transpose8 = fn(src: [&[f32]; 8], d: usize, dst: &mut [f32], ld: usize);
/// Signature of the f32 dot product.
pub type DotF32 = fn(a: &[f32], b: &[f32]) -> f32;
/// Signature of activation quantization (see [`scalar::quantize_blocks`]).
pub type QuantizeBlocks =
    fn(x: &[f32], rows: usize, k: usize, kp: usize, q: &mut [i8], scales: &mut [f32]);
/// Signature of the four-row panel kernel (see [`scalar::row_panel4`]).
pub type RowPanel4F32 =
    fn(a: [&[f32]; 4], m: usize, b: &[f32], stride: usize, out: &mut [f32], w: usize);
/// Signature of LayerNorm over rows after a residual add (see [`scalar::layer_norm_rows`]).
pub type LayerNormRowsF32 =
    fn(x: &mut [f32], residual: Option<&[f32]>, gamma: &[f32], beta: &[f32], eps: f32);

/// The shapes every LayerNorm entry point checks: whole rows of `gamma.len()` (non-zero),
/// `beta` as long, a residual as long as `x`.
pub(crate) fn check_layer_norm_rows(
    x: &[f32],
    residual: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
) {
    let n = gamma.len();
    assert!(
        n > 0 && beta.len() == n && x.len().is_multiple_of(n),
        "layer norm: bad row shape"
    );
    assert!(
        residual.is_none_or(|r| r.len() == x.len()),
        "layer norm: residual shape"
    );
}
/// Signature of the attention softmax over rows, scores scaled first (see
/// [`scalar::softmax_rows`]).
pub type SoftmaxRowsF32 = fn(x: &mut [f32], rows: usize, scale: f32);

/// The shape every softmax entry point checks: `rows` whole rows (none for an empty `x`).
pub(crate) fn check_softmax_rows(x: &[f32], rows: usize) {
    assert!(
        if rows == 0 {
            x.is_empty()
        } else {
            x.len().is_multiple_of(rows)
        },
        "softmax: {} scores are not {rows} whole rows",
        x.len()
    );
}
/// Signature of the row-vector-times-matrix kernel (see [`scalar::row_panel`]).
pub type RowPanelF32 = fn(a: &[f32], b: &[f32], stride: usize, out: &mut [f32]);

/// The bounds every int8 GEMM entry point checks before its unsafe body reads raw pointers.
#[allow(dead_code)] // used by the SIMD tiers only
#[inline]
pub(crate) fn check_gemm_args(xq: &[i8], xs: &[f32], m: usize, kp: usize, panel: &Panel<'_>) {
    assert!(m <= MR);
    check_gemm_operands(xq, xs, m, kp, panel);
}

/// [`check_gemm_args`] for any number of rows.
#[allow(dead_code)] // used by the SIMD tiers only
#[inline]
pub(crate) fn check_gemm_operands(xq: &[i8], xs: &[f32], m: usize, kp: usize, panel: &Panel<'_>) {
    let il = panel.interleave;
    assert!(
        panel.layout == WeightLayout::Group4,
        "int8 GEMM: weights in the wrong layout"
    );
    assert!(
        kp.is_multiple_of(QBLOCK)
            && (il == 1 || il == 2)
            && xq.len() >= m * kp
            && xs.len() >= m * (kp / QBLOCK)
            && panel.w.len() >= Panel::weight_span(kp, il)
            && panel.sums.len() >= Panel::sums_span(kp, il)
    );
}

/// [`check_gemm_operands`] for a kernel that reads [`WeightLayout::Smmla`]: `kp · NR` bytes of
/// weights, no block sums.
#[allow(dead_code)] // used by the i8mm tier only
#[inline]
pub(crate) fn check_gemm_operands_smmla(
    xq: &[i8],
    xs: &[f32],
    m: usize,
    kp: usize,
    panel: &Panel<'_>,
) {
    assert!(
        panel.layout == WeightLayout::Smmla,
        "int8 GEMM: weights in the wrong layout"
    );
    assert!(
        kp.is_multiple_of(QBLOCK)
            && xq.len() >= m * kp
            && xs.len() >= m * (kp / QBLOCK)
            && panel.w.len() >= kp * NR
    );
}

/// The shapes activation quantization needs: `x` is `[rows, k]`, `q` `[rows, kp]` with
/// `k ≤ kp`, `kp` whole blocks, one scale per block.
pub(crate) fn check_quantize_args(
    x: &[f32],
    rows: usize,
    k: usize,
    kp: usize,
    q: &[i8],
    scales: &[f32],
) {
    assert!(
        k <= kp
            && kp.is_multiple_of(QBLOCK)
            && x.len() >= rows * k
            && q.len() >= rows * kp
            && scales.len() >= rows * (kp / QBLOCK)
    );
}

/// The bounds of four row panels: `m ≤ 4` rows of one length, `b` holds
/// `(len - 1)·stride + w` values, `out` `m·w`.
#[allow(dead_code)] // used by the SIMD tiers only
pub(crate) fn check_row_panel4_args(
    a: &[&[f32]; 4],
    m: usize,
    b: &[f32],
    stride: usize,
    out: &[f32],
    w: usize,
) {
    assert!(m <= 4 && out.len() >= m * w);
    for r in 0..m {
        assert!(a[r].len() == a[0].len());
        check_row_panel_args(a[r], b, stride, w);
    }
}

/// The bounds of an eight-row transpose: every row holds `d` values, `dst` `(d - 1)·ld + 8`.
#[allow(dead_code)] // used by the SIMD tiers only
pub(crate) fn check_transpose8_args(src: &[&[f32]; 8], d: usize, dst: &[f32], ld: usize) {
    assert!(ld >= 8 && src.iter().all(|s| s.len() >= d));
    assert!(d == 0 || dst.len() >= (d - 1) * ld + 8);
}

/// The bounds of a row panel: `b` holds `(a.len() - 1)·stride + w` values.
#[allow(dead_code)] // used by the SIMD tiers only
pub(crate) fn check_row_panel_args(a: &[f32], b: &[f32], stride: usize, w: usize) {
    assert!(a.is_empty() || b.len() >= (a.len() - 1) * stride + w);
}

/// The kernels a session runs with.
#[derive(Clone, Copy)]
pub struct Kernels {
    pub isa: Isa,
    /// The activation codes `quantize_blocks` writes and the GEMM kernels read.
    pub codes: Codes,
    /// The weight layout the GEMM kernels read: the file's, or the repacked copy the model
    /// builds once for the tiers that want one.
    pub weights: WeightLayout,
    pub gemm_i8_panel: GemmI8Panel,
    pub gemm_i8_panel4: Option<GemmI8Panel4>,
    pub panel_epilogue: PanelEpilogue,
    pub dot_f32: DotF32,
    pub row_panel_f32: RowPanelF32,
    pub row_panel4_f32: RowPanel4F32,
    pub softmax_rows_f32: SoftmaxRowsF32,
    pub layer_norm_rows_f32: LayerNormRowsF32,
    pub quantize_blocks: QuantizeBlocks,
    pub transpose8: Transpose8,
}

impl std::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernels").field("isa", &self.isa).finish()
    }
}

impl Kernels {
    /// The table for `isa`; an error if this CPU cannot run it.
    pub fn for_isa(isa: Isa) -> Result<Kernels> {
        if !isa.available() {
            return Err(Error::UnsupportedIsa { isa: isa.name() });
        }
        let mut k = Kernels {
            isa,
            codes: Codes::Signed,
            weights: WeightLayout::Group4,
            gemm_i8_panel: scalar::gemm_i8_panel,
            gemm_i8_panel4: None,
            panel_epilogue: scalar::panel_epilogue,
            dot_f32: scalar::dot,
            row_panel_f32: scalar::row_panel,
            row_panel4_f32: scalar::row_panel4,
            softmax_rows_f32: scalar::softmax_rows,
            layer_norm_rows_f32: scalar::layer_norm_rows,
            quantize_blocks: scalar::quantize_blocks,
            transpose8: scalar::transpose8,
        };
        match isa {
            Isa::Scalar => {}
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                k.gemm_i8_panel = x86_64::gemm_i8_panel_avx2;
                k.dot_f32 = x86_64::dot_f32_avx2;
                k.row_panel_f32 = x86_64::row_panel_f32_avx2;
                k.row_panel4_f32 = x86_64::row_panel4_f32_avx2;
                k.softmax_rows_f32 = x86_64::softmax_rows_avx2;
                k.layer_norm_rows_f32 = x86_64::layer_norm_rows_avx2;
                k.quantize_blocks = x86_64::quantize_blocks_avx2;
                k.panel_epilogue = x86_64::panel_epilogue_avx2;
                k.transpose8 = x86_64::transpose8_avx2;
            }
            // A higher tier starts from the one below and overwrites what it does better.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                k = Kernels {
                    isa,
                    ..Self::for_isa(Isa::Avx2)?
                };
                k.codes = Codes::Offset;
                k.quantize_blocks = x86_64::quantize_blocks_offset_avx2;
                k.gemm_i8_panel = x86_64::gemm_i8_panel_avx512vnni;
                k.gemm_i8_panel4 = Some(x86_64::gemm_i8_panel4_avx512vnni);
                k.row_panel_f32 = x86_64::row_panel_f32_avx512;
                k.row_panel4_f32 = x86_64::row_panel4_f32_avx512;
                k.softmax_rows_f32 = x86_64::softmax_rows_avx512;
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => {
                k.gemm_i8_panel = aarch64::gemm_i8_panel_neon;
                k.gemm_i8_panel4 = Some(aarch64::gemm_i8_panel4_neon);
                k.dot_f32 = aarch64::dot_f32_neon;
                k.row_panel_f32 = aarch64::row_panel_f32_neon;
                k.row_panel4_f32 = aarch64::row_panel4_f32_neon;
                k.softmax_rows_f32 = aarch64::softmax_rows_neon;
                k.layer_norm_rows_f32 = aarch64::layer_norm_rows_neon;
                k.quantize_blocks = aarch64::quantize_blocks_neon;
                k.panel_epilogue = aarch64::panel_epilogue_neon;
                k.transpose8 = aarch64::transpose8_neon;
            }
            #[cfg(target_arch = "aarch64")]
            Isa::NeonDotprod => {
                k = Kernels {
                    isa,
                    ..Self::for_isa(Isa::Neon)?
                };
                k.gemm_i8_panel = aarch64::gemm_i8_panel_dotprod;
                k.gemm_i8_panel4 = Some(aarch64::gemm_i8_panel4_dotprod);
            }
            #[cfg(target_arch = "aarch64")]
            Isa::NeonI8mm => {
                k = Kernels {
                    isa,
                    ..Self::for_isa(Isa::NeonDotprod)?
                };
                // Both GEMMs read the repacked weights: one panel (the tails), four (the rest).
                k.weights = WeightLayout::Smmla;
                k.gemm_i8_panel = aarch64::gemm_i8_panel_i8mm;
                k.gemm_i8_panel4 = Some(aarch64::gemm_i8_panel4_i8mm);
            }
            // available() admits only this architecture's tiers.
            #[allow(unreachable_patterns)]
            _ => return Err(Error::UnsupportedIsa { isa: isa.name() }),
        }
        Ok(k)
    }

    /// The best tier of this CPU, or the one `forced` (else `DBRT_FORCE_ISA`) names.
    pub fn select(forced: Option<Isa>) -> Result<Kernels> {
        let forced = match forced {
            Some(i) => Some(i),
            None => match std::env::var("DBRT_FORCE_ISA") {
                Ok(s) if !s.is_empty() => Some(Isa::parse(&s)?),
                _ => None,
            },
        };
        let isa = forced.unwrap_or_else(|| *Isa::all_available().last().unwrap_or(&Isa::Scalar));
        let k = Self::for_isa(isa)?;
        log::info!(
            "dbrt kernels: {}{}",
            isa.name(),
            if forced.is_some() { " (forced)" } else { "" }
        );
        Ok(k)
    }
}
