//! x86_64 kernels: AVX2. Each is one `#[inline(always)]` body under a
//! `#[target_feature]` wrapper; the safe entry points are only put in a [`super::Kernels`]
//! table after the features were detected.

use std::arch::x86_64::*;

use super::{Epilogue4, Panel, Tile, MR, NR, QBLOCK};

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
    super::check_gemm_args(xq, xs, m, kp, &panel);
    debug_assert!(super::Isa::Avx2.available());
    let (x, s, p) = (xq.as_ptr(), xs.as_ptr(), panel.w.as_ptr());
    let step = 4 * NR * panel.interleave;
    // SAFETY: lengths checked above; AVX2 presence is the table's invariant.
    unsafe { by_rows!(m, M => gemm_i8_panel_avx2_impl::<M>(x, s, kp, p, step, acc)) }
}

/// The int8 panel GEMM with AVX-512 VNNI on one panel: a 32-byte load holds one input group
/// (8 outputs × 4 inputs) and `vpdpbusd` sums four u8 × s8 products per lane straight into
/// i32. The activations arrive as offset codes (x + 128, [`super::Codes::Offset`]), and each
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
/// one-panel kernel) is broadcast from memory (a load, no shuffle or sign flip: 330 → ~390
/// G MAC/s) and feeds two `vpdpbusd`. Eight independent accumulators for four rows
/// hide the instruction's latency, and each load feeds two multiplies; the two-panel kernel it
/// replaced was bound by loads and by one accumulator chain per row (225 → 280 G MAC/s in the
/// `gemm_i8` criterion group with `Layout::I8Panel8x4`, where each 16 lanes are two 32-byte
/// loads and an insert; more with `I8Panel16x4`, one 64-byte load: `INTERLEAVED`). The block
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
        let zero = _mm512_setzero_ps();
        let b = match e.bias {
            // SAFETY: as above.
            Some(b) => unsafe {
                [
                    _mm512_loadu_ps(b.as_ptr()),
                    _mm512_loadu_ps(b.as_ptr().add(16)),
                ]
            },
            None => [zero; 2],
        };
        for fr in f.iter_mut() {
            for h in 0..2 {
                let mut v = _mm512_mul_ps(fr[h], ws[h]);
                if e.bias.is_some() {
                    v = _mm512_add_ps(v, b[h]);
                }
                if e.gelu {
                    // SAFETY: AVX-512 F is enabled on this function.
                    v = unsafe { gelu16_avx512(v) };
                }
                fr[h] = v;
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
/// outputs, as four calls of [`super::scalar::gemm_i8_panel`] per [`MR`] rows would (then the
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
        super::check_gemm_operands(xq, xs, m, kp, p);
    }
    debug_assert!(super::Isa::Avx512Vnni.available());
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
                    panel_epilogue_avx2(&mut acc, rows, &part(e.scales), bias.as_ref(), e.gelu);
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
    super::check_gemm_args(xq, xs, m, kp, &panel);
    debug_assert!(super::Isa::Avx512Vnni.available());
    let (x, s) = (xq.as_ptr(), xs.as_ptr());
    // SAFETY: lengths checked above; AVX-512 F/BW/VL/VNNI presence is the table's invariant.
    unsafe { by_rows!(m, M => gemm_i8_panel_avx512vnni_impl::<M>(x, s, kp, panel, acc)) }
}

#[target_feature(enable = "avx2")]
unsafe fn dot_f32_avx2_impl(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 ≤ n.
        let (x, y) = unsafe { (_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i))) };
        acc = _mm256_add_ps(acc, _mm256_mul_ps(x, y));
        i += 8;
    }
    let mut tail = 0f32;
    while i < n {
        tail += a[i] * b[i];
        i += 1;
    }
    // s = [l0+l4, l1+l5, l2+l6, l3+l7]; then (s0+s2) + (s1+s3), as the scalar dot.
    let s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    let t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let r = _mm_add_ss(t, _mm_shuffle_ps(t, t, 1));
    _mm_cvtss_f32(r) + tail
}

/// f32 dot product with AVX2, in the scalar dot's exact order (see [`super::scalar::dot`]).
pub fn dot_f32_avx2(a: &[f32], b: &[f32]) -> f32 {
    debug_assert!(super::Isa::Avx2.available());
    // SAFETY: AVX2 presence is the table's invariant; the body bounds its reads by the shorter
    // slice.
    unsafe { dot_f32_avx2_impl(a, b) }
}

/// Columns `c0..c0 + 8·N` of a row panel, with N 8-lane accumulators held in registers.
#[inline(always)]
unsafe fn row_panel_avx2_cols<const N: usize>(
    a: &[f32],
    b: *const f32,
    stride: usize,
    out: *mut f32,
    c0: usize,
) {
    let mut acc = [_mm256_setzero_ps(); N];
    for (k, &ak) in a.iter().enumerate() {
        let x = _mm256_set1_ps(ak);
        for (n, accn) in acc.iter_mut().enumerate() {
            // SAFETY: the caller checked b holds (a.len()-1)·stride + out.len() values.
            let y = unsafe { _mm256_loadu_ps(b.add(k * stride + c0 + 8 * n)) };
            *accn = _mm256_fmadd_ps(x, y, *accn);
        }
    }
    for (n, accn) in acc.iter().enumerate() {
        // SAFETY: c0 + 8n + 8 ≤ out.len().
        unsafe { _mm256_storeu_ps(out.add(c0 + 8 * n), *accn) };
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn row_panel_f32_avx2_impl(a: &[f32], b: &[f32], stride: usize, out: &mut [f32]) {
    let w = out.len();
    let (pb, po) = (b.as_ptr(), out.as_mut_ptr());
    let mut c = 0;
    while c + 32 <= w {
        // SAFETY: columns c..c+32 exist (c + 32 ≤ w).
        unsafe { row_panel_avx2_cols::<4>(a, pb, stride, po, c) };
        c += 32;
    }
    while c + 8 <= w {
        // SAFETY: columns c..c+8 exist.
        unsafe { row_panel_avx2_cols::<1>(a, pb, stride, po, c) };
        c += 8;
    }
    super::scalar::row_panel_from(a, b, stride, out, c);
}

/// Row vector times matrix with AVX2, each output summed as [`super::scalar::row_panel`] does.
pub fn row_panel_f32_avx2(a: &[f32], b: &[f32], stride: usize, out: &mut [f32]) {
    super::check_row_panel_args(a, b, stride, out.len());
    // SAFETY: bounds checked above; AVX2 presence is the table's invariant.
    unsafe { row_panel_f32_avx2_impl(a, b, stride, out) }
}

#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn row_panel_f32_avx512_impl(a: &[f32], b: &[f32], stride: usize, out: &mut [f32]) {
    let w = out.len();
    let (pb, po) = (b.as_ptr(), out.as_mut_ptr());
    let mut c = 0;
    while c + 64 <= w {
        let mut acc = [_mm512_setzero_ps(); 4];
        for (k, &ak) in a.iter().enumerate() {
            let x = _mm512_set1_ps(ak);
            for (n, accn) in acc.iter_mut().enumerate() {
                // SAFETY: the caller checked b's length; c + 64 ≤ w.
                let y = unsafe { _mm512_loadu_ps(pb.add(k * stride + c + 16 * n)) };
                *accn = _mm512_fmadd_ps(x, y, *accn);
            }
        }
        for (n, accn) in acc.iter().enumerate() {
            // SAFETY: c + 16n + 16 ≤ w.
            unsafe { _mm512_storeu_ps(po.add(c + 16 * n), *accn) };
        }
        c += 64;
    }
    // The rest as AVX2 does it (same sums, element by element).
    let rest = if a.is_empty() { &[][..] } else { &b[c..] };
    // SAFETY: the sub-slices keep the caller's bounds.
    unsafe { row_panel_f32_avx2_impl(a, rest, stride, &mut out[c..]) };
}

/// Row vector times matrix with AVX-512, each output summed as [`super::scalar::row_panel`].
pub fn row_panel_f32_avx512(a: &[f32], b: &[f32], stride: usize, out: &mut [f32]) {
    super::check_row_panel_args(a, b, stride, out.len());
    // SAFETY: bounds checked above; AVX-512F presence is the table's invariant (avx512vnni tier).
    unsafe { row_panel_f32_avx512_impl(a, b, stride, out) }
}

/// [`super::scalar::exp_fast`] on 8 lanes, operation for operation.
#[inline(always)]
unsafe fn exp8_avx2(x: __m256) -> __m256 {
    use super::scalar::exp_consts::*;
    // No closures here: a closure does not inherit the caller's target features, and the
    // intrinsics in it would become calls.
    // max(x, LO) first: a NaN lane becomes LO, as f32::max does.
    let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(LO)), _mm256_set1_ps(HI));
    let round = _mm256_set1_ps(ROUND);
    let n = _mm256_sub_ps(
        _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)), round),
        round,
    );
    let r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(LN2_HI)));
    let r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(LN2_LO)));
    let mut p = _mm256_set1_ps(P[0]);
    for &k in &P[1..] {
        p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(k));
    }
    let y = _mm256_add_ps(
        _mm256_add_ps(_mm256_mul_ps(p, _mm256_mul_ps(r, r)), r),
        _mm256_set1_ps(1.0),
    );
    let e = _mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n),
        _mm256_set1_epi32(127),
    ));
    _mm256_mul_ps(y, _mm256_castsi256_ps(e))
}

#[target_feature(enable = "avx2")]
unsafe fn softmax_f32_avx2_impl(x: &mut [f32]) {
    let n = x.len();
    let p = x.as_mut_ptr();
    let mut m8 = _mm256_set1_ps(f32::NEG_INFINITY);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 ≤ n.
        m8 = _mm256_max_ps(m8, unsafe { _mm256_loadu_ps(p.add(i)) });
        i += 8;
    }
    let mut lanes = [0f32; 8];
    // SAFETY: lanes holds 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), m8) };
    let max = lanes
        .iter()
        .chain(&x[i..])
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mv = _mm256_set1_ps(max);
    // f64 lanes 0-3 and 4-7 of the scalar's 8.
    let (mut lo, mut hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 ≤ n.
        unsafe {
            let e = exp8_avx2(_mm256_sub_ps(_mm256_loadu_ps(p.add(i)), mv));
            _mm256_storeu_ps(p.add(i), e);
            lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
            hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
        }
        i += 8;
    }
    let mut tail = 0f64;
    for v in &mut x[i..] {
        *v = super::scalar::exp_fast(*v - max);
        tail += *v as f64;
    }
    // s = [l0+l4, l1+l5, l2+l6, l3+l7]; then (s0+s2) + (s1+s3), as the scalar.
    let s = _mm256_add_pd(lo, hi);
    let t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    let r = _mm_add_sd(t, _mm_unpackhi_pd(t, t));
    let inv = (1.0 / (_mm_cvtsd_f64(r) + tail)) as f32;
    let iv = _mm256_set1_ps(inv);
    i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 ≤ n.
        unsafe { _mm256_storeu_ps(p.add(i), _mm256_mul_ps(_mm256_loadu_ps(p.add(i)), iv)) };
        i += 8;
    }
    for v in &mut x[i..] {
        *v *= inv;
    }
}

/// The attention softmax with AVX2, bit for bit [`super::scalar::softmax_rows`]: each row
/// scaled, then [`super::scalar::softmax_fast`].
pub fn softmax_rows_avx2(x: &mut [f32], rows: usize, scale: f32) {
    super::check_softmax_rows(x, rows);
    debug_assert!(super::Isa::Avx2.available());
    super::scalar::rows_scaled(x, rows, scale, |row| {
        // SAFETY: AVX2 presence is the table's invariant; the body stays within `row`.
        unsafe { softmax_f32_avx2_impl(row) }
    });
}

/// Activation quantization for the AVX-512 VNNI tier: [`quantize_blocks_avx2`]'s codes as
/// x + 128 (`super::Codes::Offset`), flipped in the register before the store: once per
/// matrix rather than once per broadcast in every GEMM pass over it.
pub fn quantize_blocks_offset_avx2(
    x: &[f32],
    rows: usize,
    k: usize,
    kp: usize,
    q: &mut [i8],
    scales: &mut [f32],
) {
    super::check_quantize_args(x, rows, k, kp, q, scales);
    // SAFETY: AVX2 presence is the table's invariant; the shapes are checked.
    unsafe { quantize_blocks_avx2_impl::<true>(x, rows, k, kp, q, scales) }
}

/// [`super::scalar::quantize_blocks`] with AVX2: runs of whole blocks through
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
        super::scalar::quantize_blocks(xt, 1, xt.len(), qt.len(), qt, &mut sr[whole..]);
        if OFFSET {
            super::Codes::Offset.encode(qt);
        }
    }
}

/// Activation quantization with AVX2, bit for bit [`super::scalar::quantize_blocks`].
pub fn quantize_blocks_avx2(
    x: &[f32],
    rows: usize,
    k: usize,
    kp: usize,
    q: &mut [i8],
    scales: &mut [f32],
) {
    super::check_quantize_args(x, rows, k, kp, q, scales);
    // SAFETY: AVX2 presence is the table's invariant; the shapes are checked.
    unsafe { quantize_blocks_avx2_impl::<false>(x, rows, k, kp, q, scales) }
}

/// [`super::scalar::gelu_fast`] on 8 lanes, operation for operation (`a - c` as `a + (-c)`,
/// which IEEE makes the same number).
#[inline(always)]
unsafe fn gelu8_avx2(v: __m256) -> __m256 {
    use super::scalar::erf_consts::{P, Q};
    let x = _mm256_mul_ps(v, _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
    // f32::clamp(-4, 4) on finite values.
    let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-4.0)), _mm256_set1_ps(4.0));
    let x2 = _mm256_mul_ps(x, x);
    let mut p = _mm256_set1_ps(P[0]);
    for &c in &P[1..] {
        p = _mm256_add_ps(_mm256_mul_ps(p, x2), _mm256_set1_ps(c));
    }
    let mut q = _mm256_set1_ps(Q[0]);
    for &c in &Q[1..] {
        q = _mm256_add_ps(_mm256_mul_ps(q, x2), _mm256_set1_ps(c));
    }
    let erf = _mm256_div_ps(_mm256_mul_ps(x, p), q);
    let half_v = _mm256_mul_ps(_mm256_set1_ps(0.5), v);
    _mm256_mul_ps(half_v, _mm256_add_ps(_mm256_set1_ps(1.0), erf))
}

/// `n` consecutive whole blocks: 32 floats from `x`, 32 codes to `q` and one scale to `scales`
/// each, the scalar `quantize_span` operation for operation (|x| max, scale = amax / 127,
/// x · (1 / scale) clamped to ±127, rounded half to even by the 1.5·2^23 trick, narrowed to
/// i8) for finite inputs; with `OFFSET` the codes are written as x + 128
/// (`super::Codes::Offset`). Eight blocks at a time: their |x| maxima fold into one 8-lane
/// vector by a transposing tree (7 max, 14 shuffles) instead of a horizontal reduction each,
/// and the two divisions per block become two vector divisions per eight (11.4 → 7.2 µs for
/// 128×384 in the `elementwise` criterion group).
#[target_feature(enable = "avx2")]
unsafe fn quantize_run_avx2<const OFFSET: bool>(
    x: *const f32,
    q: *mut i8,
    scales: *mut f32,
    n: usize,
) {
    let sign = _mm256_set1_ps(-0.0);
    let (lo, hi) = (_mm256_set1_ps(-127.0), _mm256_set1_ps(127.0));
    let magic = _mm256_set1_ps(super::scalar::exp_consts::ROUND);
    let mut b0 = 0;
    while b0 < n {
        let g = (n - b0).min(8);
        // SAFETY (whole loop body): blocks b0..b0 + g are inside the caller's spans.
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
            _mm256_storeu_ps(inv.as_mut_ptr(), _mm256_div_ps(one, scale));
            let mut sc = [0f32; 8];
            _mm256_storeu_ps(sc.as_mut_ptr(), scale);
            std::ptr::copy_nonoverlapping(sc.as_ptr(), scales.add(b0), g);
            let qb = q.add(b0 * QBLOCK);
            for (j, &s) in inv.iter().enumerate().take(g) {
                let s = _mm256_set1_ps(s);
                let p = xb.add(j * QBLOCK);
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
        }
        b0 += g;
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

/// [`gelu8_avx2`] on 16 lanes, the same operations in the same order.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn gelu16_avx512(v: __m512) -> __m512 {
    use super::scalar::erf_consts::{P, Q};
    let x = _mm512_mul_ps(v, _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
    // f32::clamp(-4, 4) on finite values.
    let x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-4.0)), _mm512_set1_ps(4.0));
    let x2 = _mm512_mul_ps(x, x);
    let mut p = _mm512_set1_ps(P[0]);
    for &c in &P[1..] {
        p = _mm512_add_ps(_mm512_mul_ps(p, x2), _mm512_set1_ps(c));
    }
    let mut q = _mm512_set1_ps(Q[0]);
    for &c in &Q[1..] {
        q = _mm512_add_ps(_mm512_mul_ps(q, x2), _mm512_set1_ps(c));
    }
    let erf = _mm512_div_ps(_mm512_mul_ps(x, p), q);
    let half_v = _mm512_mul_ps(_mm512_set1_ps(0.5), v);
    _mm512_mul_ps(half_v, _mm512_add_ps(_mm512_set1_ps(1.0), erf))
}

#[target_feature(enable = "avx2")]
unsafe fn panel_epilogue_avx2_impl(
    acc: &mut [[f32; NR]; MR],
    m: usize,
    scales: &[f32; NR],
    bias: Option<&[f32; NR]>,
    gelu: bool,
) {
    // SAFETY (loads and stores): each is 8 floats of an [f32; 8].
    let ws = unsafe { _mm256_loadu_ps(scales.as_ptr()) };
    // A match, not Option::map: a closure would not inherit AVX2 (see exp8_avx2).
    #[allow(clippy::manual_map)]
    let b = match bias {
        Some(b) => Some(unsafe { _mm256_loadu_ps(b.as_ptr()) }),
        None => None,
    };
    for y in acc.iter_mut().take(m) {
        let mut v = _mm256_mul_ps(unsafe { _mm256_loadu_ps(y.as_ptr()) }, ws);
        if let Some(b) = b {
            v = _mm256_add_ps(v, b);
        }
        if gelu {
            // SAFETY: AVX2 is enabled on this function.
            v = unsafe { gelu8_avx2(v) };
        }
        unsafe { _mm256_storeu_ps(y.as_mut_ptr(), v) };
    }
}

/// The int8 GEMM's epilogue with AVX2, bit for bit [`super::scalar::panel_epilogue`].
pub fn panel_epilogue_avx2(
    acc: &mut [[f32; NR]; MR],
    m: usize,
    scales: &[f32; NR],
    bias: Option<&[f32; NR]>,
    gelu: bool,
) {
    debug_assert!(super::Isa::Avx2.available());
    // SAFETY: AVX2 presence is the table's invariant; the body touches fixed-size arrays only.
    unsafe { panel_epilogue_avx2_impl(acc, m, scales, bias, gelu) }
}

/// Columns `c..c + 8·N` of M row panels at once: each `b` vector is loaded once for all M rows.
#[inline(always)]
unsafe fn row_panel4_avx2_cols<const M: usize, const N: usize>(
    a: &[*const f32; 4],
    kn: usize,
    b: *const f32,
    stride: usize,
    out: *mut f32,
    w: usize,
    c: usize,
) {
    let mut acc = [[_mm256_setzero_ps(); N]; M];
    for k in 0..kn {
        let mut y = [_mm256_setzero_ps(); N];
        for (n, yn) in y.iter_mut().enumerate() {
            // SAFETY: the caller checked b's length; c + 8N ≤ w.
            *yn = unsafe { _mm256_loadu_ps(b.add(k * stride + c + 8 * n)) };
        }
        for (r, accr) in acc.iter_mut().enumerate() {
            // SAFETY: row r has kn values.
            let x = _mm256_set1_ps(unsafe { *a[r].add(k) });
            for (accn, &yn) in accr.iter_mut().zip(&y) {
                *accn = _mm256_fmadd_ps(x, yn, *accn);
            }
        }
    }
    for (r, accr) in acc.iter().enumerate() {
        for (n, accn) in accr.iter().enumerate() {
            // SAFETY: out holds M·w values; c + 8n + 8 ≤ w.
            unsafe { _mm256_storeu_ps(out.add(r * w + c + 8 * n), *accn) };
        }
    }
}

/// Columns `c..w` of the rows `a`, row by row, as the one-row kernel does them (the tails the
/// four-row blocks leave).
#[target_feature(enable = "avx2,fma")]
unsafe fn row_panel4_tail_avx2(
    a: &[&[f32]],
    b: &[f32],
    stride: usize,
    out: &mut [f32],
    w: usize,
    c: usize,
) {
    if c >= w {
        return;
    }
    let rest = if a[0].is_empty() { &[][..] } else { &b[c..] };
    for (r, ar) in a.iter().enumerate() {
        // SAFETY: the sub-slices keep the checked bounds.
        unsafe { row_panel_f32_avx2_impl(ar, rest, stride, &mut out[r * w + c..(r + 1) * w]) };
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn row_panel4_f32_avx2_impl<const M: usize>(
    a: [&[f32]; 4],
    b: &[f32],
    stride: usize,
    out: &mut [f32],
    w: usize,
) {
    let kn = a[0].len();
    let ap = [a[0].as_ptr(), a[1].as_ptr(), a[2].as_ptr(), a[3].as_ptr()];
    let (pb, po) = (b.as_ptr(), out.as_mut_ptr());
    let mut c = 0;
    while c + 16 <= w {
        // SAFETY: columns c..c+16 exist; the entry point checked the shapes.
        unsafe { row_panel4_avx2_cols::<M, 2>(&ap, kn, pb, stride, po, w, c) };
        c += 16;
    }
    // SAFETY: the entry point checked the shapes; AVX2 is enabled here.
    unsafe { row_panel4_tail_avx2(&a[..M], b, stride, out, w, c) };
}

/// Four row panels with AVX2, each output as [`super::scalar::row_panel`] sums it.
pub fn row_panel4_f32_avx2(
    a: [&[f32]; 4],
    m: usize,
    b: &[f32],
    stride: usize,
    out: &mut [f32],
    w: usize,
) {
    super::check_row_panel4_args(&a, m, b, stride, out, w);
    // SAFETY: shapes checked above; AVX2 presence is the table's invariant.
    unsafe { by_rows!(m, M => row_panel4_f32_avx2_impl::<M>(a, b, stride, out, w)) }
}

/// Columns `c..c + 16·N` of M row panels: N 16-lane accumulators per row, each `b` vector
/// loaded once for all M rows and each `a` value broadcast once for N vectors.
#[inline(always)]
unsafe fn row_panel4_avx512_cols<const M: usize, const N: usize>(
    pa: &[*const f32; 4],
    kn: usize,
    pb: *const f32,
    stride: usize,
    po: *mut f32,
    w: usize,
    c: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); N]; M];
    for k in 0..kn {
        let mut y = [_mm512_setzero_ps(); N];
        for (n, yn) in y.iter_mut().enumerate() {
            // SAFETY: the entry point checked b's length; c + 16N ≤ w.
            *yn = unsafe { _mm512_loadu_ps(pb.add(k * stride + c + 16 * n)) };
        }
        for (r, accr) in acc.iter_mut().enumerate() {
            // SAFETY: rows r < M hold kn values (checked by the entry point).
            let x = _mm512_set1_ps(unsafe { *pa[r].add(k) });
            for (accn, &yn) in accr.iter_mut().zip(&y) {
                *accn = _mm512_fmadd_ps(x, yn, *accn);
            }
        }
    }
    for (r, accr) in acc.iter().enumerate() {
        for (n, accn) in accr.iter().enumerate() {
            // SAFETY: out holds M·w values; c + 16n + 16 ≤ w.
            unsafe { _mm512_storeu_ps(po.add(r * w + c + 16 * n), *accn) };
        }
    }
}

#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn row_panel4_f32_avx512_impl<const M: usize>(
    a: [&[f32]; 4],
    b: &[f32],
    stride: usize,
    out: &mut [f32],
    w: usize,
) {
    let kn = a[0].len();
    let pa = [a[0].as_ptr(), a[1].as_ptr(), a[2].as_ptr(), a[3].as_ptr()];
    let (pb, po) = (b.as_ptr(), out.as_mut_ptr());
    let mut c = 0;
    while c + 64 <= w {
        // SAFETY: columns c..c+64 exist; shapes checked by the entry point.
        unsafe { row_panel4_avx512_cols::<M, 4>(&pa, kn, pb, stride, po, w, c) };
        c += 64;
    }
    while c + 32 <= w {
        // SAFETY: columns c..c+32 exist; shapes checked by the entry point.
        unsafe { row_panel4_avx512_cols::<M, 2>(&pa, kn, pb, stride, po, w, c) };
        c += 32;
    }
    // The last columns, up to 16 at a time, with masked loads and stores: nothing outside the
    // columns is read or written, and each column is summed in the same order.
    while c < w {
        let cols = (w - c).min(16);
        let mask: __mmask16 = ((1u32 << cols) - 1) as __mmask16;
        let mut acc = [_mm512_setzero_ps(); M];
        for k in 0..kn {
            // SAFETY: masked lanes are not read; the others lie inside b (checked).
            let y = unsafe { _mm512_maskz_loadu_ps(mask, pb.add(k * stride + c)) };
            for (r, accr) in acc.iter_mut().enumerate() {
                // SAFETY: rows r < M hold kn values (checked by the entry point).
                let x = _mm512_set1_ps(unsafe { *pa[r].add(k) });
                *accr = _mm512_fmadd_ps(x, y, *accr);
            }
        }
        for (r, accr) in acc.iter().enumerate() {
            // SAFETY: masked lanes are not written; the others lie inside row r of out.
            unsafe { _mm512_mask_storeu_ps(po.add(r * w + c), mask, *accr) };
        }
        c += cols;
    }
}

/// Four row panels with AVX-512, each output as [`super::scalar::row_panel`] sums it.
pub fn row_panel4_f32_avx512(
    a: [&[f32]; 4],
    m: usize,
    b: &[f32],
    stride: usize,
    out: &mut [f32],
    w: usize,
) {
    super::check_row_panel4_args(&a, m, b, stride, out, w);
    // SAFETY: shapes checked above; AVX-512F presence is the table's invariant.
    unsafe { by_rows!(m, M => row_panel4_f32_avx512_impl::<M>(a, b, stride, out, w)) }
}

/// The scalar `sum8_f64` combine of 8 f64 lanes (`lo` lanes 0-3, `hi` 4-7):
/// (l0+l4 + l2+l6) + (l1+l5 + l3+l7), in that order.
#[inline(always)]
unsafe fn combine8_f64(lo: __m256d, hi: __m256d) -> f64 {
    let s = _mm256_add_pd(lo, hi);
    let t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    _mm_cvtsd_f64(_mm_add_sd(t, _mm_unpackhi_pd(t, t)))
}

/// Lanes 0-3 and 4-7 of 8 floats at `p`, widened to f64.
#[inline(always)]
unsafe fn widen8(p: *const f32) -> (__m256d, __m256d) {
    // SAFETY: the caller guarantees 8 readable floats.
    let v = unsafe { _mm256_loadu_ps(p) };
    (
        _mm256_cvtps_pd(_mm256_castps256_ps128(v)),
        _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)),
    )
}

/// LayerNorm of `R` rows of `n` at once (after adding `res` to each, when given), each row's
/// steps interleaved with the others': one row alone is three passes of dependent f64 sums
/// (the mean's, the variance's, then the division), so rows side by side keep the adders busy.
/// Each row is [`super::scalar::layer_norm_rows`]'s to the bit. Loops written out, no
/// closures: see exp8_avx2.
#[inline(always)]
unsafe fn layer_norm_group_avx2<const R: usize>(
    p: [*mut f32; R],
    res: Option<[*const f32; R]>,
    n: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    let whole = n / 8 * 8;
    let zero = _mm256_setzero_pd();
    let mut acc = [(zero, zero); R];
    for i in (0..whole).step_by(8) {
        for r in 0..R {
            // SAFETY: i + 8 ≤ n, inside row r (and its residual row).
            unsafe {
                if let Some(res) = res {
                    let v =
                        _mm256_add_ps(_mm256_loadu_ps(p[r].add(i)), _mm256_loadu_ps(res[r].add(i)));
                    _mm256_storeu_ps(p[r].add(i), v);
                }
                let (a, b) = widen8(p[r].add(i));
                acc[r] = (_mm256_add_pd(acc[r].0, a), _mm256_add_pd(acc[r].1, b));
            }
        }
    }
    let mut mean = [0f64; R];
    for r in 0..R {
        // SAFETY: row r holds n floats (and its residual row), this thread's alone.
        let row = unsafe { std::slice::from_raw_parts_mut(p[r], n) };
        let mut tail = 0f64;
        for j in whole..n {
            if let Some(res) = res {
                // SAFETY: as above.
                row[j] += unsafe { *res[r].add(j) };
            }
            tail += row[j] as f64;
        }
        // SAFETY: plain register arithmetic.
        mean[r] = (unsafe { combine8_f64(acc[r].0, acc[r].1) } + tail) / n as f64;
    }
    let mut acc = [(zero, zero); R];
    for i in (0..whole).step_by(8) {
        for r in 0..R {
            // SAFETY: i + 8 ≤ n.
            let (a, b) = unsafe { widen8(p[r].add(i)) };
            let mv = _mm256_set1_pd(mean[r]);
            let (a, b) = (_mm256_sub_pd(a, mv), _mm256_sub_pd(b, mv));
            acc[r] = (
                _mm256_add_pd(acc[r].0, _mm256_mul_pd(a, a)),
                _mm256_add_pd(acc[r].1, _mm256_mul_pd(b, b)),
            );
        }
    }
    let mut rstd = [0f64; R];
    for r in 0..R {
        // SAFETY: as above.
        let row = unsafe { std::slice::from_raw_parts(p[r], n) };
        let m = mean[r];
        let tail = row[whole..]
            .iter()
            .fold(0f64, |t, &v| t + (v as f64 - m) * (v as f64 - m));
        // SAFETY: plain register arithmetic.
        let var = (unsafe { combine8_f64(acc[r].0, acc[r].1) } + tail) / n as f64;
        rstd[r] = 1.0 / (var + eps as f64).sqrt();
    }
    for i in (0..whole).step_by(8) {
        for r in 0..R {
            // SAFETY: i + 8 ≤ n = gamma.len() = beta.len() (checked by the entry point).
            unsafe {
                let (mv, rv) = (_mm256_set1_pd(mean[r]), _mm256_set1_pd(rstd[r]));
                let (a, b) = widen8(p[r].add(i));
                let a = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(a, mv), rv));
                let b = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(b, mv), rv));
                let y = _mm256_add_ps(
                    _mm256_mul_ps(
                        _mm256_set_m128(b, a),
                        _mm256_loadu_ps(gamma.as_ptr().add(i)),
                    ),
                    _mm256_loadu_ps(beta.as_ptr().add(i)),
                );
                _mm256_storeu_ps(p[r].add(i), y);
            }
        }
    }
    for r in 0..R {
        // SAFETY: as above.
        let row = unsafe { std::slice::from_raw_parts_mut(p[r], n) };
        for j in whole..n {
            row[j] = ((row[j] as f64 - mean[r]) * rstd[r]) as f32 * gamma[j] + beta[j];
        }
    }
}

#[target_feature(enable = "avx2")]
unsafe fn layer_norm_rows_avx2_impl(
    x: &mut [f32],
    residual: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    let n = gamma.len();
    let rows = x.len() / n;
    let (px, pr) = (x.as_mut_ptr(), residual.map(|r| r.as_ptr()));
    let mut r0 = 0;
    while r0 + 4 <= rows {
        // SAFETY: rows r0..r0 + 4 of n floats in x (and residual, of x's length).
        unsafe {
            let p = [0, 1, 2, 3].map(|r| px.add((r0 + r) * n));
            let res = pr.map(|q| [0, 1, 2, 3].map(|r| q.add((r0 + r) * n)));
            layer_norm_group_avx2::<4>(p, res, n, gamma, beta, eps);
        }
        r0 += 4;
    }
    for r in r0..rows {
        // SAFETY: as above, one row.
        unsafe {
            let res = pr.map(|q| [q.add(r * n)]);
            layer_norm_group_avx2::<1>([px.add(r * n)], res, n, gamma, beta, eps);
        }
    }
}

/// LayerNorm over rows with AVX2, bit for bit [`super::scalar::layer_norm_rows`]: four rows
/// at a time.
pub fn layer_norm_rows_avx2(
    x: &mut [f32],
    residual: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    super::check_layer_norm_rows(x, residual, gamma, beta);
    debug_assert!(super::Isa::Avx2.available());
    // SAFETY: AVX2 presence is the table's invariant; lengths checked above.
    unsafe { layer_norm_rows_avx2_impl(x, residual, gamma, beta, eps) }
}

/// Eight rows as eight columns: `dst[dd·ld + i] = src[i][dd]` for `i < 8`, `dd < d`, in 8 × 8
/// blocks of AVX shuffles (the classic unpack / shuffle / 128-bit permute transpose); data
/// movement only, so exactly [`super::scalar::transpose8`].
#[target_feature(enable = "avx2")]
unsafe fn transpose8_avx2_impl(src: [&[f32]; 8], d: usize, dst: &mut [f32], ld: usize) {
    let p = src.map(|s| s.as_ptr());
    let o = dst.as_mut_ptr();
    let mut dd = 0;
    while dd + 8 <= d {
        // SAFETY: each source row holds d values (checked by the entry); dd + 8 ≤ d.
        let r = unsafe {
            [
                _mm256_loadu_ps(p[0].add(dd)),
                _mm256_loadu_ps(p[1].add(dd)),
                _mm256_loadu_ps(p[2].add(dd)),
                _mm256_loadu_ps(p[3].add(dd)),
                _mm256_loadu_ps(p[4].add(dd)),
                _mm256_loadu_ps(p[5].add(dd)),
                _mm256_loadu_ps(p[6].add(dd)),
                _mm256_loadu_ps(p[7].add(dd)),
            ]
        };
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let c = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        for (j, cj) in c.iter().enumerate() {
            // SAFETY: the entry checked dst holds (d - 1)·ld + 8 values.
            unsafe { _mm256_storeu_ps(o.add((dd + j) * ld), *cj) };
        }
        dd += 8;
    }
    if dd < d {
        let rest = src.map(|s| &s[dd..]);
        super::scalar::transpose_rows(&rest, d - dd, &mut dst[dd * ld..], ld);
    }
}

/// [`super::scalar::transpose8`] with AVX2.
pub fn transpose8_avx2(src: [&[f32]; 8], d: usize, dst: &mut [f32], ld: usize) {
    super::check_transpose8_args(&src, d, dst, ld);
    // SAFETY: shapes checked above; AVX2 presence is the table's invariant.
    unsafe { transpose8_avx2_impl(src, d, dst, ld) }
}

/// [`exp8_avx2`] on 16 lanes, operation for operation.
#[inline(always)]
unsafe fn exp16_avx512(x: __m512) -> __m512 {
    use super::scalar::exp_consts::*;
    // No closures here: see exp8_avx2.
    let x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(LO)), _mm512_set1_ps(HI));
    let round = _mm512_set1_ps(ROUND);
    let n = _mm512_sub_ps(
        _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(LOG2E)), round),
        round,
    );
    let r = _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(LN2_HI)));
    let r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(LN2_LO)));
    let mut p = _mm512_set1_ps(P[0]);
    for &k in &P[1..] {
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(k));
    }
    let y = _mm512_add_ps(
        _mm512_add_ps(_mm512_mul_ps(p, _mm512_mul_ps(r, r)), r),
        _mm512_set1_ps(1.0),
    );
    let e = _mm512_slli_epi32::<23>(_mm512_add_epi32(
        _mm512_cvtps_epi32(n),
        _mm512_set1_epi32(127),
    ));
    _mm512_mul_ps(y, _mm512_castsi512_ps(e))
}

/// The attention softmax on 16 lanes for `R` rows of `n` scores at once, each row's steps
/// interleaved with the others' (one row alone is a chain of dependent steps: maximum, then
/// a sum, a division, then the scaling). Each row is [`super::scalar::softmax_rows`]'s to the
/// bit: scaled by `scale` (one rounding, stored), then the f64 sum keeps the scalar's 8 lanes
/// in one register: element i goes to lane i mod 8 in order (a 16-wide step adds its low then
/// its high half).
#[inline(always)]
unsafe fn softmax_group_avx512<const R: usize>(p: [*mut f32; R], n: usize, scale: f32) {
    let sv = _mm512_set1_ps(scale);
    let mut m16 = [_mm512_set1_ps(f32::NEG_INFINITY); R];
    let mut i = 0;
    while i + 16 <= n {
        for (m, &p) in m16.iter_mut().zip(&p) {
            // SAFETY: i + 16 ≤ n, inside each row.
            unsafe {
                let v = _mm512_mul_ps(_mm512_loadu_ps(p.add(i)), sv);
                _mm512_storeu_ps(p.add(i), v);
                *m = _mm512_max_ps(*m, v);
            }
        }
        i += 16;
    }
    let whole16 = i;
    let mut max = [0f32; R];
    for ((mx, m), &p) in max.iter_mut().zip(&m16).zip(&p) {
        // SAFETY: each row holds n floats, this thread's alone.
        let row = unsafe { std::slice::from_raw_parts_mut(p, n) };
        let mut v = _mm512_reduce_max_ps(*m);
        for x in &mut row[whole16..] {
            *x *= scale;
            v = v.max(*x);
        }
        *mx = v;
    }
    let mut sum = [_mm512_setzero_pd(); R];
    i = 0;
    while i + 16 <= n {
        for r in 0..R {
            // SAFETY: i + 16 ≤ n.
            unsafe {
                let e = exp16_avx512(_mm512_sub_ps(
                    _mm512_loadu_ps(p[r].add(i)),
                    _mm512_set1_ps(max[r]),
                ));
                _mm512_storeu_ps(p[r].add(i), e);
                sum[r] = _mm512_add_pd(sum[r], _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
                let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(e)));
                sum[r] = _mm512_add_pd(sum[r], _mm512_cvtps_pd(hi));
            }
        }
        i += 16;
    }
    let mut inv = [0f32; R];
    for r in 0..R {
        let mut i = i;
        if i + 8 <= n {
            // SAFETY: i + 8 ≤ n.
            unsafe {
                let e = exp8_avx2(_mm256_sub_ps(
                    _mm256_loadu_ps(p[r].add(i)),
                    _mm256_set1_ps(max[r]),
                ));
                _mm256_storeu_ps(p[r].add(i), e);
                sum[r] = _mm512_add_pd(sum[r], _mm512_cvtps_pd(e));
            }
            i += 8;
        }
        // SAFETY: as above.
        let row = unsafe { std::slice::from_raw_parts_mut(p[r], n) };
        let mut tail = 0f64;
        for v in &mut row[i..] {
            *v = super::scalar::exp_fast(*v - max[r]);
            tail += *v as f64;
        }
        // s = [l0+l4, l1+l5, l2+l6, l3+l7]; then (s0+s2) + (s1+s3), as the scalar.
        let s = _mm256_add_pd(
            _mm512_castpd512_pd256(sum[r]),
            _mm512_extractf64x4_pd::<1>(sum[r]),
        );
        let t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
        let h = _mm_add_sd(t, _mm_unpackhi_pd(t, t));
        inv[r] = (1.0 / (_mm_cvtsd_f64(h) + tail)) as f32;
    }
    i = 0;
    while i + 16 <= n {
        for r in 0..R {
            // SAFETY: i + 16 ≤ n.
            unsafe {
                let v = _mm512_mul_ps(_mm512_loadu_ps(p[r].add(i)), _mm512_set1_ps(inv[r]));
                _mm512_storeu_ps(p[r].add(i), v);
            }
        }
        i += 16;
    }
    for r in 0..R {
        // SAFETY: as above.
        let row = unsafe { std::slice::from_raw_parts_mut(p[r], n) };
        for v in &mut row[i..] {
            *v *= inv[r];
        }
    }
}

#[target_feature(enable = "avx512f,avx2")]
unsafe fn softmax_rows_avx512_impl(x: &mut [f32], rows: usize, scale: f32) {
    let n = x.len() / rows;
    let mut groups = x.chunks_exact_mut(4 * n);
    for g in &mut groups {
        let p = g.as_mut_ptr();
        // SAFETY: four rows of n floats in g.
        unsafe { softmax_group_avx512::<4>([0, 1, 2, 3].map(|r| p.add(r * n)), n, scale) };
    }
    for row in groups.into_remainder().chunks_exact_mut(n) {
        // SAFETY: one row of n floats.
        unsafe { softmax_group_avx512::<1>([row.as_mut_ptr()], n, scale) };
    }
}

/// The attention softmax with AVX-512, bit for bit [`super::scalar::softmax_rows`]: four rows
/// at a time.
pub fn softmax_rows_avx512(x: &mut [f32], rows: usize, scale: f32) {
    super::check_softmax_rows(x, rows);
    debug_assert!(super::Isa::Avx512Vnni.available());
    if x.is_empty() {
        return;
    }
    // SAFETY: AVX-512F presence is the table's invariant; the body stays inside x.
    unsafe { softmax_rows_avx512_impl(x, rows, scale) }
}
