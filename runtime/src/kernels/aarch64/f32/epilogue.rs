//! The int8 GEMM's epilogue on NEON: [`scalar::panel_epilogue`] (times the weight scales, plus
//! the bias, then GELU with [`scalar::erf_fast`]) operation for operation, as
//! `f32_bodies::epilogue` does it, with the GELU constants in registers for all rows. The
//! generic body leaves their materialization to LLVM, which redoes it for every row (a MOV,
//! a MOVK and a DUP per constant: 12 of a row's ~75 vector operations), and turns the bias
//! into a select on every row; here the constants come from a table with one `ldr q` each
//! (load pipe) before the rows, and the bias and GELU choices are made once.

use std::arch::aarch64::*;

use super::ldr_q;
use crate::kernels::scalar::erf_consts::{P, Q};
use crate::kernels::{MR, NR};

/// A constant in every lane, 16-byte aligned for `ldr q`.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Splat([f32; 4]);

/// Where each GELU constant sits in [`GELU`].
const SQRT1_2: usize = 0;
const LO: usize = 1;
const HI: usize = 2;
const KP: usize = 3;
const KQ: usize = KP + P.len();
const HALF: usize = KQ + Q.len();
const ONE: usize = HALF + 1;

static GELU: [Splat; ONE + 1] = {
    let mut t = [Splat([0.0; 4]); ONE + 1];
    t[SQRT1_2] = Splat([std::f32::consts::FRAC_1_SQRT_2; 4]);
    t[LO] = Splat([-4.0; 4]);
    t[HI] = Splat([4.0; 4]);
    let mut i = 0;
    while i < P.len() {
        t[KP + i] = Splat([P[i]; 4]);
        i += 1;
    }
    i = 0;
    while i < Q.len() {
        t[KQ + i] = Splat([Q[i]; 4]);
        i += 1;
    }
    t[HALF] = Splat([0.5; 4]);
    t[ONE] = Splat([1.0; 4]);
    t
};

/// The GELU constants in registers: `ldr q` from [`GELU`] (in `asm!`, which LLVM cannot fold
/// back into per-use materializations).
#[inline(always)]
unsafe fn gelu_consts() -> [float32x4_t; ONE + 1] {
    let p = GELU.as_ptr() as *const f32;
    // SAFETY: every offset is inside GELU (ONE + 1 entries of 4 floats); NEON is the
    // caller's.
    unsafe {
        [
            ldr_q::<0>(p),
            ldr_q::<1>(p),
            ldr_q::<2>(p),
            ldr_q::<3>(p),
            ldr_q::<4>(p),
            ldr_q::<5>(p),
            ldr_q::<6>(p),
            ldr_q::<7>(p),
            ldr_q::<8>(p),
            ldr_q::<9>(p),
            ldr_q::<10>(p),
            ldr_q::<11>(p),
            ldr_q::<12>(p),
            ldr_q::<13>(p),
            ldr_q::<14>(p),
            ldr_q::<15>(p),
            ldr_q::<16>(p),
        ]
    }
}

/// [`scalar::gelu_fast`] on 4 lanes, as `f32_bodies::gelu` (`a - c` as `a + (-c)`, the same
/// number), with the constants `k`.
#[inline(always)]
unsafe fn gelu(v: float32x4_t, k: &[float32x4_t; ONE + 1]) -> float32x4_t {
    // SAFETY: register arithmetic; NEON is the caller's.
    unsafe {
        let x = vmulq_f32(v, k[SQRT1_2]);
        let x = vminq_f32(vmaxq_f32(x, k[LO]), k[HI]);
        let x2 = vmulq_f32(x, x);
        let mut p = k[KP];
        for &c in &k[KP + 1..KQ] {
            p = vaddq_f32(vmulq_f32(p, x2), c);
        }
        let mut q = k[KQ];
        for &c in &k[KQ + 1..HALF] {
            q = vaddq_f32(vmulq_f32(q, x2), c);
        }
        let erf = vdivq_f32(vmulq_f32(x, p), q);
        vmulq_f32(vmulq_f32(k[HALF], v), vaddq_f32(k[ONE], erf))
    }
}

/// Rows `..m` of `acc`: times `ws`, plus `b` if `BIAS`, GELU if `GELU_`.
#[inline(always)]
unsafe fn rows<const BIAS: bool, const GELU_: bool>(
    acc: &mut [[f32; NR]; MR],
    m: usize,
    ws: [float32x4_t; 2],
    b: [float32x4_t; 2],
) {
    // SAFETY: NEON is the caller's; every load and store is 4 floats of an [f32; NR] (NR = 8).
    unsafe {
        let k = if GELU_ {
            gelu_consts()
        } else {
            [vdupq_n_f32(0.0); ONE + 1]
        };
        for y in acc.iter_mut().take(m) {
            let p = y.as_mut_ptr();
            for (h, (&w, &bh)) in ws.iter().zip(&b).enumerate() {
                let mut v = vmulq_f32(vld1q_f32(p.add(4 * h)), w);
                if BIAS {
                    v = vaddq_f32(v, bh);
                }
                if GELU_ {
                    v = gelu(v, &k);
                }
                vst1q_f32(p.add(4 * h), v);
            }
        }
    }
}

#[target_feature(enable = "neon")]
unsafe fn panel_epilogue_impl(
    acc: &mut [[f32; NR]; MR],
    m: usize,
    scales: &[f32; NR],
    bias: Option<&[f32; NR]>,
    gelu: bool,
) {
    // SAFETY: NEON is enabled here; scales and bias hold NR = 8 floats.
    unsafe {
        let ws = [
            vld1q_f32(scales.as_ptr()),
            vld1q_f32(scales.as_ptr().add(4)),
        ];
        match (bias, gelu) {
            (Some(b), g) => {
                let b = [vld1q_f32(b.as_ptr()), vld1q_f32(b.as_ptr().add(4))];
                if g {
                    rows::<true, true>(acc, m, ws, b)
                } else {
                    rows::<true, false>(acc, m, ws, b)
                }
            }
            (None, true) => rows::<false, true>(acc, m, ws, ws),
            (None, false) => rows::<false, false>(acc, m, ws, ws),
        }
    }
}

/// The int8 GEMM's epilogue with NEON, bit for bit [`scalar::panel_epilogue`].
pub fn panel_epilogue_neon(
    acc: &mut [[f32; NR]; MR],
    m: usize,
    scales: &[f32; NR],
    bias: Option<&[f32; NR]>,
    gelu: bool,
) {
    const { assert!(NR == 8) };
    // SAFETY: NEON presence is the table's invariant; the arrays have their sizes.
    unsafe { panel_epilogue_impl(acc, m, scales, bias, gelu) }
}
