//! The C API's string, buffer and option arguments, called as a C program would (through the
//! `extern "C"` functions of ffi/src): arbitrary lengths, NULLs, non-UTF-8 bytes, output
//! capacities from 0 up, options values, calls after close. Every pointer passed keeps the
//! header's contract (a non-NULL pointer is valid for the length given with it): breaking the
//! contract is the caller's bug, not a finding. A panic caught at the boundary
//! (DBRT_INTERNAL_ERROR) is a finding too: libFuzzer's panic hook aborts first.
#![no_main]

use std::ffi::{c_char, CStr};
use std::ptr::{null, null_mut};

use dbrt_ffi::*;
use dbrt_fuzz::Cursor;
use libfuzzer_sys::fuzz_target;

dbrt_fuzz::fuzz_setup!();

/// Bytes for a string argument: ASCII words, UTF-8, invalid UTF-8, or raw input.
fn text(c: &mut Cursor<'_>) -> Vec<u8> {
    match c.u8() % 6 {
        0 => Vec::new(),
        1 => b"A man plays a guitar.".to_vec(),
        2 => vec![0xff, 0xfe, b'a', 0xc3],
        3 => "caf\u{e9} \u{2581}[MASK] [CLS]".as_bytes().to_vec(),
        4 => "a".repeat(c.below(3000)).into_bytes(),
        _ => {
            let n = c.below(200);
            c.bytes(n).to_vec()
        }
    }
}

/// A (pointer, length) for `bytes`: usually exact, sometimes NULL with a length, sometimes a
/// shorter length (always within the buffer).
fn arg(c: &mut Cursor<'_>, bytes: &[u8]) -> (*const c_char, usize) {
    match c.u8() % 8 {
        0 => (null(), bytes.len()),
        1 => (null(), 0),
        2 => (bytes.as_ptr().cast(), c.below(bytes.len() + 1)),
        _ => (bytes.as_ptr().cast(), bytes.len()),
    }
}

fn capacity(c: &mut Cursor<'_>, max: usize) -> usize {
    match c.u8() % 4 {
        0 => 0,
        1 => c.below(max + 1),
        _ => max,
    }
}

fn check_last_error() {
    let e = dbrt_last_error();
    assert!(!e.is_null());
    // SAFETY: dbrt_last_error returns a NUL-terminated string owned by the library.
    let s = unsafe { CStr::from_ptr(e) };
    assert!(
        s.to_bytes().len() < 64 * 1024,
        "last error of {} bytes",
        s.to_bytes().len()
    );
}

fn status_ok(s: dbrt_status) {
    assert!(
        s != dbrt_status::DBRT_INTERNAL_ERROR,
        "internal error: {:?}",
        // SAFETY: as in check_last_error.
        unsafe { CStr::from_ptr(dbrt_last_error()) }
    );
    if s != dbrt_status::DBRT_OK {
        check_last_error();
    }
}

fuzz_target!(|data: &[u8]| {
    dbrt_fuzz::init();
    let mut c = Cursor::new(data);
    let bases = dbrt_fuzz::base_models();
    let base = &bases[c.u8() as usize % bases.len()];
    let mut model: *mut dbrt_model = null_mut();
    // SAFETY (all calls below): every non-NULL pointer points at a live buffer at least as long
    // as the length passed with it; out-pointers point at locals.
    let s = match c.u8() % 5 {
        0 => unsafe { dbrt_model_open_memory(null(), base.len(), &mut model) },
        1 => unsafe { dbrt_model_open_memory(base.as_ptr(), c.below(base.len() + 1), &mut model) },
        2 => {
            // A path: a file in the scratch directory or a name that does not exist.
            let p = dbrt_fuzz::scratch_dir().join("c_api.dbrt");
            std::fs::write(&p, base).expect("scratch");
            let mut bytes = p.to_string_lossy().into_owned().into_bytes();
            if c.one_in(2) {
                bytes.extend_from_slice(&text(&mut c));
            }
            let (ptr, len) = arg(&mut c, &bytes);
            unsafe { dbrt_model_open(ptr, len, &mut model) }
        }
        3 => {
            // Borrowed memory, aligned or not.
            let v = base.clone();
            let s = unsafe { dbrt_model_open_memory_borrowed(v.as_ptr(), v.len(), &mut model) };
            if s == dbrt_status::DBRT_OK {
                // The model borrows v: keep it for the process (tiny, and the input's lifetime).
                std::mem::forget(v);
            }
            s
        }
        _ => unsafe { dbrt_model_open_memory(base.as_ptr(), base.len(), &mut model) },
    };
    status_ok(s);
    if s != dbrt_status::DBRT_OK {
        assert!(model.is_null());
        return;
    }
    let mut n_labels = 0usize;
    status_ok(unsafe { dbrt_model_num_labels(model, &mut n_labels) });
    let mut name: *const c_char = null();
    let mut name_len = 0usize;
    let idx = c.below(n_labels + 2);
    status_ok(unsafe { dbrt_model_label(model, idx, &mut name, &mut name_len) });

    let mut opts: *mut dbrt_session_options = null_mut();
    if !c.one_in(4) {
        status_ok(unsafe { dbrt_session_options_create(&mut opts) });
        for _ in 0..c.below(6) {
            let s = match c.u8() % 6 {
                0 => unsafe { dbrt_session_options_set_threads(opts, c.below(5)) },
                1 => unsafe {
                    dbrt_session_options_set_max_sequence_length(
                        opts,
                        [0, 1, 2, 3, 8, 64, 129, usize::MAX][c.below(8)],
                    )
                },
                2 => unsafe { dbrt_session_options_set_max_batch(opts, c.below(5)) },
                3 => {
                    let t = [
                        &b"scalar"[..],
                        b"avx2",
                        b"avx512vnni",
                        b"neon",
                        b"",
                        b"\xff",
                    ][c.below(6)]
                    .to_vec();
                    let (p, l) = arg(&mut c, &t);
                    unsafe { dbrt_session_options_set_isa(opts, p, l) }
                }
                4 => {
                    let t = [&b"longest_first"[..], b"only_first", b"only_second", b"x"]
                        [c.below(4)]
                    .to_vec();
                    let (p, l) = arg(&mut c, &t);
                    unsafe { dbrt_session_options_set_truncation(opts, p, l) }
                }
                _ => unsafe { dbrt_session_options_set_entailment_label(opts, c.below(6)) },
            };
            status_ok(s);
        }
    }
    let mut session: *mut dbrt_session = null_mut();
    let s = unsafe { dbrt_session_create(model, opts, &mut session) };
    status_ok(s);
    unsafe { dbrt_session_options_free(opts) };
    if s == dbrt_status::DBRT_OK {
        let mut out = vec![0f32; 4096];
        let mut ids = vec![0u32; 256];
        let mut type_ids = vec![0u32; 256];
        for _ in 0..1 + c.below(4) {
            let a = text(&mut c);
            let b = text(&mut c);
            let (ap, al) = arg(&mut c, &a);
            let (bp, bl) = match c.u8() % 3 {
                0 => (null(), 0),
                _ => arg(&mut c, &b),
            };
            let s = match c.u8() % 9 {
                0 => {
                    let cap = capacity(&mut c, ids.len());
                    let mut n = 0usize;
                    unsafe {
                        dbrt_session_tokenize(
                            session,
                            ap,
                            al,
                            bp,
                            bl,
                            ids.as_mut_ptr(),
                            if c.one_in(2) {
                                type_ids.as_mut_ptr()
                            } else {
                                null_mut()
                            },
                            cap,
                            &mut n,
                        )
                    }
                }
                1 => unsafe {
                    dbrt_session_classify(
                        session,
                        ap,
                        al,
                        bp,
                        bl,
                        out.as_mut_ptr(),
                        capacity(&mut c, 8),
                    )
                },
                2 => unsafe {
                    dbrt_session_classify_logits(
                        session,
                        ap,
                        al,
                        bp,
                        bl,
                        out.as_mut_ptr(),
                        capacity(&mut c, 8),
                    )
                },
                3 => {
                    let n = c.below(4);
                    let strs: Vec<dbrt_str> = (0..n)
                        .map(|i| dbrt_str {
                            ptr: if i % 2 == 0 { a.as_ptr() } else { b.as_ptr() }.cast(),
                            len: if i % 2 == 0 { a.len() } else { b.len() },
                        })
                        .collect();
                    let pairs = if c.one_in(2) { null() } else { strs.as_ptr() };
                    unsafe {
                        dbrt_session_classify_batch(
                            session,
                            strs.as_ptr(),
                            pairs,
                            n,
                            out.as_mut_ptr(),
                            capacity(&mut c, 64),
                        )
                    }
                }
                4 => {
                    let n = c.below(5);
                    let labels: Vec<dbrt_str> = (0..n)
                        .map(|i| dbrt_str {
                            ptr: b.as_ptr().cast(),
                            len: i.min(b.len()),
                        })
                        .collect();
                    let templ = text(&mut c);
                    let (tp, tl) = arg(&mut c, &templ);
                    unsafe {
                        dbrt_session_classify_zero_shot(
                            session,
                            ap,
                            al,
                            if c.one_in(5) { null() } else { labels.as_ptr() },
                            n,
                            tp,
                            tl,
                            c.u8() as i32 - 1,
                            out.as_mut_ptr(),
                            capacity(&mut c, 8),
                        )
                    }
                }
                5 | 6 => {
                    let n = c.below(ids.len());
                    for (k, id) in ids.iter_mut().enumerate().take(n) {
                        *id = match c.u8() % 8 {
                            0 => c.u32(),
                            1 => 999 + (k as u32 % 3),
                            _ => c.u16() as u32 % 1000,
                        };
                    }
                    let t = if c.one_in(2) {
                        type_ids.as_ptr()
                    } else {
                        null()
                    };
                    let f = if c.one_in(2) {
                        dbrt_session_run_logits
                    } else {
                        dbrt_session_run_hidden
                    };
                    unsafe {
                        f(
                            session,
                            ids.as_ptr(),
                            t,
                            n,
                            out.as_mut_ptr(),
                            capacity(&mut c, out.len()),
                        )
                    }
                }
                7 => {
                    let mut isa: *const c_char = null();
                    unsafe { dbrt_session_isa(session, &mut isa) }
                }
                _ => unsafe { dbrt_session_close(session) },
            };
            status_ok(s);
        }
    }
    let _ = dbrt_status_str(c.u32() as i32);
    unsafe { dbrt_session_free(session) };
    unsafe { dbrt_model_free(model) };
});
