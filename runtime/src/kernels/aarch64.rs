//! aarch64 kernels: Advanced SIMD, the dot-product extension (`sdot`) and the int8 matrix
//! multiply extension (`smmla`), the last two emitted with `asm!` because their intrinsics are
//! not stable Rust yet. The safe entry points are only put in a
//! [`super::Kernels`] table after the features were detected.

use std::arch::aarch64::*;

use super::{Panel, MR, NR, QBLOCK};

/// Scales one block's i32 sums into the f32 sums: one fused multiply-add, as the scalar kernel.
#[inline(always)]
unsafe fn scale_block(f: &mut [float32x4_t; 2], lo: int32x4_t, hi: int32x4_t, s: f32) {
    let s = vdupq_n_f32(s);
    f[0] = vfmaq_f32(f[0], vcvtq_f32_s32(lo), s);
    f[1] = vfmaq_f32(f[1], vcvtq_f32_s32(hi), s);
}

/// Plain NEON: `smull` to i16 (|product| ≤ 127·127, exact), pairwise-add-accumulate to i32.
#[target_feature(enable = "neon")]
unsafe fn gemm_i8_panel_neon_impl<const M: usize>(
    xq: *const i8,
    xs: *const f32,
    kp: usize,
    panel: *const i8,
    step: usize,
    acc: &mut [[f32; NR]; MR],
) {
    let nb = kp / QBLOCK;
    let mut f = [[vdupq_n_f32(0.0); 2]; M];
    for b in 0..nb {
        // Per row, four accumulators of pair sums: outputs 0-1, 2-3, 4-5, 6-7.
        let mut c = [[vdupq_n_s32(0); 4]; M];
        for g in b * QBLOCK / 4..(b + 1) * QBLOCK / 4 {
            // SAFETY: the caller checked the panel holds kp / 4 groups of 32 bytes, `step`
            // bytes apart, and each row kp bytes.
            let (w0, w1) = unsafe {
                (
                    vld1q_s8(panel.add(g * step)),
                    vld1q_s8(panel.add(g * step + 16)),
                )
            };
            for (r, cr) in c.iter_mut().enumerate() {
                // SAFETY: as above; an unaligned 4-byte read of row r at input 4g.
                let x4 = unsafe { std::ptr::read_unaligned(xq.add(r * kp + g * 4) as *const i32) };
                let xb = vreinterpret_s8_s32(vdup_n_s32(x4));
                cr[0] = vpadalq_s16(cr[0], vmull_s8(vget_low_s8(w0), xb));
                cr[1] = vpadalq_s16(cr[1], vmull_s8(vget_high_s8(w0), xb));
                cr[2] = vpadalq_s16(cr[2], vmull_s8(vget_low_s8(w1), xb));
                cr[3] = vpadalq_s16(cr[3], vmull_s8(vget_high_s8(w1), xb));
            }
        }
        for (r, cr) in c.iter().enumerate() {
            // SAFETY: the caller checked xs holds nb scales per row.
            let s = unsafe { *xs.add(r * nb + b) };
            // SAFETY: register arithmetic only.
            unsafe {
                scale_block(
                    &mut f[r],
                    vpaddq_s32(cr[0], cr[1]),
                    vpaddq_s32(cr[2], cr[3]),
                    s,
                )
            };
        }
    }
    store(&f, acc);
}

#[inline(always)]
fn store<const M: usize>(f: &[[float32x4_t; 2]; M], acc: &mut [[f32; NR]; MR]) {
    for (r, fr) in f.iter().enumerate() {
        // SAFETY: acc[r] holds 8 f32.
        unsafe {
            vst1q_f32(acc[r].as_mut_ptr(), fr[0]);
            vst1q_f32(acc[r].as_mut_ptr().add(4), fr[1]);
        }
    }
}

/// `sdot`: each 32-bit lane accumulates the dot product of 4 bytes with 4 bytes.
#[target_feature(enable = "neon,dotprod")]
unsafe fn gemm_i8_panel_dotprod_impl<const M: usize>(
    xq: *const i8,
    xs: *const f32,
    kp: usize,
    panel: *const i8,
    step: usize,
    acc: &mut [[f32; NR]; MR],
) {
    let nb = kp / QBLOCK;
    let mut f = [[vdupq_n_f32(0.0); 2]; M];
    for b in 0..nb {
        let mut c = [[vdupq_n_s32(0); 2]; M];
        for g in b * QBLOCK / 4..(b + 1) * QBLOCK / 4 {
            // SAFETY: as in the NEON kernel.
            let (w0, w1) = unsafe {
                (
                    vld1q_s8(panel.add(g * step)),
                    vld1q_s8(panel.add(g * step + 16)),
                )
            };
            for (r, cr) in c.iter_mut().enumerate() {
                // SAFETY: as in the NEON kernel.
                let x4 = unsafe { std::ptr::read_unaligned(xq.add(r * kp + g * 4) as *const i32) };
                let xb = vreinterpretq_s8_s32(vdupq_n_s32(x4));
                // SAFETY: register-only instructions; `dotprod` is enabled on this function.
                unsafe {
                    core::arch::asm!("sdot {c:v}.4s, {w:v}.16b, {x:v}.16b", c = inout(vreg) cr[0], w = in(vreg) w0, x = in(vreg) xb, options(pure, nomem, nostack));
                    core::arch::asm!("sdot {c:v}.4s, {w:v}.16b, {x:v}.16b", c = inout(vreg) cr[1], w = in(vreg) w1, x = in(vreg) xb, options(pure, nomem, nostack));
                }
            }
        }
        for (r, cr) in c.iter().enumerate() {
            // SAFETY: the caller checked xs holds nb scales per row.
            let s = unsafe { *xs.add(r * nb + b) };
            // SAFETY: register arithmetic only.
            unsafe { scale_block(&mut f[r], cr[0], cr[1], s) };
        }
    }
    store(&f, acc);
}

/// `smmla` (i8mm): one instruction multiplies a 2 × 8 block of activations (two rows, eight
/// inputs) by an 8 × 2 block of weights (two outputs) into a 2 × 2 block of i32 sums, 32
/// multiply-adds where `sdot` does 16. The packed layouts hold four inputs per output per
/// group; two groups zipped (`zip1`/`zip2` on 32-bit lanes) give the two-outputs × eight-inputs
/// operand, in registers, so the kernel reads the files the other tiers read (the runtime never
/// repacks). Rows go in pairs (a missing fourth or second row repeats the last one and is
/// dropped). Block sums are exact integers, scaled as in the scalar kernel: the same bits.
#[target_feature(enable = "neon,i8mm")]
unsafe fn gemm_i8_panel_i8mm_impl<const M: usize>(
    xq: *const i8,
    xs: *const f32,
    kp: usize,
    panel: *const i8,
    step: usize,
    acc: &mut [[f32; NR]; MR],
) {
    let nb = kp / QBLOCK;
    let pairs = M.div_ceil(2);
    let mut f = [[vdupq_n_f32(0.0); 2]; M];
    for b in 0..nb {
        // Per row pair, outputs (0,1), (2,3), (4,5), (6,7): [r0·c0, r0·c1, r1·c0, r1·c1].
        let mut c = [[vdupq_n_s32(0); 4]; 2];
        let mut g = b * QBLOCK / 4;
        while g < (b + 1) * QBLOCK / 4 {
            // SAFETY: the caller checked the panel holds kp / 4 groups of 32 bytes `step`
            // bytes apart; g and g + 1 are inside the block.
            let (a0, a1, b0, b1) = unsafe {
                (
                    vreinterpretq_s32_s8(vld1q_s8(panel.add(g * step))),
                    vreinterpretq_s32_s8(vld1q_s8(panel.add(g * step + 16))),
                    vreinterpretq_s32_s8(vld1q_s8(panel.add((g + 1) * step))),
                    vreinterpretq_s32_s8(vld1q_s8(panel.add((g + 1) * step + 16))),
                )
            };
            // Outputs (0,1), (2,3), (4,5), (6,7), each eight inputs.
            let w = [
                vreinterpretq_s8_s32(vzip1q_s32(a0, b0)),
                vreinterpretq_s8_s32(vzip2q_s32(a0, b0)),
                vreinterpretq_s8_s32(vzip1q_s32(a1, b1)),
                vreinterpretq_s8_s32(vzip2q_s32(a1, b1)),
            ];
            for (p, cp) in c.iter_mut().enumerate().take(pairs) {
                // Rows 2p and 2p + 1, the last row again in place of a missing one.
                let (r0, r1) = (2 * p, (2 * p + 1).min(M - 1));
                // SAFETY: 8-byte reads of rows r0 and r1 at input 4g, inside the rows.
                let x = unsafe {
                    vcombine_s8(
                        vld1_s8(xq.add(r0 * kp + g * 4)),
                        vld1_s8(xq.add(r1 * kp + g * 4)),
                    )
                };
                for (cq, wq) in cp.iter_mut().zip(&w) {
                    // SAFETY: register-only instruction; `i8mm` is enabled on this function.
                    unsafe {
                        core::arch::asm!("smmla {c:v}.4s, {x:v}.16b, {w:v}.16b", c = inout(vreg) *cq, x = in(vreg) x, w = in(vreg) *wq, options(pure, nomem, nostack));
                    }
                }
            }
            g += 2;
        }
        for (p, cp) in c.iter().enumerate().take(pairs) {
            // Output pair q of row pair p is [r0·c2q, r0·c2q+1, r1·c2q, r1·c2q+1]: the low 64
            // bits of pairs (0,1) and (2,3) are row 2p's outputs 0-3 and 4-7, the high ones
            // row 2p + 1's.
            let q = [
                vreinterpretq_s64_s32(cp[0]),
                vreinterpretq_s64_s32(cp[1]),
                vreinterpretq_s64_s32(cp[2]),
                vreinterpretq_s64_s32(cp[3]),
            ];
            let rows = [
                (vzip1q_s64(q[0], q[1]), vzip1q_s64(q[2], q[3])),
                (vzip2q_s64(q[0], q[1]), vzip2q_s64(q[2], q[3])),
            ];
            for (i, (lo, hi)) in rows.into_iter().enumerate() {
                let r = 2 * p + i;
                if r < M {
                    // SAFETY: the caller checked xs holds nb scales per row.
                    let s = unsafe { *xs.add(r * nb + b) };
                    let (lo, hi) = (vreinterpretq_s32_s64(lo), vreinterpretq_s32_s64(hi));
                    // SAFETY: register arithmetic only.
                    unsafe { scale_block(&mut f[r], lo, hi, s) };
                }
            }
        }
    }
    store(&f, acc);
}

/// The safe entry of a one-panel GEMM body: checks the shapes, then runs it. Signed bytes
/// multiply directly in every aarch64 body: no block sums needed.
macro_rules! gemm_entry {
    ($(#[$doc:meta])* $name:ident, $body:ident, $isa:expr) => {
        $(#[$doc])*
        pub fn $name(
            xq: &[i8],
            xs: &[f32],
            m: usize,
            kp: usize,
            panel: Panel<'_>,
            acc: &mut [[f32; NR]; MR],
        ) {
            super::check_gemm_args(xq, xs, m, kp, &panel);
            debug_assert!($isa.available());
            let (x, s, p) = (xq.as_ptr(), xs.as_ptr(), panel.w.as_ptr());
            let step = 4 * NR * panel.interleave;
            // SAFETY: lengths checked above; the tier's features are the table's invariant.
            unsafe { by_rows!(m, M => $body::<M>(x, s, kp, p, step, acc)) }
        }
    };
}

gemm_entry!(
    /// The int8 panel GEMM with plain NEON.
    gemm_i8_panel_neon,
    gemm_i8_panel_neon_impl,
    super::Isa::Neon
);
gemm_entry!(
    /// The int8 panel GEMM with `sdot`.
    gemm_i8_panel_dotprod,
    gemm_i8_panel_dotprod_impl,
    super::Isa::NeonDotprod
);
gemm_entry!(
    /// The int8 panel GEMM with `smmla`.
    gemm_i8_panel_i8mm,
    gemm_i8_panel_i8mm_impl,
    super::Isa::NeonI8mm
);

#[target_feature(enable = "neon")]
unsafe fn dot_f32_neon_impl(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut lo, mut hi) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 ≤ n.
        let (x0, y0, x1, y1) = unsafe {
            (
                vld1q_f32(pa.add(i)),
                vld1q_f32(pb.add(i)),
                vld1q_f32(pa.add(i + 4)),
                vld1q_f32(pb.add(i + 4)),
            )
        };
        lo = vaddq_f32(lo, vmulq_f32(x0, y0));
        hi = vaddq_f32(hi, vmulq_f32(x1, y1));
        i += 8;
    }
    let mut tail = 0f32;
    while i < n {
        tail += a[i] * b[i];
        i += 1;
    }
    // s = [l0+l4, l1+l5, l2+l6, l3+l7]; then (s0+s2) + (s1+s3), as the scalar dot.
    let s = vaddq_f32(lo, hi);
    let t = vadd_f32(vget_low_f32(s), vget_high_f32(s));
    (vget_lane_f32::<0>(t) + vget_lane_f32::<1>(t)) + tail
}

/// f32 dot product with NEON, in the scalar dot's exact order (see [`super::scalar::dot`]).
pub fn dot_f32_neon(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: NEON presence is the table's invariant; reads are bounded by the shorter slice.
    unsafe { dot_f32_neon_impl(a, b) }
}

#[target_feature(enable = "neon")]
unsafe fn row_panel_f32_neon_impl(a: &[f32], b: &[f32], stride: usize, out: &mut [f32]) {
    let w = out.len();
    let (pb, po) = (b.as_ptr(), out.as_mut_ptr());
    let mut c = 0;
    while c + 16 <= w {
        let mut acc = [vdupq_n_f32(0.0); 4];
        for (k, &ak) in a.iter().enumerate() {
            let x = vdupq_n_f32(ak);
            for (n, accn) in acc.iter_mut().enumerate() {
                // SAFETY: the caller checked b's length; c + 16 ≤ w.
                let y = unsafe { vld1q_f32(pb.add(k * stride + c + 4 * n)) };
                *accn = vfmaq_f32(*accn, x, y);
            }
        }
        for (n, accn) in acc.iter().enumerate() {
            // SAFETY: c + 4n + 4 ≤ w.
            unsafe { vst1q_f32(po.add(c + 4 * n), *accn) };
        }
        c += 16;
    }
    super::scalar::row_panel_from(a, b, stride, out, c);
}

/// Row vector times matrix with NEON, each output summed as [`super::scalar::row_panel`] does.
pub fn row_panel_f32_neon(a: &[f32], b: &[f32], stride: usize, out: &mut [f32]) {
    super::check_row_panel_args(a, b, stride, out.len());
    // SAFETY: bounds checked above; NEON presence is the table's invariant.
    unsafe { row_panel_f32_neon_impl(a, b, stride, out) }
}

#[target_feature(enable = "neon")]
#[allow(clippy::needless_range_loop)] // k indexes b's rows and every a[r] alike
unsafe fn row_panel4_f32_neon_impl<const M: usize>(
    a: [&[f32]; 4],
    b: &[f32],
    stride: usize,
    out: &mut [f32],
    w: usize,
) {
    let kn = a[0].len();
    let (pb, po) = (b.as_ptr(), out.as_mut_ptr());
    let mut c = 0;
    while c + 16 <= w {
        let mut acc = [[vdupq_n_f32(0.0); 4]; M];
        for k in 0..kn {
            let mut y = [vdupq_n_f32(0.0); 4];
            for (n, yn) in y.iter_mut().enumerate() {
                // SAFETY: the entry point checked b's length; c + 16 ≤ w.
                *yn = unsafe { vld1q_f32(pb.add(k * stride + c + 4 * n)) };
            }
            for (r, accr) in acc.iter_mut().enumerate() {
                let x = vdupq_n_f32(a[r][k]);
                for (accn, &yn) in accr.iter_mut().zip(&y) {
                    *accn = vfmaq_f32(*accn, x, yn);
                }
            }
        }
        for (r, accr) in acc.iter().enumerate() {
            for (n, accn) in accr.iter().enumerate() {
                // SAFETY: out holds M·w values; c + 4n + 4 ≤ w.
                unsafe { vst1q_f32(po.add(r * w + c + 4 * n), *accn) };
            }
        }
        c += 16;
    }
    if c < w {
        // The last columns row by row, as the one-row kernel does them.
        let rest = if kn == 0 { &[][..] } else { &b[c..] };
        for r in 0..M {
            // SAFETY: the sub-slices keep the checked bounds.
            unsafe {
                row_panel_f32_neon_impl(a[r], rest, stride, &mut out[r * w + c..(r + 1) * w])
            };
        }
    }
}

/// Four row panels with NEON, each output as [`super::scalar::row_panel`] sums it.
pub fn row_panel4_f32_neon(
    a: [&[f32]; 4],
    m: usize,
    b: &[f32],
    stride: usize,
    out: &mut [f32],
    w: usize,
) {
    super::check_row_panel4_args(&a, m, b, stride, out, w);
    // SAFETY: shapes checked above; NEON presence is the table's invariant.
    unsafe { by_rows!(m, M => row_panel4_f32_neon_impl::<M>(a, b, stride, out, w)) }
}

/// [`super::scalar::exp_fast`] on 4 lanes, operation for operation.
#[inline(always)]
unsafe fn exp4_neon(x: float32x4_t) -> float32x4_t {
    use super::scalar::exp_consts::*;
    // No closures here: a closure does not inherit the caller's target features, and the
    // intrinsics in it would become calls.
    // vmaxnmq: a NaN lane becomes LO, as f32::max does.
    let x = vminq_f32(vmaxnmq_f32(x, vdupq_n_f32(LO)), vdupq_n_f32(HI));
    let round = vdupq_n_f32(ROUND);
    let n = vsubq_f32(vaddq_f32(vmulq_f32(x, vdupq_n_f32(LOG2E)), round), round);
    let r = vsubq_f32(x, vmulq_f32(n, vdupq_n_f32(LN2_HI)));
    let r = vsubq_f32(r, vmulq_f32(n, vdupq_n_f32(LN2_LO)));
    let mut p = vdupq_n_f32(P[0]);
    for &k in &P[1..] {
        p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(k));
    }
    let y = vaddq_f32(
        vaddq_f32(vmulq_f32(p, vmulq_f32(r, r)), r),
        vdupq_n_f32(1.0),
    );
    let e = vshlq_n_s32::<23>(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)));
    vmulq_f32(y, vreinterpretq_f32_s32(e))
}

#[target_feature(enable = "neon")]
unsafe fn softmax_f32_neon_impl(x: &mut [f32]) {
    let n = x.len();
    let p = x.as_mut_ptr();
    let mut m4 = vdupq_n_f32(f32::NEG_INFINITY);
    let mut i = 0;
    while i + 4 <= n {
        // SAFETY: i + 4 ≤ n.
        m4 = vmaxq_f32(m4, unsafe { vld1q_f32(p.add(i)) });
        i += 4;
    }
    let max = vmaxvq_f32(m4).max(x[i..].iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)));
    let mv = vdupq_n_f32(max);
    // f64 lanes (0,1), (2,3), (4,5), (6,7) of the scalar's 8.
    let mut a = [vdupq_n_f64(0.0); 4];
    i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 ≤ n.
        unsafe {
            let e0 = exp4_neon(vsubq_f32(vld1q_f32(p.add(i)), mv));
            let e1 = exp4_neon(vsubq_f32(vld1q_f32(p.add(i + 4)), mv));
            vst1q_f32(p.add(i), e0);
            vst1q_f32(p.add(i + 4), e1);
            a[0] = vaddq_f64(a[0], vcvt_f64_f32(vget_low_f32(e0)));
            a[1] = vaddq_f64(a[1], vcvt_high_f64_f32(e0));
            a[2] = vaddq_f64(a[2], vcvt_f64_f32(vget_low_f32(e1)));
            a[3] = vaddq_f64(a[3], vcvt_high_f64_f32(e1));
        }
        i += 8;
    }
    let mut tail = 0f64;
    for v in &mut x[i..] {
        *v = super::scalar::exp_fast(*v - max);
        tail += *v as f64;
    }
    // s = [l0+l4, l1+l5 | l2+l6, l3+l7]; then (s0+s2) + (s1+s3), as the scalar.
    let t = vaddq_f64(vaddq_f64(a[0], a[2]), vaddq_f64(a[1], a[3]));
    let inv = (1.0 / ((vgetq_lane_f64::<0>(t) + vgetq_lane_f64::<1>(t)) + tail)) as f32;
    let iv = vdupq_n_f32(inv);
    i = 0;
    while i + 4 <= n {
        // SAFETY: i + 4 ≤ n.
        unsafe { vst1q_f32(p.add(i), vmulq_f32(vld1q_f32(p.add(i)), iv)) };
        i += 4;
    }
    for v in &mut x[i..] {
        *v *= inv;
    }
}

/// The attention softmax with NEON, bit for bit [`super::scalar::softmax_rows`]: each row
/// scaled, then [`super::scalar::softmax_fast`].
pub fn softmax_rows_neon(x: &mut [f32], rows: usize, scale: f32) {
    super::check_softmax_rows(x, rows);
    debug_assert!(super::Isa::Neon.available());
    super::scalar::rows_scaled(x, rows, scale, |row| {
        // SAFETY: NEON presence is the table's invariant; the body stays within `row`.
        unsafe { softmax_f32_neon_impl(row) }
    });
}

/// One full block of 32 activations: the scalar `quantize_span`, operation for operation, for
/// finite inputs.
#[target_feature(enable = "neon")]
unsafe fn quantize_block32_neon(x: &[f32], q: &mut [i8]) -> f32 {
    assert!(x.len() == QBLOCK && q.len() == QBLOCK);
    let (x, q) = (x.as_ptr(), q.as_mut_ptr());
    // SAFETY (whole body): 32 readable floats at x and 32 writable bytes at q (asserted).
    unsafe {
        // Loops, not closures: see exp4_neon.
        let mut v = [vdupq_n_f32(0.0); 8];
        for (j, vj) in v.iter_mut().enumerate() {
            *vj = vld1q_f32(x.add(4 * j));
        }
        let mut m = vdupq_n_f32(0.0);
        for &x in &v {
            m = vmaxq_f32(m, vabsq_f32(x));
        }
        let amax = vmaxvq_f32(m);
        let scale = if amax > 0.0 { amax / 127.0 } else { 1.0 };
        let inv = vdupq_n_f32(1.0 / scale);
        let (lo, hi) = (vdupq_n_f32(-127.0), vdupq_n_f32(127.0));
        let magic = vdupq_n_f32(super::scalar::exp_consts::ROUND);
        let mut i = [vdupq_n_s32(0); 8];
        for (ij, &x) in i.iter_mut().zip(&v) {
            let r = vmaxq_f32(vminq_f32(vmulq_f32(x, inv), hi), lo);
            *ij = vcvtq_s32_f32(vsubq_f32(vaddq_f32(r, magic), magic));
        }
        for h in 0..2 {
            let a = vcombine_s16(vqmovn_s32(i[4 * h]), vqmovn_s32(i[4 * h + 1]));
            let b = vcombine_s16(vqmovn_s32(i[4 * h + 2]), vqmovn_s32(i[4 * h + 3]));
            vst1q_s8(q.add(16 * h), vcombine_s8(vqmovn_s16(a), vqmovn_s16(b)));
        }
        scale
    }
}

/// Activation quantization with NEON, bit for bit [`super::scalar::quantize_blocks`].
pub fn quantize_blocks_neon(
    x: &[f32],
    rows: usize,
    k: usize,
    kp: usize,
    q: &mut [i8],
    scales: &mut [f32],
) {
    super::check_quantize_args(x, rows, k, kp, q, scales);
    super::scalar::quantize_blocks_with(x, rows, k, kp, q, scales, |x, q| {
        // SAFETY: NEON presence is the table's invariant; the block kernel checks its
        // slices.
        unsafe { quantize_block32_neon(x, q) }
    });
}

/// [`super::scalar::gelu_fast`] on 4 lanes, operation for operation (`a - c` as `a + (-c)`,
/// which IEEE makes the same number).
#[inline(always)]
unsafe fn gelu4_neon(v: float32x4_t) -> float32x4_t {
    use super::scalar::erf_consts::{P, Q};
    let x = vmulq_f32(v, vdupq_n_f32(std::f32::consts::FRAC_1_SQRT_2));
    let x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-4.0)), vdupq_n_f32(4.0));
    let x2 = vmulq_f32(x, x);
    let mut p = vdupq_n_f32(P[0]);
    for &c in &P[1..] {
        p = vaddq_f32(vmulq_f32(p, x2), vdupq_n_f32(c));
    }
    let mut q = vdupq_n_f32(Q[0]);
    for &c in &Q[1..] {
        q = vaddq_f32(vmulq_f32(q, x2), vdupq_n_f32(c));
    }
    let erf = vdivq_f32(vmulq_f32(x, p), q);
    vmulq_f32(
        vmulq_f32(vdupq_n_f32(0.5), v),
        vaddq_f32(vdupq_n_f32(1.0), erf),
    )
}

#[target_feature(enable = "neon")]
unsafe fn panel_epilogue_neon_impl(
    acc: &mut [[f32; NR]; MR],
    m: usize,
    scales: &[f32; NR],
    bias: Option<&[f32; NR]>,
    gelu: bool,
) {
    for y in acc.iter_mut().take(m) {
        for h in 0..2 {
            // SAFETY (loads and stores): 4 floats at 4h of [f32; 8] arrays.
            unsafe {
                let mut v = vmulq_f32(
                    vld1q_f32(y.as_ptr().add(4 * h)),
                    vld1q_f32(scales.as_ptr().add(4 * h)),
                );
                if let Some(b) = bias {
                    v = vaddq_f32(v, vld1q_f32(b.as_ptr().add(4 * h)));
                }
                if gelu {
                    v = gelu4_neon(v);
                }
                vst1q_f32(y.as_mut_ptr().add(4 * h), v);
            }
        }
    }
}

/// The int8 GEMM's epilogue with NEON, bit for bit [`super::scalar::panel_epilogue`].
pub fn panel_epilogue_neon(
    acc: &mut [[f32; NR]; MR],
    m: usize,
    scales: &[f32; NR],
    bias: Option<&[f32; NR]>,
    gelu: bool,
) {
    debug_assert!(super::Isa::Neon.available());
    // SAFETY: NEON presence is the table's invariant; the body touches fixed-size arrays only.
    unsafe { panel_epilogue_neon_impl(acc, m, scales, bias, gelu) }
}

/// The scalar `sum8_f64` combine of 8 f64 lanes held as (0,1), (2,3), (4,5), (6,7).
#[inline(always)]
unsafe fn combine8_f64_neon(a: [float64x2_t; 4]) -> f64 {
    let t = vaddq_f64(vaddq_f64(a[0], a[2]), vaddq_f64(a[1], a[3]));
    vgetq_lane_f64::<0>(t) + vgetq_lane_f64::<1>(t)
}

// Loops written out, no closures: see exp4_neon.
#[target_feature(enable = "neon")]
unsafe fn layer_norm_f32_neon_impl(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = x.len();
    let p = x.as_mut_ptr();
    let whole = n / 8 * 8;
    let mut acc = [vdupq_n_f64(0.0); 4];
    for i in (0..whole).step_by(8) {
        // SAFETY: i + 8 ≤ n.
        let (v0, v1) = unsafe { (vld1q_f32(p.add(i)), vld1q_f32(p.add(i + 4))) };
        acc[0] = vaddq_f64(acc[0], vcvt_f64_f32(vget_low_f32(v0)));
        acc[1] = vaddq_f64(acc[1], vcvt_high_f64_f32(v0));
        acc[2] = vaddq_f64(acc[2], vcvt_f64_f32(vget_low_f32(v1)));
        acc[3] = vaddq_f64(acc[3], vcvt_high_f64_f32(v1));
    }
    let tail = x[whole..].iter().fold(0f64, |t, &v| t + v as f64);
    // SAFETY: plain register arithmetic.
    let mean = (unsafe { combine8_f64_neon(acc) } + tail) / n as f64;
    let mv = vdupq_n_f64(mean);
    let mut acc = [vdupq_n_f64(0.0); 4];
    for i in (0..whole).step_by(8) {
        // SAFETY: i + 8 ≤ n.
        let (v0, v1) = unsafe { (vld1q_f32(p.add(i)), vld1q_f32(p.add(i + 4))) };
        let d = [
            vsubq_f64(vcvt_f64_f32(vget_low_f32(v0)), mv),
            vsubq_f64(vcvt_high_f64_f32(v0), mv),
            vsubq_f64(vcvt_f64_f32(vget_low_f32(v1)), mv),
            vsubq_f64(vcvt_high_f64_f32(v1), mv),
        ];
        for (a, dj) in acc.iter_mut().zip(d) {
            *a = vaddq_f64(*a, vmulq_f64(dj, dj));
        }
    }
    let tail = x[whole..]
        .iter()
        .fold(0f64, |t, &v| t + (v as f64 - mean) * (v as f64 - mean));
    // SAFETY: plain register arithmetic.
    let var = (unsafe { combine8_f64_neon(acc) } + tail) / n as f64;
    let rstd = 1.0 / (var + eps as f64).sqrt();
    let rv = vdupq_n_f64(rstd);
    for i in (0..whole).step_by(4) {
        // SAFETY: i + 4 ≤ n = gamma.len() = beta.len() (checked by the entry point).
        unsafe {
            let v = vld1q_f32(p.add(i));
            let lo = vmulq_f64(vsubq_f64(vcvt_f64_f32(vget_low_f32(v)), mv), rv);
            let hi = vmulq_f64(vsubq_f64(vcvt_high_f64_f32(v), mv), rv);
            let y = vcombine_f32(vcvt_f32_f64(lo), vcvt_f32_f64(hi));
            let y = vaddq_f32(
                vmulq_f32(y, vld1q_f32(gamma.as_ptr().add(i))),
                vld1q_f32(beta.as_ptr().add(i)),
            );
            vst1q_f32(p.add(i), y);
        }
    }
    for j in whole..n {
        x[j] = ((x[j] as f64 - mean) * rstd) as f32 * gamma[j] + beta[j];
    }
}

/// LayerNorm over rows with NEON, bit for bit [`super::scalar::layer_norm_rows`].
pub fn layer_norm_rows_neon(
    x: &mut [f32],
    residual: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    super::check_layer_norm_rows(x, residual, gamma, beta);
    debug_assert!(super::Isa::Neon.available());
    super::scalar::rows_with_residual(x, residual, gamma.len(), |row| {
        // SAFETY: NEON presence is the table's invariant; lengths checked above.
        unsafe { layer_norm_f32_neon_impl(row, gamma, beta, eps) }
    });
}
