//! The int8 GEMMs with the int8 matrix multiply extension (`smmla`), on the weights the model
//! repacked for them once ([`WeightLayout::Smmla`]: per eight inputs, each output's eight bytes
//! contiguous, so one 16-byte load is the 8 × 2 weight operand of two outputs). `smmla` is
//! emitted with `asm!` because its intrinsic is not stable Rust yet.
//!
//! The register tile is one row pair × 16 outputs (two panels): 8 `smmla` accumulators and 8
//! f32 sums, the row pair's operands, the weights streaming through the rest. Per block of 32
//! inputs and output pair that is 4 `smmla`, the block step's 2 (below), and a share of the
//! row pair's 4 `zip`s and 2 scale operations: more outputs per row pair would amortize those
//! better, but 16 pairs of accumulators do not fit 32 registers; two row pairs × 8 outputs
//! would halve the weight loads but double the `zip`s per `smmla`, and the vector pipes, not
//! the loads, bound the loop.
//!
//! Bit-identity with the scalar kernel: each block's sums are exact integers, turned into f32
//! without `scvtf` (one per 2 cycles on the Neoverse cores): an accumulator that starts at the
//! bits of 1.5 · 2^23 holds, after the block (|sum| < 32 · 128² < 2^22), the bits of the float
//! 1.5 · 2^23 + sum, exactly; subtracting 1.5 · 2^23 leaves float(sum) exactly. Then one fused
//! multiply-add by the row's block scale, as in the scalar kernel: the same bits.

use std::arch::aarch64::*;

use crate::kernels::f32_bodies as body;
use crate::kernels::lanes::{F32Lanes, Pair};
use crate::kernels::{Epilogue4, Panel, Tile, MR, NR, QBLOCK};

type Neon8 = Pair<float32x4_t>;

/// 1.5 · 2^23: see the module.
const MAGIC: f32 = 12582912.0;

/// Bytes of one step of eight inputs of a repacked panel.
const STEP: usize = 8 * NR;

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

/// Sixteen bytes of 1.5 · 2^23 twice: one `ldp` starts two blocks' sums.
static MAGIC8: [f32; 8] = [MAGIC; 8];

/// [`row_pair`] for two panels, the hot loop, in one `asm!` block: the order of loads and
/// `smmla`s and the registers as written (every vector register but one in use), which
/// matters on the in-order cores (Cortex-A510) and keeps the compiler from turning the start
/// value's loads into register moves (vector-pipe work).
///
/// # Safety
/// As [`row_pair`], with `nb > 0`.
#[inline(always)]
unsafe fn row_pair2(
    x: [*const i8; 2],
    s: [*const f32; 2],
    nb: usize,
    w: [*const i8; 2],
) -> [[float32x4_t; 4]; 2] {
    // SAFETY: register arithmetic, and loads inside the caller's rows (32 bytes per block),
    // scales (4) and panels (256), plus MAGIC8.
    unsafe {
        let mut f = [vdupq_n_f32(0.0); 8];
        core::arch::asm!(
            "2:",
            // The block's sums start at the bits of 1.5 · 2^23, loaded (the load pipes have room).
            "ldp {c0:q}, {c1:q}, [{mg}]",
            "ldp {c2:q}, {c3:q}, [{mg}]",
            // Both rows' 32 inputs; 16 at a time zipped into two 2 × 8 operands.
            "ldp {a0:q}, {a2:q}, [{x0}], #32",
            "ldp {a1:q}, {a3:q}, [{x1}], #32",
            "ldp {c4:q}, {c5:q}, [{mg}]",
            "ldp {c6:q}, {c7:q}, [{mg}]",
            "ldp {wa0:q}, {wa1:q}, [{w0}, #0]",
            "ldp {wa2:q}, {wa3:q}, [{w0}, #32]",
            "zip1 {z0:v}.2d, {a0:v}.2d, {a1:v}.2d",
            "zip2 {z1:v}.2d, {a0:v}.2d, {a1:v}.2d",
            "ldp {wb0:q}, {wb1:q}, [{w1}, #0]",
            "ldp {wb2:q}, {wb3:q}, [{w1}, #32]",
            // Inputs 0-7: panel 0 (c0-c3), panel 1 (c4-c7), the next weights loading.
            "smmla {c0:v}.4s, {z0:v}.16b, {wa0:v}.16b",
            "smmla {c1:v}.4s, {z0:v}.16b, {wa1:v}.16b",
            "smmla {c2:v}.4s, {z0:v}.16b, {wa2:v}.16b",
            "smmla {c3:v}.4s, {z0:v}.16b, {wa3:v}.16b",
            "ldp {wa0:q}, {wa1:q}, [{w0}, #64]",
            "ldp {wa2:q}, {wa3:q}, [{w0}, #96]",
            "smmla {c4:v}.4s, {z0:v}.16b, {wb0:v}.16b",
            "smmla {c5:v}.4s, {z0:v}.16b, {wb1:v}.16b",
            "smmla {c6:v}.4s, {z0:v}.16b, {wb2:v}.16b",
            "smmla {c7:v}.4s, {z0:v}.16b, {wb3:v}.16b",
            "ldp {wb0:q}, {wb1:q}, [{w1}, #64]",
            "ldp {wb2:q}, {wb3:q}, [{w1}, #96]",
            // Inputs 8-15.
            "smmla {c0:v}.4s, {z1:v}.16b, {wa0:v}.16b",
            "smmla {c1:v}.4s, {z1:v}.16b, {wa1:v}.16b",
            "smmla {c2:v}.4s, {z1:v}.16b, {wa2:v}.16b",
            "smmla {c3:v}.4s, {z1:v}.16b, {wa3:v}.16b",
            "zip1 {z0:v}.2d, {a2:v}.2d, {a3:v}.2d",
            "ldp {wa0:q}, {wa1:q}, [{w0}, #128]",
            "ldp {wa2:q}, {wa3:q}, [{w0}, #160]",
            "smmla {c4:v}.4s, {z1:v}.16b, {wb0:v}.16b",
            "smmla {c5:v}.4s, {z1:v}.16b, {wb1:v}.16b",
            "smmla {c6:v}.4s, {z1:v}.16b, {wb2:v}.16b",
            "smmla {c7:v}.4s, {z1:v}.16b, {wb3:v}.16b",
            "zip2 {z1:v}.2d, {a2:v}.2d, {a3:v}.2d",
            "ldp {wb0:q}, {wb1:q}, [{w1}, #128]",
            "ldp {wb2:q}, {wb3:q}, [{w1}, #160]",
            // Inputs 16-23.
            "smmla {c0:v}.4s, {z0:v}.16b, {wa0:v}.16b",
            "smmla {c1:v}.4s, {z0:v}.16b, {wa1:v}.16b",
            "smmla {c2:v}.4s, {z0:v}.16b, {wa2:v}.16b",
            "smmla {c3:v}.4s, {z0:v}.16b, {wa3:v}.16b",
            "ldp {wa0:q}, {wa1:q}, [{w0}, #192]",
            "ldp {wa2:q}, {wa3:q}, [{w0}, #224]",
            "add {w0}, {w0}, #256",
            "smmla {c4:v}.4s, {z0:v}.16b, {wb0:v}.16b",
            "smmla {c5:v}.4s, {z0:v}.16b, {wb1:v}.16b",
            "smmla {c6:v}.4s, {z0:v}.16b, {wb2:v}.16b",
            "smmla {c7:v}.4s, {z0:v}.16b, {wb3:v}.16b",
            "ldp {wb0:q}, {wb1:q}, [{w1}, #192]",
            "ldp {wb2:q}, {wb3:q}, [{w1}, #224]",
            "add {w1}, {w1}, #256",
            // The rows' block scales, [s0, s1, ·, ·], while inputs 24-31 run.
            "ldr {a0:s}, [{s0}], #4",
            "ld1 {{{a0:v}.s}}[1], [{s1}], #4",
            "smmla {c0:v}.4s, {z1:v}.16b, {wa0:v}.16b",
            "smmla {c1:v}.4s, {z1:v}.16b, {wa1:v}.16b",
            "smmla {c2:v}.4s, {z1:v}.16b, {wa2:v}.16b",
            "smmla {c3:v}.4s, {z1:v}.16b, {wa3:v}.16b",
            "smmla {c4:v}.4s, {z1:v}.16b, {wb0:v}.16b",
            "smmla {c5:v}.4s, {z1:v}.16b, {wb1:v}.16b",
            "smmla {c6:v}.4s, {z1:v}.16b, {wb2:v}.16b",
            "smmla {c7:v}.4s, {z1:v}.16b, {wb3:v}.16b",
            // [s0, s0, s1, s1]: each lane's row; then float(sum) exactly, one FMA each.
            "zip1 {a0:v}.4s, {a0:v}.4s, {a0:v}.4s",
            "fsub {c0:v}.4s, {c0:v}.4s, {mv:v}.4s",
            "fsub {c1:v}.4s, {c1:v}.4s, {mv:v}.4s",
            "fsub {c2:v}.4s, {c2:v}.4s, {mv:v}.4s",
            "fsub {c3:v}.4s, {c3:v}.4s, {mv:v}.4s",
            "fsub {c4:v}.4s, {c4:v}.4s, {mv:v}.4s",
            "fsub {c5:v}.4s, {c5:v}.4s, {mv:v}.4s",
            "fsub {c6:v}.4s, {c6:v}.4s, {mv:v}.4s",
            "fsub {c7:v}.4s, {c7:v}.4s, {mv:v}.4s",
            "fmla {f0:v}.4s, {c0:v}.4s, {a0:v}.4s",
            "fmla {f1:v}.4s, {c1:v}.4s, {a0:v}.4s",
            "fmla {f2:v}.4s, {c2:v}.4s, {a0:v}.4s",
            "fmla {f3:v}.4s, {c3:v}.4s, {a0:v}.4s",
            "fmla {f4:v}.4s, {c4:v}.4s, {a0:v}.4s",
            "fmla {f5:v}.4s, {c5:v}.4s, {a0:v}.4s",
            "fmla {f6:v}.4s, {c6:v}.4s, {a0:v}.4s",
            "fmla {f7:v}.4s, {c7:v}.4s, {a0:v}.4s",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            x0 = inout(reg) x[0] => _,
            x1 = inout(reg) x[1] => _,
            s0 = inout(reg) s[0] => _,
            s1 = inout(reg) s[1] => _,
            w0 = inout(reg) w[0] => _,
            w1 = inout(reg) w[1] => _,
            n = inout(reg) nb => _,
            mg = in(reg) MAGIC8.as_ptr(),
            mv = in(vreg) vdupq_n_f32(MAGIC),
            f0 = inout(vreg) f[0],
            f1 = inout(vreg) f[1],
            f2 = inout(vreg) f[2],
            f3 = inout(vreg) f[3],
            f4 = inout(vreg) f[4],
            f5 = inout(vreg) f[5],
            f6 = inout(vreg) f[6],
            f7 = inout(vreg) f[7],
            c0 = out(vreg) _,
            c1 = out(vreg) _,
            c2 = out(vreg) _,
            c3 = out(vreg) _,
            c4 = out(vreg) _,
            c5 = out(vreg) _,
            c6 = out(vreg) _,
            c7 = out(vreg) _,
            wa0 = out(vreg) _,
            wa1 = out(vreg) _,
            wa2 = out(vreg) _,
            wa3 = out(vreg) _,
            wb0 = out(vreg) _,
            wb1 = out(vreg) _,
            wb2 = out(vreg) _,
            wb3 = out(vreg) _,
            a0 = out(vreg) _,
            a1 = out(vreg) _,
            a2 = out(vreg) _,
            a3 = out(vreg) _,
            z0 = out(vreg) _,
            z1 = out(vreg) _,
            options(nostack, readonly)
        );
        [[f[0], f[1], f[2], f[3]], [f[4], f[5], f[6], f[7]]]
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
    let m = out.rows();
    for h in 0..2 {
        for r in (0..m).step_by(2) {
            // SAFETY: rows r.. of m, checked by the entry; the panels hold kp inputs; the
            // epilogue's arrays hold 4 · NR values, panel 2h + p's from (2h + p) · NR.
            unsafe {
                let (x, s) = pair_at(xq, xs, kp, r, m);
                let (nb, w) = (kp / QBLOCK, [w[2 * h], w[2 * h + 1]]);
                let f = if nb > 0 {
                    row_pair2(x, s, nb, w)
                } else {
                    [[vdupq_n_f32(0.0); 4]; 2]
                };
                for (p, fp) in f.into_iter().enumerate() {
                    let o = (2 * h + p) * NR;
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
