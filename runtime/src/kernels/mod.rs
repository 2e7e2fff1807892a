//! Compute kernels. `scalar` is the reference every faster tier is tested against; it is plain
//! Rust, written so the compiler can vectorize it but never relying on it for correctness.

pub mod scalar;
