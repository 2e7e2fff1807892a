//! Session memory: sized with checked arithmetic, measured before it is allocated, and
//! allocated fallibly, so that sizes a file or a caller asks for become an
//! [`Error::OutOfMemory`] instead of an abort (Rust aborts the process when an infallible
//! allocation fails, and `catch_unwind` cannot stop that).

use std::alloc::Layout;

use crate::error::{Error, Result};

/// Hands out zeroed buffers, or (in a dry run) only adds up what they would take.
pub(crate) struct Buffers {
    dry: bool,
    bytes: u64,
}

impl Buffers {
    /// Counts bytes without allocating: for measuring a session before it is made.
    pub fn dry_run() -> Buffers {
        Buffers {
            dry: true,
            bytes: 0,
        }
    }

    /// Allocates for real.
    pub fn allocating() -> Buffers {
        Buffers {
            dry: false,
            bytes: 0,
        }
    }

    /// Bytes handed out (or that would have been) so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// A zeroed buffer of `n` values (empty in a dry run). The pages of a large buffer are
    /// mapped lazily by the system, so memory a run never touches is never resident.
    pub fn zeroed<T: bytemuck::Zeroable>(
        &mut self,
        n: usize,
        what: &'static str,
    ) -> Result<Vec<T>> {
        let oom = |bytes: u64| Error::OutOfMemory { what, bytes };
        let size = (n as u64)
            .checked_mul(std::mem::size_of::<T>() as u64)
            .ok_or(oom(u64::MAX))?;
        self.bytes = self.bytes.saturating_add(size);
        if self.dry || n == 0 || std::mem::size_of::<T>() == 0 {
            return Ok(Vec::new());
        }
        let layout = Layout::array::<T>(n).map_err(|_| oom(size))?;
        // SAFETY: the layout has a non-zero size (n > 0 and T is not zero-sized).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
        if ptr.is_null() {
            return Err(oom(size));
        }
        // SAFETY: `ptr` was allocated by the global allocator with the layout of `n` values of
        // T (what a Vec of capacity n uses), and all-zero bytes are a valid T (`Zeroable`).
        Ok(unsafe { Vec::from_raw_parts(ptr, n, n) })
    }
}

/// `a * b * ...` in `usize`, or `OutOfMemory` naming `what` when it overflows (on 32-bit
/// targets a session's sizes can).
pub(crate) fn product(factors: &[usize], what: &'static str) -> Result<usize> {
    factors
        .iter()
        .try_fold(1usize, |acc, &f| acc.checked_mul(f))
        .ok_or(Error::OutOfMemory {
            what,
            bytes: u64::MAX,
        })
}

/// `a + b + ...` in `usize`, or `OutOfMemory` naming `what`.
pub(crate) fn sum(terms: &[usize], what: &'static str) -> Result<usize> {
    terms
        .iter()
        .try_fold(0usize, |acc, &t| acc.checked_add(t))
        .ok_or(Error::OutOfMemory {
            what,
            bytes: u64::MAX,
        })
}

/// The machine's physical memory in bytes, where the system says.
pub(crate) fn physical_memory() -> Option<u64> {
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        target_os = "freebsd"
    ))]
    {
        // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
        let (pages, page) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        if pages > 0 && page > 0 {
            return (pages as u64).checked_mul(page as u64);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dry_run_counts_without_allocating() {
        let mut b = Buffers::dry_run();
        let v = b.zeroed::<f32>(1 << 40, "test").unwrap();
        assert!(v.is_empty());
        assert_eq!(b.bytes(), 4 << 40);
    }

    #[test]
    fn buffers_are_zeroed_and_sized() {
        let mut b = Buffers::allocating();
        let v = b.zeroed::<u32>(1000, "test").unwrap();
        assert_eq!(v.len(), 1000);
        assert!(v.iter().all(|&x| x == 0));
        assert_eq!(b.bytes(), 4000);
        assert!(b.zeroed::<u8>(0, "test").unwrap().is_empty());
    }

    #[test]
    fn an_impossible_allocation_is_an_error_not_an_abort() {
        let mut b = Buffers::allocating();
        // More than any address space holds: the allocator refuses, and so must we, politely.
        let e = b.zeroed::<u8>(isize::MAX as usize, "test").unwrap_err();
        assert!(matches!(e, Error::OutOfMemory { what: "test", .. }), "{e}");
        let e = b.zeroed::<u64>(usize::MAX / 4, "test").unwrap_err();
        assert!(matches!(e, Error::OutOfMemory { .. }), "{e}");
        assert!(product(&[usize::MAX, 2], "x").is_err());
        assert_eq!(product(&[3, 4], "x").unwrap(), 12);
        assert!(sum(&[usize::MAX, 1], "x").is_err());
    }
}
