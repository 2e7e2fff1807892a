//! The four-panel kernel's hot loop and what it reads. A row pair's activations are zipped
//! once per call (`zip_pairs`): per block, the four 2 × 8 `smmla` operands of its 32 inputs
//! and the vector of its rows' block scales, [s0, s0, s1, s1]; the loop (`row_pair2`) then
//! loads them (load pipes) instead of zipping and building them again for each pair of panels
//! (vector pipes, which bound it). Per block and two panels: 32 `smmla`, 8 `fsub`, 8 `fmla`,
//! on the vector pipes; 23 loads.

use std::arch::aarch64::*;

use super::{MAGIC, STEP};
use crate::kernels::QBLOCK;

/// Bytes per row pair per block in the zipped buffer: four operands, one scale vector.
pub(super) const PAIR_BLOCK: usize = 5 * 16;

/// Sixteen bytes of 1.5 · 2^23 twice: one `ldp` starts two blocks' sums.
static MAGIC8: [f32; 8] = [MAGIC; 8];

/// Zips `pairs` row pairs of `nb` blocks into `z` (`pairs · nb · PAIR_BLOCK` bytes): pair
/// `i` is rows `r0 + 2i` and `r0 + 2i + 1` of `m` (the last row twice for a lone last row).
///
/// # Safety
/// NEON; rows `r0..` of `m` of `kp` codes at `xq` and `nb` scales at `xs`; `z` writable.
#[inline(always)]
pub(super) unsafe fn zip_pairs(
    (xq, xs): (*const i8, *const f32),
    (kp, nb): (usize, usize),
    (r0, m): (usize, usize),
    pairs: usize,
    z: *mut u8,
) {
    for i in 0..pairs {
        // SAFETY: (the whole body) rows r and r1 are < m; block b of each is inside its row;
        // pair i's bytes are inside z.
        unsafe {
            let (x, s) = super::pair_at(xq, xs, kp, r0 + 2 * i, m);
            let zi = z.add(i * nb * PAIR_BLOCK);
            for b in 0..nb {
                let zb = zi.add(b * PAIR_BLOCK) as *mut i8;
                for h in 0..2 {
                    let a0 = vreinterpretq_s64_s8(vld1q_s8(x[0].add(b * QBLOCK + 16 * h)));
                    let a1 = vreinterpretq_s64_s8(vld1q_s8(x[1].add(b * QBLOCK + 16 * h)));
                    vst1q_s8(zb.add(32 * h), vreinterpretq_s8_s64(vzip1q_s64(a0, a1)));
                    vst1q_s8(
                        zb.add(32 * h + 16),
                        vreinterpretq_s8_s64(vzip2q_s64(a0, a1)),
                    );
                }
                let (s0, s1) = (*s[0].add(b), *s[1].add(b));
                vst1q_f32(zb.add(64) as *mut f32, vld1q_f32([s0, s0, s1, s1].as_ptr()));
            }
        }
    }
}

/// One zipped row pair (`nb` blocks from `z`) times two repacked panels: per panel, per
/// output pair q, the f32 sums [x0·o2q, x0·o2q+1, x1·o2q, x1·o2q+1], as `super::row_pair`
/// gives them. One `asm!` block: the order of loads and `smmla`s and the registers as written
/// (30 of the 32 vector registers), which matters on the in-order cores (Cortex-A510).
///
/// # Safety
/// i8mm; `nb > 0`; `z` holds `nb · PAIR_BLOCK` bytes, `w` panels `nb · QBLOCK` inputs.
#[inline(always)]
pub(super) unsafe fn row_pair2(
    z: *const u8,
    nb: usize,
    w: [*const i8; 2],
) -> [[float32x4_t; 4]; 2] {
    const { assert!(STEP == 64 && PAIR_BLOCK == 80) };
    // SAFETY: register arithmetic, and loads inside the zipped pair (80 bytes per block), the
    // panels (256 bytes per block) and MAGIC8.
    unsafe {
        let mut f = [vdupq_n_f32(0.0); 8];
        core::arch::asm!(
            "2:",
            // The block's sums start at the bits of 1.5 · 2^23: loads, where the load pipes have
            // room (register moves would take vector-pipe slots).
            "ldp {c0:q}, {c1:q}, [{mg}]",
            "ldp {c2:q}, {c3:q}, [{mg}]",
            // The row pair's four zipped operands (inputs 0-7, 8-15, 16-23, 24-31), the weights.
            "ldp {z0:q}, {z1:q}, [{zp}], #32",
            "ldp {c4:q}, {c5:q}, [{mg}]",
            "ldp {c6:q}, {c7:q}, [{mg}]",
            "ldp {wa0:q}, {wa1:q}, [{w0}, #0]",
            "ldp {wa2:q}, {wa3:q}, [{w0}, #32]",
            "ldp {z2:q}, {z3:q}, [{zp}], #32",
            "ldp {wb0:q}, {wb1:q}, [{w1}, #0]",
            "ldp {wb2:q}, {wb3:q}, [{w1}, #32]",
            // Inputs 0-7: panel 0 (c0-c3), panel 1 (c4-c7); the next weights load.
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
            // The block's scale for each lane's row, [s0, s0, s1, s1] (z0 is free now).
            "ldr {z0:q}, [{zp}], #16",
            // Inputs 8-15: panel 0 (c0-c3), panel 1 (c4-c7); the next weights load.
            "smmla {c0:v}.4s, {z1:v}.16b, {wa0:v}.16b",
            "smmla {c1:v}.4s, {z1:v}.16b, {wa1:v}.16b",
            "smmla {c2:v}.4s, {z1:v}.16b, {wa2:v}.16b",
            "smmla {c3:v}.4s, {z1:v}.16b, {wa3:v}.16b",
            "ldp {wa0:q}, {wa1:q}, [{w0}, #128]",
            "ldp {wa2:q}, {wa3:q}, [{w0}, #160]",
            "smmla {c4:v}.4s, {z1:v}.16b, {wb0:v}.16b",
            "smmla {c5:v}.4s, {z1:v}.16b, {wb1:v}.16b",
            "smmla {c6:v}.4s, {z1:v}.16b, {wb2:v}.16b",
            "smmla {c7:v}.4s, {z1:v}.16b, {wb3:v}.16b",
            "ldp {wb0:q}, {wb1:q}, [{w1}, #128]",
            "ldp {wb2:q}, {wb3:q}, [{w1}, #160]",
            // Inputs 16-23: panel 0 (c0-c3), panel 1 (c4-c7); the next weights load.
            "smmla {c0:v}.4s, {z2:v}.16b, {wa0:v}.16b",
            "smmla {c1:v}.4s, {z2:v}.16b, {wa1:v}.16b",
            "smmla {c2:v}.4s, {z2:v}.16b, {wa2:v}.16b",
            "smmla {c3:v}.4s, {z2:v}.16b, {wa3:v}.16b",
            "ldp {wa0:q}, {wa1:q}, [{w0}, #192]",
            "ldp {wa2:q}, {wa3:q}, [{w0}, #224]",
            "smmla {c4:v}.4s, {z2:v}.16b, {wb0:v}.16b",
            "smmla {c5:v}.4s, {z2:v}.16b, {wb1:v}.16b",
            "smmla {c6:v}.4s, {z2:v}.16b, {wb2:v}.16b",
            "smmla {c7:v}.4s, {z2:v}.16b, {wb3:v}.16b",
            "ldp {wb0:q}, {wb1:q}, [{w1}, #192]",
            "ldp {wb2:q}, {wb3:q}, [{w1}, #224]",
            "add {w0}, {w0}, #256",
            "add {w1}, {w1}, #256",
            // Inputs 24-31: panel 0 (c0-c3), panel 1 (c4-c7); the next weights load.
            "smmla {c0:v}.4s, {z3:v}.16b, {wa0:v}.16b",
            "smmla {c1:v}.4s, {z3:v}.16b, {wa1:v}.16b",
            "smmla {c2:v}.4s, {z3:v}.16b, {wa2:v}.16b",
            "smmla {c3:v}.4s, {z3:v}.16b, {wa3:v}.16b",
            "smmla {c4:v}.4s, {z3:v}.16b, {wb0:v}.16b",
            "smmla {c5:v}.4s, {z3:v}.16b, {wb1:v}.16b",
            "smmla {c6:v}.4s, {z3:v}.16b, {wb2:v}.16b",
            "smmla {c7:v}.4s, {z3:v}.16b, {wb3:v}.16b",
            // float(sum) exactly, then one FMA each, as the scalar kernel.
            "fsub {c0:v}.4s, {c0:v}.4s, {mv:v}.4s",
            "fsub {c1:v}.4s, {c1:v}.4s, {mv:v}.4s",
            "fsub {c2:v}.4s, {c2:v}.4s, {mv:v}.4s",
            "fsub {c3:v}.4s, {c3:v}.4s, {mv:v}.4s",
            "fsub {c4:v}.4s, {c4:v}.4s, {mv:v}.4s",
            "fsub {c5:v}.4s, {c5:v}.4s, {mv:v}.4s",
            "fsub {c6:v}.4s, {c6:v}.4s, {mv:v}.4s",
            "fsub {c7:v}.4s, {c7:v}.4s, {mv:v}.4s",
            "fmla {f0:v}.4s, {c0:v}.4s, {z0:v}.4s",
            "fmla {f1:v}.4s, {c1:v}.4s, {z0:v}.4s",
            "fmla {f2:v}.4s, {c2:v}.4s, {z0:v}.4s",
            "fmla {f3:v}.4s, {c3:v}.4s, {z0:v}.4s",
            "fmla {f4:v}.4s, {c4:v}.4s, {z0:v}.4s",
            "fmla {f5:v}.4s, {c5:v}.4s, {z0:v}.4s",
            "fmla {f6:v}.4s, {c6:v}.4s, {z0:v}.4s",
            "fmla {f7:v}.4s, {c7:v}.4s, {z0:v}.4s",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            zp = inout(reg) z => _,
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
            z0 = out(vreg) _,
            z1 = out(vreg) _,
            z2 = out(vreg) _,
            z3 = out(vreg) _,
            options(nostack, readonly)
        );
        [[f[0], f[1], f[2], f[3]], [f[4], f[5], f[6], f[7]]]
    }
}
