//! The x86_64 int8 kernels: the panel GEMMs (AVX2 `maddubs`, AVX-512 VNNI `vpdpbusd`) and
//! activation quantization (AVX2), written per ISA.

use std::arch::x86_64::*;

use crate::kernels::{f32_bodies, Epilogue4, Panel, Tile, MR, NR, QBLOCK};

/// The int8 panel GEMM with AVX2: one 32-byte load holds 8 outputs × 4 inputs. `maddubs`
/// multiplies |x| (u8) by w with x's sign (s8); with both in [-127, 127] a pair sums to at most
/// 2·127·127 = 32258, so the i16 intermediate never saturates; `madd` by ones widens to i32.
/// Each block of [`QBLOCK`] inputs is then scaled into the f32 sums with one fused
/// multiply-add, exactly as the scalar kernel does.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_i8_panel_avx2_impl<const M: usize>(
    xq: *const i8,
    xs: *const f32,
    kp: usize,
    panel: *const i8,
    step: usize,
    acc: &mut [[f32; NR]; MR],
) {
    let ones = _mm256_set1_epi16(1);
    let nb = kp / QBLOCK;
    let mut f = [_mm256_setzero_ps(); M];
    for b in 0..nb {
        let mut c = [_mm256_setzero_si256(); M];
        for g in b * QBLOCK / 4..(b + 1) * QBLOCK / 4 {
            // SAFETY: the caller checked that the panel holds kp / 4 groups `step` bytes apart
            // and each row kp bytes.
            let w = unsafe { _mm256_loadu_si256(panel.add(g * step) as *const __m256i) };
            for (r, cr) in c.iter_mut().enumerate() {
                // SAFETY: as above; an unaligned 4-byte read of row r at input 4g.
                let x4 = unsafe { std::ptr::read_unaligned(xq.add(r * kp + g * 4) as *const i32) };
                let xv = _mm256_set1_epi32(x4);
                let ax = _mm256_sign_epi8(xv, xv);
                let sw = _mm256_sign_epi8(w, xv);
                *cr = _mm256_add_epi32(*cr, _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sw), ones));
            }
        }
        for (r, fr) in f.iter_mut().enumerate() {
            // SAFETY: the caller checked xs holds nb scales per row.
            let s = _mm256_set1_ps(unsafe { *xs.add(r * nb + b) });
            *fr = _mm256_fmadd_ps(_mm256_cvtepi32_ps(c[r]), s, *fr);
        }
    }
    for (r, fr) in f.iter().enumerate() {
        // SAFETY: acc[r] is 8 f32 = 32 bytes.
        unsafe { _mm256_storeu_ps(acc[r].as_mut_ptr(), *fr) };
    }
}

/// Safe entry: checks the slice lengths, then runs the AVX2 body. Only reachable through a
/// table built after AVX2 was detected.
pub fn gemm_i8_panel_avx2(
    xq: &[i8],
    xs: &[f32],
    m: usize,
    kp: usize,
    panel: Panel<'_>,
    acc: &mut [[f32; NR]; MR],
) {
    // Signed bytes multiply directly here: no block sums needed.
    crate::kernels::check_gemm_args(xq, xs, m, kp, &panel);
    debug_assert!(crate::kernels::Isa::Avx2.available());
    let (x, s, p) = (xq.as_ptr(), xs.as_ptr(), panel.w.as_ptr());
    let step = 4 * NR * panel.interleave;
    // SAFETY: lengths checked above; AVX2 presence is the table's invariant.
    unsafe { by_rows!(m, M => gemm_i8_panel_avx2_impl::<M>(x, s, kp, p, step, acc)) }
}

/// The int8 panel GEMM with AVX-512 VNNI on one panel: a 32-byte load holds one input group
/// (8 outputs × 4 inputs) and `vpdpbusd` sums four u8 × s8 products per lane straight into
/// i32. The activations arrive as offset codes (x + 128, [`crate::kernels::Codes::Offset`]), and each
/// block's accumulators start from −128 · Σw (the panel's block sums, stored in the file):
/// Σ(x + 128)·w − 128·Σw = Σ x·w exactly, so the result is the scalar kernel's to the bit.
/// (Whole panels go through the four-panel kernel; this one takes what is left.)
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
unsafe fn gemm_i8_panel_avx512vnni_impl<const M: usize>(
    xq: *const i8,
    xs: *const f32,
    kp: usize,
    panel: Panel<'_>,
    acc: &mut [[f32; NR]; MR],
) {
    let nb = kp / QBLOCK;
    let il = panel.interleave;
    let (w, sums) = (panel.w.as_ptr(), panel.sums.as_ptr());
    let mut f = [_mm256_setzero_ps(); M];
    for b in 0..nb {
        // SAFETY: the caller checked the panel's sums for nb blocks, NR · il apart.
        let bs = unsafe { _mm256_loadu_si256(sums.add(b * NR * il).cast()) };
        let start = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32::<7>(bs));
        let mut c = [start; M];
        for g in b * QBLOCK / 4..(b + 1) * QBLOCK / 4 {
            // SAFETY: the caller checked the panel's kp / 4 groups, 4 · NR · il bytes apart.
            let wg = unsafe { _mm256_loadu_si256(w.add(g * 4 * NR * il).cast()) };
            for (r, cr) in c.iter_mut().enumerate() {
                // SAFETY: an unaligned 4-byte read of row r at input 4g, inside the row.
                let x4 = unsafe { std::ptr::read_unaligned(xq.add(r * kp + g * 4) as *const i32) };
                *cr = _mm256_dpbusd_epi32(*cr, _mm256_set1_epi32(x4), wg);
            }
        }
        for (r, fr) in f.iter_mut().enumerate() {
            // SAFETY: the caller checked xs holds nb scales per row.
            let s = _mm256_set1_ps(unsafe { *xs.add(r * nb + b) });
            *fr = _mm256_fmadd_ps(_mm256_cvtepi32_ps(c[r]), s, *fr);
        }
    }
    for (r, fr) in f.iter().enumerate() {
        // SAFETY: acc[r] is 8 f32 = 32 bytes.
        unsafe { _mm256_storeu_ps(acc[r].as_mut_ptr(), *fr) };
    }
}

/// Four panels at once: two 16-lane accumulators per row, lanes 0-7 panel 0 (or 2) and 8-15
/// panel 1 (or 3), for one input group of 4. An activation group (offset codes, as the
/// one-panel kernel) is broadcast from memory (a load, no shuffle or sign flip) and feeds two
/// `vpdpbusd`. Eight independent accumulators for four rows hide the instruction's latency,
/// and each load feeds two multiplies. With `Layout::I8Panel8x4` each 16 lanes are two
/// 32-byte loads and an insert; with `I8Panel16x4` one 64-byte load (`INTERLEAVED`). The block
/// sums are the same exact integers (the accumulators start from −128·Σw instead of
/// subtracting it at the end), so the result is the scalar kernel's to the bit.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_i8_panel4_avx512vnni_impl<const M: usize, const INTERLEAVED: bool>(
    xq: *const i8,
    xs: *const f32,
    kp: usize,
    panels: [*const i8; 4],
    sums: [*const i32; 4],
    epilogue: Option<Epilogue4<'_>>,
    out: &mut Tile<'_>,
    r0: usize,
) {
    let nb = kp / QBLOCK;
    let il = if INTERLEAVED { 2 } else { 1 };
    let mut f = [[_mm512_setzero_ps(); 2]; M];
    for b in 0..nb {
        let o = b * NR * il;
        // SAFETY: the caller checked the sums of each panel for nb blocks.
        let bs = unsafe {
            [
                pair::<_, INTERLEAVED>(sums[0].add(o), sums[1].add(o)),
                pair::<_, INTERLEAVED>(sums[2].add(o), sums[3].add(o)),
            ]
        };
        let zero = _mm512_setzero_si512();
        let start = [
            _mm512_sub_epi32(zero, _mm512_slli_epi32::<7>(bs[0])),
            _mm512_sub_epi32(zero, _mm512_slli_epi32::<7>(bs[1])),
        ];
        let mut c = [start; M];
        for g in b * QBLOCK / 4..(b + 1) * QBLOCK / 4 {
            let o = g * 4 * NR * il;
            // SAFETY: the caller checked that each panel holds kp / 4 groups.
            let w = unsafe {
                [
                    pair::<_, INTERLEAVED>(panels[0].add(o), panels[1].add(o)),
                    pair::<_, INTERLEAVED>(panels[2].add(o), panels[3].add(o)),
                ]
            };
            for (r, cr) in c.iter_mut().enumerate() {
                // SAFETY: an unaligned 4-byte read of row r at input 4g, inside the row.
                let x4 = unsafe { std::ptr::read_unaligned(xq.add(r * kp + g * 4) as *const i32) };
                let xv = _mm512_set1_epi32(x4);
                cr[0] = _mm512_dpbusd_epi32(cr[0], xv, w[0]);
                cr[1] = _mm512_dpbusd_epi32(cr[1], xv, w[1]);
            }
        }
        for (r, (fr, cr)) in f.iter_mut().zip(&c).enumerate() {
            // SAFETY: the caller checked xs holds nb scales per row.
            let s = _mm512_set1_ps(unsafe { *xs.add(r * nb + b) });
            for h in 0..2 {
                fr[h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(cr[h]), s, fr[h]);
            }
        }
    }
    // The epilogue on 16 lanes: outputs 16h..16h + 16 are panels 2h and 2h + 1.
    if let Some(e) = epilogue {
        // SAFETY: 32 scales (and biases) in fixed-size arrays.
        let ws = unsafe {
            [
                _mm512_loadu_ps(e.scales.as_ptr()),
                _mm512_loadu_ps(e.scales.as_ptr().add(16)),
            ]
        };
        #[allow(clippy::manual_map)] // a closure would not inherit the target features
        let b = match e.bias {
            // SAFETY: as above.
            Some(b) => unsafe {
                Some([
                    _mm512_loadu_ps(b.as_ptr()),
                    _mm512_loadu_ps(b.as_ptr().add(16)),
                ])
            },
            None => None,
        };
        for fr in f.iter_mut() {
            for h in 0..2 {
                #[allow(clippy::manual_map)] // as above
                let bh = match b {
                    Some(b) => Some(b[h]),
                    None => None,
                };
                // SAFETY: AVX-512 F is enabled on this function.
                fr[h] = unsafe { f32_bodies::epilogue(fr[h], ws[h], bh, e.gelu) };
            }
        }
    }
    for (r, fr) in f.iter().enumerate() {
        let row = out.row(r0 + r).as_mut_ptr();
        // SAFETY: a tile row holds 4·NR = 32 f32; outputs 16h..16h + 16 are fr[h].
        unsafe {
            _mm512_storeu_ps(row, fr[0]);
            _mm512_storeu_ps(row.add(16), fr[1]);
        }
    }
}

/// Two panels' 8 lanes as one 16-lane vector: one load when they alternate in memory (`hi` is
/// `lo` + 32 bytes), else two and an insert. (A function, not a closure: closures do not
/// inherit target features, and their intrinsics would become calls.)
#[target_feature(enable = "avx512f,avx2")]
#[inline]
unsafe fn pair<T, const INTERLEAVED: bool>(lo: *const T, hi: *const T) -> __m512i {
    // SAFETY: the caller passes pointers to 32 readable bytes each, and when INTERLEAVED `hi`
    // is `lo` + 32 bytes.
    unsafe {
        if INTERLEAVED {
            _mm512_loadu_si512(lo.cast())
        } else {
            _mm512_inserti64x4::<1>(
                _mm512_castsi256_si512(_mm256_loadu_si256(lo.cast())),
                _mm256_loadu_si256(hi.cast()),
            )
        }
    }
}

/// Safe entry of the four-panel AVX-512 VNNI kernel: `out`'s rows get the four panels'
/// outputs, as four calls of [`crate::kernels::scalar::gemm_i8_panel`] per [`MR`] rows would (then the
/// epilogue). Panels 0-1 and 2-3 may each be an interleaved pair (`Layout::I8Panel16x4`) or
/// any two panels of `I8Panel8x4`.
pub fn gemm_i8_panel4_avx512vnni(
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
    debug_assert!(crate::kernels::Isa::Avx512Vnni.available());
    // Interleaved only if both pairs are: panel 2h + 1 starts one group after panel 2h.
    let interleaved = (0..2).all(|h| {
        let (lo, hi) = (&panels[2 * h], &panels[2 * h + 1]);
        lo.interleave == 2
            && hi.interleave == 2
            && hi.w.as_ptr() == lo.w.as_ptr().wrapping_add(4 * NR)
            && hi.sums.as_ptr() == lo.sums.as_ptr().wrapping_add(NR)
    });
    let nb = kp / QBLOCK;
    if !interleaved && panels.iter().any(|p| p.interleave != 1) {
        // Mixed or unpaired interleaved panels: one at a time, same bits.
        let mut acc = [[0f32; NR]; MR];
        for r0 in (0..m).step_by(MR) {
            let rows = MR.min(m - r0);
            let (x, s) = (&xq[r0 * kp..], &xs[r0 * nb..]);
            for (i, p) in panels.into_iter().enumerate() {
                gemm_i8_panel_avx512vnni(x, s, rows, kp, p, &mut acc);
                if let Some(e) = epilogue {
                    let part = |v: &[f32; 4 * NR]| -> [f32; NR] {
                        v[i * NR..(i + 1) * NR].try_into().expect("NR values")
                    };
                    let bias = e.bias.map(part);
                    super::panel_epilogue_avx2(
                        &mut acc,
                        rows,
                        &part(e.scales),
                        bias.as_ref(),
                        e.gelu,
                    );
                }
                for (r, a) in acc.iter().enumerate().take(rows) {
                    out.row(r0 + r)[i * NR..(i + 1) * NR].copy_from_slice(a);
                }
            }
        }
        return;
    }
    let p = panels.map(|p| p.w.as_ptr());
    let bs = panels.map(|p| p.sums.as_ptr());
    for r0 in (0..m).step_by(MR) {
        let rows = MR.min(m - r0);
        // SAFETY: rows r0.. of xq / xs, in bounds (checked for all m rows above).
        let (x, s) = unsafe { (xq.as_ptr().add(r0 * kp), xs.as_ptr().add(r0 * nb)) };
        let o = &mut out;
        // SAFETY: lengths checked above (when interleaved, each pair's second panel is the
        // first one's neighbour inside the same checked span); AVX-512 F/BW/VNNI presence is
        // the table's invariant.
        unsafe {
            if interleaved {
                by_rows!(rows, M => gemm_i8_panel4_avx512vnni_impl::<M, true>(x, s, kp, p, bs, epilogue, o, r0))
            } else {
                by_rows!(rows, M => gemm_i8_panel4_avx512vnni_impl::<M, false>(x, s, kp, p, bs, epilogue, o, r0))
            }
        }
    }
}

/// Safe entry of the AVX-512 VNNI kernel; only reachable through a table built after the
/// features were detected.
pub fn gemm_i8_panel_avx512vnni(
    xq: &[i8],
    xs: &[f32],
    m: usize,
    kp: usize,
    panel: Panel<'_>,
    acc: &mut [[f32; NR]; MR],
) {
    crate::kernels::check_gemm_args(xq, xs, m, kp, &panel);
    debug_assert!(crate::kernels::Isa::Avx512Vnni.available());
    let (x, s) = (xq.as_ptr(), xs.as_ptr());
    // SAFETY: lengths checked above; AVX-512 F/BW/VL/VNNI presence is the table's invariant.
    unsafe { by_rows!(m, M => gemm_i8_panel_avx512vnni_impl::<M>(x, s, kp, panel, acc)) }
}

/// Activation quantization for the AVX-512 VNNI tier: [`quantize_blocks_avx2`]'s codes as
/// x + 128 (`crate::kernels::Codes::Offset`), flipped in the register before the store: once per
/// matrix rather than once per broadcast in every GEMM pass over it.
pub fn quantize_blocks_offset_avx2(
    x: &[f32],
    rows: usize,
    k: usize,
    kp: usize,
    q: &mut [i8],
    scales: &mut [f32],
) {
    crate::kernels::check_quantize_args(x, rows, k, kp, q, scales);
    // SAFETY: AVX2 presence is the table's invariant; the shapes are checked.
    unsafe { quantize_blocks_avx2_impl::<true>(x, rows, k, kp, q, scales) }
}

/// [`crate::kernels::scalar::quantize_blocks`] with AVX2: runs of whole blocks through
/// [`quantize_run_avx2`] (all rows as one run when there is no padding), a partial last
/// block and the padding through the scalar code.
#[target_feature(enable = "avx2")]
unsafe fn quantize_blocks_avx2_impl<const OFFSET: bool>(
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
        unsafe {
            quantize_run_avx2::<OFFSET>(x.as_ptr(), q.as_mut_ptr(), scales.as_mut_ptr(), rows * nb)
        };
        return;
    }
    for r in 0..rows {
        let (xr, qr) = (&x[r * k..(r + 1) * k], &mut q[r * kp..(r + 1) * kp]);
        let sr = &mut scales[r * nb..(r + 1) * nb];
        // SAFETY: the row's first `whole` blocks are inside xr, qr and sr.
        unsafe {
            quantize_run_avx2::<OFFSET>(xr.as_ptr(), qr.as_mut_ptr(), sr.as_mut_ptr(), whole)
        };
        let (xt, qt) = (&xr[whole * QBLOCK..], &mut qr[whole * QBLOCK..]);
        crate::kernels::scalar::quantize_blocks(xt, 1, xt.len(), qt.len(), qt, &mut sr[whole..]);
        if OFFSET {
            crate::kernels::Codes::Offset.encode(qt);
        }
    }
}

/// Activation quantization with AVX2, bit for bit [`crate::kernels::scalar::quantize_blocks`].
pub fn quantize_blocks_avx2(
    x: &[f32],
    rows: usize,
    k: usize,
    kp: usize,
    q: &mut [i8],
    scales: &mut [f32],
) {
    crate::kernels::check_quantize_args(x, rows, k, kp, q, scales);
    // SAFETY: AVX2 presence is the table's invariant; the shapes are checked.
    unsafe { quantize_blocks_avx2_impl::<false>(x, rows, k, kp, q, scales) }
}

/// `n` consecutive whole blocks: 32 floats from `x`, 32 codes to `q` and one scale to `scales`
/// each, the scalar `quantize_span` operation for operation (|x| max, scale = amax / 127,
/// x · (1 / scale) clamped to ±127, rounded half to even by the 1.5·2^23 trick, narrowed to
/// i8) for finite inputs; with `OFFSET` the codes are written as x + 128
/// (`crate::kernels::Codes::Offset`). Eight blocks at a time: their |x| maxima fold into one 8-lane
/// vector by a transposing tree (7 max, 14 shuffles) instead of a horizontal reduction each,
/// and the two divisions per block become two vector divisions per eight.
#[target_feature(enable = "avx2")]
unsafe fn quantize_run_avx2<const OFFSET: bool>(
    x: *const f32,
    q: *mut i8,
    scales: *mut f32,
    n: usize,
) {
    let sign = _mm256_set1_ps(-0.0);
    let (lo, hi) = (_mm256_set1_ps(-127.0), _mm256_set1_ps(127.0));
    let magic = _mm256_set1_ps(crate::kernels::scalar::exp_consts::ROUND);
    let mut b0 = 0;
    while b0 < n {
        let g = (n - b0).min(8);
        // SAFETY: (the whole loop body) blocks b0..b0 + g are inside the caller's spans.
        unsafe {
            let xb = x.add(b0 * QBLOCK);
            let mut m = [_mm256_setzero_ps(); 8];
            for (j, mj) in m.iter_mut().enumerate().take(g) {
                let p = xb.add(j * QBLOCK);
                let a = _mm256_max_ps(
                    _mm256_andnot_ps(sign, _mm256_loadu_ps(p)),
                    _mm256_andnot_ps(sign, _mm256_loadu_ps(p.add(8))),
                );
                let b = _mm256_max_ps(
                    _mm256_andnot_ps(sign, _mm256_loadu_ps(p.add(16))),
                    _mm256_andnot_ps(sign, _mm256_loadu_ps(p.add(24))),
                );
                *mj = _mm256_max_ps(a, b);
            }
            // 8 → 4: vector i holds block 2i's 4-lane partial maxima in its low half and
            // block 2i + 1's in its high half.
            let m4: [__m256; 4] = [0, 1, 2, 3].map(|i| max_halves_avx2(m[2 * i], m[2 * i + 1]));
            // 4 → 2 → 1 inside 128-bit halves: half h ends as blocks h, 2 + h, 4 + h, 6 + h.
            let u0 = max_pairs_in_halves::<0x44, 0xEE>(m4[0], m4[1]);
            let u1 = max_pairs_in_halves::<0x44, 0xEE>(m4[2], m4[3]);
            let t = max_pairs_in_halves::<0x88, 0xDD>(u0, u1);
            // Element 4h + j holds block 2j + h: block i is element 4(i % 2) + i / 2.
            let amax = _mm256_permutevar8x32_ps(t, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            let pos = _mm256_cmp_ps::<_CMP_GT_OQ>(amax, _mm256_setzero_ps());
            let one = _mm256_set1_ps(1.0);
            let scale = _mm256_blendv_ps(one, _mm256_div_ps(amax, _mm256_set1_ps(127.0)), pos);
            let mut inv = [0f32; 8];
            let invv = _mm256_div_ps(one, scale);
            _mm256_storeu_ps(inv.as_mut_ptr(), invv);
            // Blocks whose 1/scale overflows (one test per eight blocks: they are rare).
            let infinite = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(
                invv,
                _mm256_set1_ps(f32::INFINITY),
            ));
            let mut sc = [0f32; 8];
            _mm256_storeu_ps(sc.as_mut_ptr(), scale);
            std::ptr::copy_nonoverlapping(sc.as_ptr(), scales.add(b0), g);
            let qb = q.add(b0 * QBLOCK);
            for (j, &s) in inv.iter().enumerate().take(g) {
                let p = xb.add(j * QBLOCK);
                let s = _mm256_set1_ps(s);
                let mut i = [_mm256_setzero_si256(); 4];
                for (h, ih) in i.iter_mut().enumerate() {
                    let v = _mm256_loadu_ps(p.add(8 * h));
                    let r = _mm256_max_ps(_mm256_min_ps(_mm256_mul_ps(v, s), hi), lo);
                    *ih = _mm256_cvtps_epi32(_mm256_sub_ps(_mm256_add_ps(r, magic), magic));
                }
                // packs work within 128-bit lanes: restore the order with one permute.
                let b = _mm256_packs_epi16(
                    _mm256_packs_epi32(i[0], i[1]),
                    _mm256_packs_epi32(i[2], i[3]),
                );
                let mut b =
                    _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
                if OFFSET {
                    b = _mm256_xor_si256(b, _mm256_set1_epi8(i8::MIN));
                }
                _mm256_storeu_si256(qb.add(j * QBLOCK).cast(), b);
            }
            if infinite & ((1 << g) - 1) != 0 {
                // Blocks of tiny subnormals (their scales underflow): 0 · ∞ is NaN, which the
                // scalar code turns into 0 and `min`/`max` above into 127. Done again by it.
                for j in (0..g).filter(|j| infinite >> j & 1 != 0) {
                    quantize_block_scalar::<OFFSET>(
                        std::slice::from_raw_parts(xb.add(j * QBLOCK), QBLOCK),
                        std::slice::from_raw_parts_mut(qb.add(j * QBLOCK), QBLOCK),
                    );
                }
            }
        }
        b0 += g;
    }
}

/// One block through the scalar code (then as offset codes with `OFFSET`): the rare blocks
/// [`quantize_run_avx2`] cannot do exactly, kept out of its loop.
#[cold]
#[inline(never)]
fn quantize_block_scalar<const OFFSET: bool>(x: &[f32], q: &mut [i8]) {
    crate::kernels::scalar::quantize_span(x, q);
    if OFFSET {
        crate::kernels::Codes::Offset.encode(q);
    }
}

/// The max of the low halves of `a` and `b` against their high halves: `a`'s in the low
/// half of the result, `b`'s in the high (a step of [`quantize_run_avx2`]'s tree).
#[target_feature(enable = "avx2")]
#[inline]
fn max_halves_avx2(a: __m256, b: __m256) -> __m256 {
    _mm256_max_ps(
        _mm256_permute2f128_ps::<0x20>(a, b),
        _mm256_permute2f128_ps::<0x31>(a, b),
    )
}

/// The max of two in-lane shuffles of `a` and `b` on 8 lanes.
#[target_feature(enable = "avx2")]
#[inline]
fn max_pairs_in_halves<const LO: i32, const HI: i32>(a: __m256, b: __m256) -> __m256 {
    _mm256_max_ps(_mm256_shuffle_ps::<LO>(a, b), _mm256_shuffle_ps::<HI>(a, b))
}
