//! The int8 GEMMs with the int8 matrix multiply extension (`smmla`), on the weights the model
//! repacked for them once ([`WeightLayout::Smmla`]: per eight inputs, each output's eight bytes
//! contiguous, so one 16-byte load is the 8 × 2 weight operand of two outputs). `smmla` is
//! emitted with `asm!` because its intrinsic is not stable Rust yet.
//!
//! The four-panel kernel's register tile is one row pair × 16 outputs (two panels): 8 `smmla`
//! accumulators and 8 f32 sums, four activation operands, the weights streaming through the
//! rest (16 pairs of accumulators, all four panels, would not fit 32 registers). Its row pairs
//! are zipped once per call into a stack buffer with their scale vectors ([`tile`]), so the
//! loop's vector work per block and output pair is 4 `smmla` and the block step's 2 (below):
//! the ceiling of 4 / 6 of `smmla`'s peak that the per-block step allows. Two row pairs × 8
//! outputs would halve the weight loads, but the vector pipes, not the loads, bound the loop
//! on the Neoverse N2 class. The one-panel kernel (tails) zips in registers.
//!
//! Bit-identity with the scalar kernel: each block's sums are exact integers, turned into f32
//! without `scvtf` (one per 2 cycles on the Neoverse cores): an accumulator that starts at the
//! bits of 1.5 · 2^23 holds, after the block (|sum| < 32 · 128² < 2^22), the bits of the float
//! 1.5 · 2^23 + sum, exactly; subtracting 1.5 · 2^23 leaves float(sum) exactly. Then one fused
//! multiply-add by the row's block scale, as in the scalar kernel: the same bits.

use std::arch::aarch64::*;

mod tile;

use crate::kernels::f32_bodies as body;
use crate::kernels::lanes::{F32Lanes, Pair};
use crate::kernels::{Epilogue4, Panel, Tile, MR, NR, QBLOCK};

type Neon8 = Pair<float32x4_t>;

/// 1.5 · 2^23: see the module.
const MAGIC: f32 = 12582912.0;

/// Bytes of one step of eight inputs of a repacked panel.
const STEP: usize = 8 * NR;

/// Bytes of zipped row pairs the four-panel kernel keeps on the stack (see [`tile`]): 21
/// pairs at 384 inputs, 5 at 1536, 1 up to 8192; wider inputs are zipped in registers.
const ZIPPED: usize = 20 * 1024;

/// `c += x · wᵀ` for the 2 × 8 activations `x` and the 2 × 8 weights `w`: `c` is
/// [x0·w0, x0·w1, x1·w0, x1·w1].
#[inline(always)]
unsafe fn smmla(c: &mut int32x4_t, x: int8x16_t, w: int8x16_t) {
    // SAFETY: register-only; the caller runs with i8mm.
    unsafe {
        core::arch::asm!(
            "smmla {c:v}.4s, {x:v}.16b, {w:v}.16b",
            c = inout(vreg) *c, x = in(vreg) x, w = in(vreg) w,
            options(pure, nomem, nostack)
        )
    }
}

/// Rows `x[0]` and `x[1]` (`x[1]` is `x[0]` again for a lone last row) times `P` repacked
/// panels, over `nb` blocks with the rows' block scales `s`: per panel, per output pair q,
/// the f32 sums [x0·o2q, x0·o2q+1, x1·o2q, x1·o2q+1].
///
/// # Safety
/// i8mm; `x` rows and `w` panels hold `nb · QBLOCK` inputs, `s` rows `nb` scales.
#[inline(always)]
unsafe fn row_pair<const P: usize>(
    x: [*const i8; 2],
    s: [*const f32; 2],
    nb: usize,
    w: [*const i8; P],
) -> [[float32x4_t; 4]; P] {
    // SAFETY: (the whole body) every load is inside the caller's rows, scales and panels.
    unsafe {
        let magic = vdupq_n_f32(MAGIC);
        let mut f = [[vdupq_n_f32(0.0); 4]; P];
        for b in 0..nb {
            let mut c = [[vreinterpretq_s32_f32(magic); 4]; P];
            for h in 0..2 {
                // Inputs 16h..16h + 16 of the block, both rows: eight of each per operand.
                let at = b * QBLOCK + 16 * h;
                let a0 = vreinterpretq_s64_s8(vld1q_s8(x[0].add(at)));
                let a1 = vreinterpretq_s64_s8(vld1q_s8(x[1].add(at)));
                let xs = [vzip1q_s64(a0, a1), vzip2q_s64(a0, a1)];
                for (t, xt) in xs.into_iter().enumerate() {
                    let (xt, step) = (vreinterpretq_s8_s64(xt), (at / 8 + t) * STEP);
                    for (cp, wp) in c.iter_mut().zip(w) {
                        for (q, cq) in cp.iter_mut().enumerate() {
                            smmla(cq, xt, vld1q_s8(wp.add(step + 16 * q)));
                        }
                    }
                }
            }
            // [s0, s1, ·, ·] → [s0, s0, s1, s1]: the scale of each lane's row.
            let sv = vld1q_lane_f32::<0>(s[0].add(b), vdupq_n_f32(0.0));
            let sv = vld1q_lane_f32::<1>(s[1].add(b), sv);
            let sv = vzip1q_f32(sv, sv);
            for (fp, cp) in f.iter_mut().zip(&c) {
                for (fq, &cq) in fp.iter_mut().zip(cp) {
                    *fq = vfmaq_f32(*fq, vsubq_f32(vreinterpretq_f32_s32(cq), magic), sv);
                }
            }
        }
        f
    }
}

/// A panel's four output pairs in `smmla` order as the row pair's two rows of 8 outputs.
#[inline(always)]
unsafe fn rows(f: [float32x4_t; 4]) -> [Neon8; 2] {
    // SAFETY: register-only NEON.
    unsafe {
        let q = f.map(|v| vreinterpretq_f64_f32(v));
        [
            Pair([
                vreinterpretq_f32_f64(vzip1q_f64(q[0], q[1])),
                vreinterpretq_f32_f64(vzip1q_f64(q[2], q[3])),
            ]),
            Pair([
                vreinterpretq_f32_f64(vzip2q_f64(q[0], q[1])),
                vreinterpretq_f32_f64(vzip2q_f64(q[2], q[3])),
            ]),
        ]
    }
}

/// The row pair at `r` of `m` rows: its rows' pointers (the last row twice when `r + 1 = m`).
#[inline(always)]
unsafe fn pair_at(
    xq: *const i8,
    xs: *const f32,
    kp: usize,
    r: usize,
    m: usize,
) -> ([*const i8; 2], [*const f32; 2]) {
    let r1 = (r + 1).min(m - 1);
    let nb = kp / QBLOCK;
    // SAFETY: r and r1 are rows < m of the caller's checked operands.
    unsafe {
        (
            [xq.add(r * kp), xq.add(r1 * kp)],
            [xs.add(r * nb), xs.add(r1 * nb)],
        )
    }
}

#[target_feature(enable = "neon,i8mm")]
unsafe fn gemm_i8_panel_i8mm_impl(
    xq: *const i8,
    xs: *const f32,
    m: usize,
    kp: usize,
    w: *const i8,
    acc: &mut [[f32; NR]; MR],
) {
    for r in (0..m).step_by(2) {
        // SAFETY: rows r.. of m, checked by the entry; the panel holds kp inputs.
        unsafe {
            let (x, s) = pair_at(xq, xs, kp, r, m);
            let [f] = row_pair::<1>(x, s, kp / QBLOCK, [w]);
            for (i, y) in rows(f).into_iter().enumerate().take(m - r) {
                y.store(acc[r + i].as_mut_ptr());
            }
        }
    }
}

/// The int8 panel GEMM with `smmla`, on a repacked panel ([`WeightLayout::Smmla`]): what
/// [`crate::kernels::scalar::gemm_i8_panel`] computes on the same panel in the file's layout.
pub fn gemm_i8_panel_i8mm(
    xq: &[i8],
    xs: &[f32],
    m: usize,
    kp: usize,
    panel: Panel<'_>,
    acc: &mut [[f32; NR]; MR],
) {
    assert!(m <= MR);
    crate::kernels::check_gemm_operands_smmla(xq, xs, m, kp, &panel);
    debug_assert!(crate::kernels::Isa::NeonI8mm.available());
    // SAFETY: lengths checked above; i8mm presence is the table's invariant.
    unsafe { gemm_i8_panel_i8mm_impl(xq.as_ptr(), xs.as_ptr(), m, kp, panel.w.as_ptr(), acc) }
}

#[target_feature(enable = "neon,i8mm")]
unsafe fn gemm_i8_panel4_i8mm_impl(
    (xq, xs): (*const i8, *const f32),
    kp: usize,
    w: [*const i8; 4],
    epilogue: Option<Epilogue4<'_>>,
    out: &mut Tile<'_>,
) {
    let (m, nb) = (out.rows(), kp / QBLOCK);
    // Row pairs zipped at a time: as many as the buffer holds (a few at the widest inputs).
    let mut zipped = std::mem::MaybeUninit::<[float32x4_t; ZIPPED / 16]>::uninit();
    let z = zipped.as_mut_ptr() as *mut u8;
    let (pairs, per) = (m.div_ceil(2), ZIPPED / (tile::PAIR_BLOCK * nb).max(1));
    let mut p0 = 0;
    while p0 < pairs {
        let n = per.max(1).min(pairs - p0);
        if nb > 0 && per > 0 {
            // SAFETY: rows 2·p0.. of m, checked by the entry; n pairs fit the buffer.
            unsafe { tile::zip_pairs((xq, xs), (kp, nb), (2 * p0, m), n, z) };
        }
        for h in 0..2 {
            let w = [w[2 * h], w[2 * h + 1]];
            for i in 0..n {
                let r = 2 * (p0 + i);
                // SAFETY: as above; the panels hold kp inputs; pair i was zipped (when the
                // buffer holds one pair, else the rows are read and zipped in registers).
                let f = unsafe {
                    if nb == 0 {
                        [[vdupq_n_f32(0.0); 4]; 2]
                    } else if per > 0 {
                        tile::row_pair2(z.add(i * nb * tile::PAIR_BLOCK), nb, w)
                    } else {
                        let (x, s) = pair_at(xq, xs, kp, r, m);
                        row_pair::<2>(x, s, nb, w)
                    }
                };
                // SAFETY: the epilogue's arrays hold 4 · NR values, panel 2h + p's from
                // (2h + p) · NR; a tile row holds 4 · NR.
                unsafe { finish(f, (r, m), 2 * h, epilogue, out) };
            }
        }
        p0 += n;
    }
}

/// Rows `r` and `r + 1` (if `< m`) of panels `p0` and `p0 + 1` from `row_pair`'s sums: the
/// epilogue if one is given, then into the tile.
///
/// # Safety
/// NEON; `p0 ≤ 2`.
#[inline(always)]
unsafe fn finish(
    f: [[float32x4_t; 4]; 2],
    (r, m): (usize, usize),
    p0: usize,
    epilogue: Option<Epilogue4<'_>>,
    out: &mut Tile<'_>,
) {
    for (p, fp) in f.into_iter().enumerate() {
        let o = (p0 + p) * NR;
        // SAFETY: NEON; o + NR ≤ 4 · NR, inside the epilogue's arrays and a tile row.
        unsafe {
            for (i, mut y) in rows(fp).into_iter().enumerate().take(m - r) {
                if let Some(e) = epilogue {
                    let ws = Neon8::load(e.scales.as_ptr().add(o));
                    #[allow(clippy::manual_map)] // a closure would not inherit the features
                    let b = match e.bias {
                        Some(b) => Some(Neon8::load(b.as_ptr().add(o))),
                        None => None,
                    };
                    y = body::epilogue(y, ws, b, e.gelu);
                }
                y.store(out.row(r + i).as_mut_ptr().add(o));
            }
        }
    }
}

/// The four-panel int8 GEMM with `smmla` on repacked panels: `out`'s rows get the four
/// panels' outputs as [`gemm_i8_panel_i8mm`] gives them, then the epilogue.
pub fn gemm_i8_panel4_i8mm(
    xq: &[i8],
    xs: &[f32],
    kp: usize,
    panels: [Panel<'_>; 4],
    epilogue: Option<Epilogue4<'_>>,
    mut out: Tile<'_>,
) {
    let m = out.rows();
    for p in &panels {
        crate::kernels::check_gemm_operands_smmla(xq, xs, m, kp, p);
    }
    debug_assert!(crate::kernels::Isa::NeonI8mm.available());
    if m == 0 {
        return;
    }
    let w = panels.map(|p| p.w.as_ptr());
    // SAFETY: lengths checked above; i8mm presence is the table's invariant.
    unsafe { gemm_i8_panel4_i8mm_impl((xq.as_ptr(), xs.as_ptr()), kp, w, epilogue, &mut out) }
}
