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

/// Runs of whole blocks go through [`quantize_run_neon`] (all rows as one run when there is
/// no padding), a partial last block and the padding through the scalar code.
#[target_feature(enable = "neon")]
unsafe fn quantize_blocks_neon_impl(
    x: &[f32],
    rows: usize,
    k: usize,
    kp: usize,
    q: &mut [i8],
    scales: &mut [f32],
) {
    let (nb, whole) = (kp / QBLOCK, k / QBLOCK);
    if whole == nb {
        // SAFETY: rows·k floats, rows·kp bytes and rows·nb scales (checked by the entry):
        // rows·nb consecutive whole blocks.
        unsafe { quantize_run_neon(x.as_ptr(), q.as_mut_ptr(), scales.as_mut_ptr(), rows * nb) };
        return;
    }
    for r in 0..rows {
        let (xr, qr) = (&x[r * k..(r + 1) * k], &mut q[r * kp..(r + 1) * kp]);
        let sr = &mut scales[r * nb..(r + 1) * nb];
        // SAFETY: the row's first `whole` blocks are inside xr, qr and sr.
        unsafe { quantize_run_neon(xr.as_ptr(), qr.as_mut_ptr(), sr.as_mut_ptr(), whole) };
        let (xt, qt) = (&xr[whole * QBLOCK..], &mut qr[whole * QBLOCK..]);
        crate::kernels::scalar::quantize_blocks(xt, 1, xt.len(), qt.len(), qt, &mut sr[whole..]);
    }
}

/// `n` consecutive whole blocks (32 floats from `x`, 32 codes to `q`, one scale to `scales`
/// each), four at a time.
///
/// # Safety
/// NEON; `x` holds `32·n` readable floats, `q` `32·n` writable bytes, `scales` `n` floats.
#[inline(always)]
unsafe fn quantize_run_neon(x: *const f32, q: *mut i8, scales: *mut f32, n: usize) {
    let mut b = 0;
    // SAFETY: blocks b..b + G < n are inside the caller's spans.
    unsafe {
        while b + 4 <= n {
            quantize_group::<4>(x.add(b * QBLOCK), q.add(b * QBLOCK), scales.add(b));
            b += 4;
        }
        let (x, q, s) = (x.add(b * QBLOCK), q.add(b * QBLOCK), scales.add(b));
        match n - b {
            1 => quantize_group::<1>(x, q, s),
            2 => quantize_group::<2>(x, q, s),
            3 => quantize_group::<3>(x, q, s),
            _ => {}
        }
    }
}

/// `G` ≤ 4 whole blocks: the scalar `quantize_span`, operation for operation, for finite
/// inputs (|x| max, scale = amax / 127 or 1, x · (1 / scale) clamped to ±127, rounded half to
/// even, narrowed to i8). The blocks' maxima fold into one vector (two pairwise-max steps
/// rather than a horizontal max each), so that the two divisions are one vector division each
/// per four blocks. Rounding adds 1.5·2^23 as the scalar code does, and since |r| < 128 the
/// sum's low byte is then the code itself: two UZP1 steps narrow it, with no conversion
/// instruction (FCVTZS is two uops on one pipe on the Neoverse cores) and no subtraction.
///
/// The clamp changes nothing while `1 / scale` is finite: |x| ≤ amax and three roundings
/// (scale, its reciprocal, the product; the scale's relative error ≤ 2^-22 even when it is
/// subnormal, as long as its reciprocal is finite) keep |r| ≤ 127·(1 + 2^-21) < 127.5, and an
/// infinite block (scale ∞, `1 / scale` 0) gives 0 · ∞ = the default NaN, whose low byte is
/// the scalar code's 0. So a group is clamped only when a block's scale is so small that its
/// reciprocal overflows (amax < ~3.7·10^-37). (Only a NaN input differs from the scalar
/// code: its payload's low byte where the scalar code writes 0; a NaN also changes the
/// block's scale, as in every SIMD tier.)
///
/// # Safety
/// NEON; `x` holds `32·G` readable floats, `q` `32·G` writable bytes, `scales` `G` floats.
#[inline(always)]
unsafe fn quantize_group<const G: usize>(x: *const f32, q: *mut i8, scales: *mut f32) {
    // SAFETY: (the whole body) register arithmetic and loads / stores inside the caller's
    // spans (block j < G).
    unsafe {
        let mut m = [vdupq_n_f32(0.0); 4];
        for (j, mj) in m.iter_mut().enumerate().take(G) {
            let p = x.add(j * QBLOCK);
            let mut a = [vdupq_n_f32(0.0); 8];
            for (i, ai) in a.iter_mut().enumerate() {
                *ai = vabsq_f32(vld1q_f32(p.add(4 * i)));
            }
            // A tree, not a chain: the maximum is exact, so its order does not change it.
            let a01 = vmaxq_f32(vmaxq_f32(a[0], a[1]), vmaxq_f32(a[2], a[3]));
            let a23 = vmaxq_f32(vmaxq_f32(a[4], a[5]), vmaxq_f32(a[6], a[7]));
            *mj = vmaxq_f32(a01, a23);
        }
        // Lane j: block j's maximum.
        let amax = vpmaxq_f32(vpmaxq_f32(m[0], m[1]), vpmaxq_f32(m[2], m[3]));
        let one = vdupq_n_f32(1.0);
        let pos = vcgtq_f32(amax, vdupq_n_f32(0.0));
        let scale = vbslq_f32(pos, vdivq_f32(amax, vdupq_n_f32(127.0)), one);
        let inv = vdivq_f32(one, scale);
        let mut sc = [0f32; 4];
        vst1q_f32(sc.as_mut_ptr(), scale);
        std::ptr::copy_nonoverlapping(sc.as_ptr(), scales, G);
        // Lanes past G hold 1: finite.
        if vmaxvq_f32(inv) == f32::INFINITY {
            group_codes::<G, true>(x, q, inv);
        } else {
            group_codes::<G, false>(x, q, inv);
        }
    }
}

/// The codes of `G` blocks, block `j` times lane `j` of `inv`, clamped if `CLAMP`.
///
/// # Safety
/// As [`quantize_group`].
#[inline(always)]
unsafe fn group_codes<const G: usize, const CLAMP: bool>(
    x: *const f32,
    q: *mut i8,
    inv: float32x4_t,
) {
    // SAFETY: block j < G is inside the caller's spans.
    unsafe {
        if G > 0 {
            block_codes::<CLAMP>(x, q, vgetq_lane_f32::<0>(inv));
        }
        if G > 1 {
            block_codes::<CLAMP>(x.add(QBLOCK), q.add(QBLOCK), vgetq_lane_f32::<1>(inv));
        }
        if G > 2 {
            let j = 2 * QBLOCK;
            block_codes::<CLAMP>(x.add(j), q.add(j), vgetq_lane_f32::<2>(inv));
        }
        if G > 3 {
            let j = 3 * QBLOCK;
            block_codes::<CLAMP>(x.add(j), q.add(j), vgetq_lane_f32::<3>(inv));
        }
    }
}

/// One block's 32 codes: `x · inv` (clamped to ±127 if `CLAMP`), plus 1.5·2^23, low bytes
/// (see [`quantize_group`]).
///
/// # Safety
/// NEON; 32 readable floats at `x`, 32 writable bytes at `q`.
#[inline(always)]
unsafe fn block_codes<const CLAMP: bool>(x: *const f32, q: *mut i8, inv: f32) {
    // SAFETY: (the whole body) register arithmetic; loads and stores inside the caller's
    // spans.
    unsafe {
        let (lo, hi) = (vdupq_n_f32(-127.0), vdupq_n_f32(127.0));
        let magic = vdupq_n_f32(crate::kernels::scalar::exp_consts::ROUND);
        let mut t = [vdupq_n_s16(0); 8];
        for (i, ti) in t.iter_mut().enumerate() {
            // Read again, not kept from the max pass (LLVM keeps four blocks' 32 vectors
            // and spills them): a load in `asm!`, which it neither merges nor reuses.
            let v: float32x4_t;
            std::arch::asm!(
                "ldr {v:q}, [{p}]",
                v = out(vreg) v,
                p = in(reg) x.add(4 * i),
                options(nostack, readonly, preserves_flags),
            );
            let mut r = vmulq_n_f32(v, inv);
            if CLAMP {
                r = vmaxq_f32(vminq_f32(r, hi), lo);
            }
            *ti = vreinterpretq_s16_f32(vaddq_f32(r, magic));
        }
        for h in 0..2 {
            let a = vuzp1q_s16(t[4 * h], t[4 * h + 1]);
            let b = vuzp1q_s16(t[4 * h + 2], t[4 * h + 3]);
            let c = vuzp1q_s8(vreinterpretq_s8_s16(a), vreinterpretq_s8_s16(b));
            vst1q_s8(q.add(16 * h), c);
        }
    }
}

/// Activation quantization with NEON, bit for bit [`crate::kernels::scalar::quantize_blocks`]
/// for finite inputs.
pub fn quantize_blocks_neon(
    x: &[f32],
    rows: usize,
    k: usize,
    kp: usize,
    q: &mut [i8],
    scales: &mut [f32],
) {
    crate::kernels::check_quantize_args(x, rows, k, kp, q, scales);
    // SAFETY: NEON presence is the table's invariant; the shapes are checked.
    unsafe { quantize_blocks_neon_impl(x, rows, k, kp, q, scales) }
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

/// Row r's activations (each half of a block) and block scales for a tile of `M` rows: one
/// offset each serves all rows, `32b` and `4b` bytes in block b. Wrapping arithmetic: with
/// `kp = 0` the second half's start is past the end, and never read.
#[inline(always)]
pub(super) fn row_starts<const M: usize>(
    xq: *const i8,
    xs: *const f32,
    kp: usize,
) -> ([[*const i8; 2]; M], [*const f32; M]) {
    let nb = kp / QBLOCK;
    (
        core::array::from_fn(|r| [xq.wrapping_add(r * kp), xq.wrapping_add(r * kp + 16)]),
        core::array::from_fn(|r| xs.wrapping_add(r * nb)),
    )
}

/// A tier's two int8 GEMMs from its tile body `$rows::<M>(xq, xs, kp, w, step)` (`M ≤ MR` rows
/// of one panel, the f32 sums): the single-panel kernel (`$one`, into the accumulators) and
/// the four-panel one (`$four`, each panel's tile in turn, its epilogue, its stores), each a
/// thin `#[target_feature]` body (`$one_body`, `$four_body`) under a checked safe entry.
macro_rules! panel_gemms {
    (
        $features:literal, $rows:ident, $isa:expr,
        $(#[$doc_one:meta])* $one:ident / $one_body:ident,
        $(#[$doc_four:meta])* $four:ident / $four_body:ident $(,)?
    ) => {
        #[target_feature(enable = $features)]
        unsafe fn $one_body<const M: usize>(
            xq: *const i8,
            xs: *const f32,
            kp: usize,
            panel: *const i8,
            step: usize,
            acc: &mut [[f32; NR]; MR],
        ) {
            // SAFETY: the entry's checks are the tile body's contract.
            let f = unsafe { $rows::<M>(xq, xs, kp, panel, step) };
            $crate::kernels::aarch64::int8::store(&f, acc);
        }

        gemm_entry!($(#[$doc_one])* $one, $one_body, $isa);

        #[target_feature(enable = $features)]
        unsafe fn $four_body<const M: usize>(
            xq: *const i8,
            xs: *const f32,
            kp: usize,
            panels: [(*const i8, usize); 4],
            epilogue: Option<Epilogue4<'_>>,
            out: &mut Tile<'_>,
            r0: usize,
        ) {
            for (p, (w, step)) in panels.into_iter().enumerate() {
                // SAFETY: the entry checked every panel for these rows; the tier's features
                // are enabled here.
                unsafe {
                    let f = $rows::<M>(xq, xs, kp, w, step);
                    $crate::kernels::aarch64::int8::store_panel(&f, epilogue, p, out, r0);
                }
            }
        }

        gemm4_entry!($(#[$doc_four])* $four, $four_body, $isa);
    };
}
