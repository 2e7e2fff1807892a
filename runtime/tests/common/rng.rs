//! The seeded xorshift stream the kernel and packing tests draw their random cases from.

/// A xorshift64 stream from `seed` (never zero).
pub fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}
