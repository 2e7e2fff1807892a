//! The eight-row transpose with AVX2 shuffles: data movement only.

use std::arch::x86_64::*;

/// Eight rows as eight columns: `dst[dd·ld + i] = src[i][dd]` for `i < 8`, `dd < d`, in 8 × 8
/// blocks of AVX shuffles (the classic unpack / shuffle / 128-bit permute transpose); data
/// movement only, so exactly [`crate::kernels::scalar::transpose8`].
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
        crate::kernels::scalar::transpose_rows(&rest, d - dd, &mut dst[dd * ld..], ld);
    }
}

/// [`crate::kernels::scalar::transpose8`] with AVX2.
pub fn transpose8_avx2(src: [&[f32]; 8], d: usize, dst: &mut [f32], ld: usize) {
    crate::kernels::check_transpose8_args(&src, d, dst, ld);
    // SAFETY: shapes checked above; AVX2 presence is the table's invariant.
    unsafe { transpose8_avx2_impl(src, d, dst, ld) }
}
