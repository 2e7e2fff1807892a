//! What the aarch64 int8 GEMMs share (the block step, the store, the safe entry point) and
//! activation quantization. The GEMMs themselves are written per ISA: [`super::gemm_neon`],
//! [`super::gemm_dotprod`] (`sdot`) and [`super::gemm_i8mm`] (`smmla`).

use std::arch::aarch64::*;

use crate::kernels::lanes::{F32Lanes, Pair};
use crate::kernels::{f32_bodies, Epilogue4, Tile, MR, NR, QBLOCK};

#[inline(always)]
pub(super) fn store<const M: usize>(f: &[[float32x4_t; 2]; M], acc: &mut [[f32; NR]; MR]) {
    for (r, fr) in f.iter().enumerate() {
        // SAFETY: acc[r] holds 8 f32.
        unsafe {
            vst1q_f32(acc[r].as_mut_ptr(), fr[0]);
            vst1q_f32(acc[r].as_mut_ptr().add(4), fr[1]);
        }
    }
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
            crate::kernels::check_gemm_args(xq, xs, m, kp, &panel);
            debug_assert!($isa.available());
            let (x, s, p) = (xq.as_ptr(), xs.as_ptr(), panel.w.as_ptr());
            let step = 4 * NR * panel.interleave;
            // SAFETY: lengths checked above; the tier's features are the table's invariant.
            unsafe { by_rows!(m, M => $body::<M>(x, s, kp, p, step, acc)) }
        }
    };
}

/// One full block of 32 activations: the scalar `quantize_span`, operation for operation, for
/// finite inputs.
#[target_feature(enable = "neon")]
unsafe fn quantize_block32_neon(x: &[f32], q: &mut [i8]) -> f32 {
    assert!(x.len() == QBLOCK && q.len() == QBLOCK);
    let (x, q) = (x.as_ptr(), q.as_mut_ptr());
    // SAFETY: (the whole body) 32 readable floats at x and 32 writable bytes at q (asserted).
    unsafe {
        // Loops, not closures: a closure would not inherit the target features.
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
        let magic = vdupq_n_f32(crate::kernels::scalar::exp_consts::ROUND);
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

/// Activation quantization with NEON, bit for bit [`crate::kernels::scalar::quantize_blocks`].
pub fn quantize_blocks_neon(
    x: &[f32],
    rows: usize,
    k: usize,
    kp: usize,
    q: &mut [i8],
    scales: &mut [f32],
) {
    crate::kernels::check_quantize_args(x, rows, k, kp, q, scales);
    crate::kernels::scalar::quantize_blocks_with(x, rows, k, kp, q, scales, |x, q| {
        // SAFETY: NEON presence is the table's invariant; the block kernel checks its
        // slices.
        unsafe { quantize_block32_neon(x, q) }
    });
}

/// `1.5 · 2²³` as f32 bits: a block's i32 sums start here instead of at 0. A block sum `C`
/// has |C| ≤ 32·127·128 < 2²², so the accumulator's bits stay those of the float
/// `1.5 · 2²³ + C` (exponent 2²³, `C` in the mantissa), and one subtraction of
/// [`BLOCK_BIAS_F32`] gives `float(C)` exactly: a plain FSUB (either vector pipe) instead
/// of SCVTF (two uops on one pipe on Neoverse N1/N2).
pub(super) const BLOCK_BIAS_BITS: i32 = 0x4B40_0000;
/// [`BLOCK_BIAS_BITS`] as the float it is.
pub(super) const BLOCK_BIAS_F32: f32 = 12_582_912.0;
const _: () = assert!(f32::from_bits(BLOCK_BIAS_BITS as u32) == BLOCK_BIAS_F32);
/// Start values of a block's accumulators, read from memory (a load, not a vector op).
/// `[BIAS, 0, BIAS, 0]` serves kernels whose lanes are summed in pairs at the end.
static BLOCK_START: [[i32; 4]; 2] = [
    [BLOCK_BIAS_BITS; 4],
    [BLOCK_BIAS_BITS, 0, BLOCK_BIAS_BITS, 0],
];

/// A block's accumulator start: [`BLOCK_BIAS_BITS`] in every lane (`PAIRS` false) or in the
/// even lanes only (`PAIRS` true: two lanes are added into one output later). Loaded by an
/// `ldr q` that the compiler may neither merge nor turn into a register copy (which would
/// cost a vector-pipe slot): the asm is not `pure`.
#[inline(always)]
pub(super) unsafe fn block_start<const PAIRS: bool>() -> int32x4_t {
    let p = BLOCK_START[PAIRS as usize].as_ptr();
    let v: int32x4_t;
    // SAFETY: 16 readable bytes of a static; a load only.
    unsafe {
        core::arch::asm!("ldr {v:q}, [{p}]", v = lateout(vreg) v, p = in(reg) p,
            options(nostack, readonly, preserves_flags))
    };
    v
}

/// The 16 bytes at `p + G·STEP + 16·J` (group `G` of groups `STEP` bytes apart, half `J`)
/// with one `ldr q`, the offset an immediate. Loads are asm so that the compiler cannot pair
/// neighbours into `ldp q`, which llvm-19's Cortex-A55 model issues in 6 load-pipe cycles
/// against 1 per `ldr q` (on Neoverse N1/N2 the two cost the same), nor move them away from
/// their use (it then hoists all of a block's loads and spills).
///
/// # Safety
/// 16 readable bytes there.
#[inline(always)]
pub(super) unsafe fn ldr_q<const STEP: usize, const G: usize, const J: usize>(
    p: *const i8,
) -> int8x16_t {
    let v: int8x16_t;
    // SAFETY: the caller's contract; a load only.
    unsafe {
        core::arch::asm!("ldr {v:q}, [{p}, #{o}]", v = lateout(vreg) v, p = in(reg) p,
            o = const G * STEP + 16 * J, options(nostack, readonly, preserves_flags))
    };
    v
}

/// The 16 bytes at `p + o`, a register offset: a loop moves one offset for several rows
/// instead of a pointer per row (a post-indexed load would move its pointer for free, but
/// llvm-19's Cortex-A55 model charges it 3 cycles against 1).
///
/// # Safety
/// 16 readable bytes at `p + o`.
#[inline(always)]
pub(super) unsafe fn ldr_q_at(p: *const i8, o: usize) -> int8x16_t {
    let v: int8x16_t;
    // SAFETY: the caller's contract; a load only.
    unsafe {
        core::arch::asm!("ldr {v:q}, [{p}, {o}]", v = lateout(vreg) v, p = in(reg) p, o = in(reg) o,
            options(nostack, readonly, preserves_flags))
    };
    v
}

/// [`BLOCK_BIAS_F32`] in every lane, loaded (`ldr q`, a load-pipe op): left to itself the
/// compiler rematerializes the constant with a vector-pipe `dup` in every block.
#[inline(always)]
pub(super) unsafe fn block_bias() -> float32x4_t {
    // The bits of the float BLOCK_BIAS_F32 in all four lanes: BLOCK_START[0].
    let p = BLOCK_START[0].as_ptr();
    let v: float32x4_t;
    // SAFETY: 16 readable bytes of a static; a load only.
    unsafe {
        core::arch::asm!("ldr {v:q}, [{p}]", v = lateout(vreg) v, p = in(reg) p,
            options(nostack, readonly, preserves_flags))
    };
    v
}

/// The block step of a [`block_start`]ed block: `f += float(C) · s`, one fused multiply-add
/// per lane as the scalar kernel does, `float(C)` recovered exactly by one subtraction of
/// `bias` ([`block_bias`]). The scale at byte `o` of `s` comes in with `ldr s` (a load, a
/// register offset as [`ldr_q_at`]) and is used by element (`fmla .s[0]`): the compiler
/// would otherwise broadcast it with `ld1r`, which costs a vector-pipe uop too.
///
/// # Safety
/// A readable f32 at byte `o` of `s`.
#[inline(always)]
pub(super) unsafe fn block_step(
    f: &mut [float32x4_t; 2],
    c: [int32x4_t; 2],
    s: *const f32,
    o: usize,
    bias: float32x4_t,
) {
    let sv: float32x4_t;
    // SAFETY: the caller's contract; a load only.
    unsafe {
        core::arch::asm!("ldr {v:s}, [{p}, {o}]", v = lateout(vreg) sv, p = in(reg) s, o = in(reg) o,
            options(nostack, readonly, preserves_flags))
    };
    // SAFETY: register arithmetic; the caller runs with NEON.
    unsafe {
        for (fj, cj) in f.iter_mut().zip(c) {
            *fj = vfmaq_laneq_f32::<0>(*fj, vsubq_f32(vreinterpretq_f32_s32(cj), bias), sv);
        }
    }
}

/// Rows `r0..r0 + M` of panel `p`'s outputs (`f`, one panel's [`NR`] f32 per row) into the
/// four-panel tile, after the epilogue if there is one (exactly [`crate::kernels::scalar::panel_epilogue`]).
#[inline(always)]
pub(super) unsafe fn store_panel<const M: usize>(
    f: &[[float32x4_t; 2]; M],
    epilogue: Option<Epilogue4<'_>>,
    p: usize,
    out: &mut Tile<'_>,
    r0: usize,
) {
    type Neon8 = Pair<float32x4_t>;
    // SAFETY: NEON arithmetic (the caller runs with it); loads of NR floats at offset p·NR
    // < 4·NR of fixed-size arrays; stores of NR floats into a tile row of 4·NR (`row`
    // checks the row).
    unsafe {
        #[allow(clippy::manual_map)] // a closure would not inherit the target features
        let e = match epilogue {
            Some(e) => Some((
                Neon8::load(e.scales.as_ptr().add(p * NR)),
                match e.bias {
                    Some(b) => Some(Neon8::load(b.as_ptr().add(p * NR))),
                    None => None,
                },
                e.gelu,
            )),
            None => None,
        };
        for (r, fr) in f.iter().enumerate() {
            let mut y = Pair(*fr);
            if let Some((ws, b, gelu)) = e {
                y = f32_bodies::epilogue(y, ws, b, gelu);
            }
            y.store(out.row(r0 + r).as_mut_ptr().add(p * NR));
        }
    }
}

/// The safe entry of a four-panel GEMM: checks the shapes, then runs `$tile::<M>` (the tier's
/// `#[target_feature]` function doing all four panels of `M ≤ MR` rows) [`MR`] rows at a
/// time. Each panel is read through its own pointer and group stride, so pairs, lone panels
/// and mixes of both layouts all take the same path.
macro_rules! gemm4_entry {
    ($(#[$doc:meta])* $name:ident, $tile:ident, $isa:expr) => {
        $(#[$doc])*
        pub fn $name(
            xq: &[i8],
            xs: &[f32],
            kp: usize,
            panels: [Panel<'_>; 4],
            epilogue: Option<Epilogue4<'_>>,
            mut out: Tile<'_>,
        ) {
            let m = out.rows();
            for p in &panels {
                crate::kernels::check_gemm_operands(xq, xs, m, kp, p);
            }
            debug_assert!($isa.available());
            let nb = kp / QBLOCK;
            let w = panels.map(|p| (p.w.as_ptr(), 4 * NR * p.interleave));
            for r0 in (0..m).step_by(MR) {
                let rows = MR.min(m - r0);
                // SAFETY: rows r0.. of xq and xs, inside them (checked for all m rows).
                let (x, s) = unsafe { (xq.as_ptr().add(r0 * kp), xs.as_ptr().add(r0 * nb)) };
                let o = &mut out;
                // SAFETY: lengths checked above; the tier's features are the table's
                // invariant.
                unsafe { by_rows!(rows, M => $tile::<M>(x, s, kp, w, epilogue, o, r0)) }
            }
        }
    };
}
