//! Turning C arguments (pointer + length) into checked Rust slices and strings.

use std::ffi::c_char;

use crate::status::{dbrt_status, Failure, Outcome};

/// A string by pointer and length in bytes (UTF-8, no terminator needed), for arrays of
/// strings: batches of pairs and zero-shot candidate labels.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub struct dbrt_str {
    /// The first byte; must not be NULL (an empty string still points somewhere).
    pub ptr: *const c_char,
    /// Length in bytes.
    pub len: usize,
}

fn check_span<T>(ptr: *const T, len: usize, what: &str) -> Outcome {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    if !(ptr as usize).is_multiple_of(std::mem::align_of::<T>()) {
        return Err(Failure::new(
            dbrt_status::DBRT_INVALID_ARGUMENT,
            format!("{what} is not aligned for its type"),
        ));
    }
    if len
        .checked_mul(std::mem::size_of::<T>())
        .is_none_or(|b| b > isize::MAX as usize)
    {
        return Err(Failure::new(
            dbrt_status::DBRT_INVALID_ARGUMENT,
            format!("{what}: length {len} is too large"),
        ));
    }
    Ok(())
}

/// `len` elements at `ptr`.
///
/// # Safety
/// When `ptr` is not NULL, it must point at `len` initialized elements that stay valid and
/// unchanged for `'a` (the caller's contract, written in the header).
pub(crate) unsafe fn slice<'a, T>(ptr: *const T, len: usize, what: &str) -> Outcome<&'a [T]> {
    check_span(ptr, len, what)?;
    // SAFETY: non-NULL, aligned and not too long (checked above); validity for `len` elements
    // is the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The first `needed` elements of a caller's output buffer of `capacity` elements; too small
/// is `DBRT_BUFFER_TOO_SMALL`.
///
/// # Safety
/// When `ptr` is not NULL, it must point at `capacity` writable elements not otherwise
/// referenced during the call.
pub(crate) unsafe fn out_slice<'a, T>(
    ptr: *mut T,
    capacity: usize,
    needed: usize,
    what: &str,
) -> Outcome<&'a mut [T]> {
    check_span(ptr.cast_const(), capacity, what)?;
    if capacity < needed {
        return Err(Failure::new(
            dbrt_status::DBRT_BUFFER_TOO_SMALL,
            format!("{what} holds {capacity} values, {needed} are needed"),
        ));
    }
    // SAFETY: non-NULL, aligned, `needed <= capacity` writable elements (the caller's contract).
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, needed) })
}

/// One output value.
///
/// # Safety
/// When `ptr` is not NULL, it must point at a writable `T`.
pub(crate) unsafe fn out<'a, T>(ptr: *mut T, what: &str) -> Outcome<&'a mut T> {
    check_span(ptr.cast_const(), 1, what)?;
    // SAFETY: non-NULL and aligned (checked); writable by the caller's contract.
    Ok(unsafe { &mut *ptr })
}

/// A required UTF-8 string.
///
/// # Safety
/// As [`slice`] for `len` bytes.
pub(crate) unsafe fn text<'a>(ptr: *const c_char, len: usize, what: &str) -> Outcome<&'a str> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { slice(ptr.cast::<u8>(), len, what) }?;
    std::str::from_utf8(bytes).map_err(|e| {
        Failure::new(
            dbrt_status::DBRT_INVALID_UTF8,
            format!("{what} is not valid UTF-8 ({e})"),
        )
    })
}

/// An optional UTF-8 string: NULL (with length 0) means absent.
///
/// # Safety
/// As [`slice`] for `len` bytes.
pub(crate) unsafe fn optional_text<'a>(
    ptr: *const c_char,
    len: usize,
    what: &str,
) -> Outcome<Option<&'a str>> {
    if ptr.is_null() {
        return match len {
            0 => Ok(None),
            _ => Err(Failure::new(
                dbrt_status::DBRT_NULL_POINTER,
                format!("{what} is NULL with length {len}"),
            )),
        };
    }
    // SAFETY: forwarded contract.
    unsafe { text(ptr, len, what) }.map(Some)
}

impl dbrt_str {
    /// # Safety
    /// As [`text`].
    pub(crate) unsafe fn text<'a>(&self, what: &str) -> Outcome<&'a str> {
        // SAFETY: forwarded contract.
        unsafe { text(self.ptr, self.len, what) }
    }
}
