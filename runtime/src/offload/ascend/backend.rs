//! The `ascend` backend: an ATC-compiled offline model (`.om`) run through AscendCL.
//!
//! An [`AscendModel`] (one per model × artifacts × device, shared by dbrt sessions) holds the
//! device, its own context and the weight memory every session's instance shares. An
//! [`AscendState`] (one per dbrt session, `state.rs`) holds the session's context, stream, work
//! memory, model instance (`aclmdlLoadFromMemWithMem`), datasets and device buffers, all made
//! when the session is; a run only copies, sets the gear and executes.

pub use super::state::AscendState;

use std::ffi::c_void;
use std::sync::Mutex;

use super::api::{Acl, Context, Failure, MALLOC_HUGE_FIRST};
use super::library::Library;

/// Why an Ascend model or instance could not be made: the device or its resources, or the
/// offline model itself.
#[derive(Debug)]
pub enum AttachError {
    Unavailable(String),
    Invalid(String),
}

pub(super) fn unavailable(acl: &Acl, f: Failure) -> AttachError {
    AttachError::Unavailable(acl.describe_string(f))
}

/// A load failure is the offline model's fault unless the device ran out of something.
pub(super) fn load_failure(acl: &Acl, f: Failure) -> AttachError {
    match f.is_resource() {
        true => AttachError::Unavailable(acl.describe_string(f)),
        false => AttachError::Invalid(acl.describe_string(f)),
    }
}

/// The context current on this thread, NULL if none.
pub(super) fn current_context(acl: &Acl) -> Context {
    let mut c: Context = std::ptr::null_mut();
    // SAFETY: writes one pointer; a thread without a current context fails, leaving it unread.
    match unsafe { (acl.get_current_context)(&mut c) } {
        0 => c,
        _ => std::ptr::null_mut(),
    }
}

/// Makes `context` current on this thread until dropped, then restores the thread's previous
/// one (the host app may use AscendCL on the same thread).
pub(super) struct Current<'a> {
    acl: &'a Acl,
    previous: Context,
    context: Context,
}

impl<'a> Current<'a> {
    pub(super) fn enter(acl: &'a Acl, context: Context) -> Result<Current<'a>, Failure> {
        let previous = current_context(acl);
        // SAFETY: a live context made by this backend.
        acl.check("aclrtSetCurrentContext", unsafe {
            (acl.set_current_context)(context)
        })?;
        Ok(Current {
            acl,
            previous,
            context,
        })
    }
}

impl Drop for Current<'_> {
    fn drop(&mut self) {
        if !self.previous.is_null() && self.previous != self.context {
            // SAFETY: the context that was current on this thread when entered.
            unsafe { (self.acl.set_current_context)(self.previous) };
        }
    }
}

/// An offline model on one device, shared by sessions: its context and the weight memory.
pub struct AscendModel {
    pub(super) lib: &'static Library,
    pub(super) device: i32,
    device_set: bool,
    context: Context,
    pub(super) weight: *mut c_void,
    pub(super) weight_size: usize,
    pub(super) work_size: usize,
    /// Ascending: the sequence lengths ATC compiled.
    pub gears: Vec<usize>,
    pub hidden_size: usize,
    /// Held while an instance loads: loads share (and may write) the weight memory.
    pub(super) loading: Mutex<()>,
}

// SAFETY: the context and weight memory are only read after creation (instances load under
// `loading`), and released in Drop, when no session holds the model any more.
unsafe impl Send for AscendModel {}
// SAFETY: as for Send: shared use is sessions loading instances (serialized) and running them.
unsafe impl Sync for AscendModel {}

impl AscendModel {
    /// Sets `device`, makes the model's context and its weight memory for `om`.
    pub fn new(
        lib: &'static Library,
        device: i32,
        om: &[u8],
        gears: Vec<usize>,
        hidden_size: usize,
    ) -> Result<AscendModel, AttachError> {
        let acl = &lib.acl;
        let mut m = AscendModel {
            lib,
            device,
            device_set: false,
            context: std::ptr::null_mut(),
            weight: std::ptr::null_mut(),
            weight_size: 0,
            work_size: 0,
            gears,
            hidden_size,
            loading: Mutex::new(()),
        };
        // Read before aclrtSetDevice, which makes the device's default context current: the
        // context the host app had on this thread is the one given back, on every path.
        let previous = current_context(acl);
        let made = m.open(om);
        if !previous.is_null() {
            // SAFETY: the context current on this thread before.
            unsafe { (acl.set_current_context)(previous) };
        }
        made.map(|()| m)
    }

    /// Sets the device, makes the model's context (current on this thread) and its weight
    /// memory; whatever was made is released by Drop if a step fails.
    fn open(&mut self, om: &[u8]) -> Result<(), AttachError> {
        let acl = &self.lib.acl;
        // SAFETY: a device id; AscendCL checks it.
        acl.check("aclrtSetDevice", unsafe { (acl.set_device)(self.device) })
            .map_err(|f| unavailable(acl, f))?;
        self.device_set = true;
        // SAFETY: writes the new context; it becomes current on this thread.
        acl.check("aclrtCreateContext", unsafe {
            (acl.create_context)(&mut self.context, self.device)
        })
        .map_err(|f| unavailable(acl, f))?;
        self.size_and_allocate(om)
    }

    fn size_and_allocate(&mut self, om: &[u8]) -> Result<(), AttachError> {
        let acl = &self.lib.acl;
        let (mut work, mut weight) = (0usize, 0usize);
        // SAFETY: `om` is readable for its length; the sizes are written.
        acl.check("aclmdlQuerySizeFromMem", unsafe {
            (acl.query_size_from_mem)(om.as_ptr().cast(), om.len(), &mut work, &mut weight)
        })
        .map_err(|f| load_failure(acl, f))?;
        self.work_size = work;
        if weight > 0 {
            // SAFETY: writes the allocation's address.
            acl.check("aclrtMalloc", unsafe {
                (acl.malloc)(&mut self.weight, weight, MALLOC_HUGE_FIRST)
            })
            .map_err(|f| unavailable(acl, f))?;
            self.weight_size = weight;
        }
        log::info!(
            "Ascend device {}: offline model of {} bytes, weight memory {} bytes, work memory {} \
             bytes per session",
            self.device,
            om.len(),
            weight,
            work
        );
        Ok(())
    }

    pub fn largest_gear(&self) -> usize {
        self.gears.last().copied().unwrap_or(0)
    }
}

impl Drop for AscendModel {
    fn drop(&mut self) {
        let acl = &self.lib.acl;
        if !self.context.is_null() {
            let current = Current::enter(acl, self.context);
            if !self.weight.is_null() {
                // SAFETY: allocated by aclrtMalloc in this context; no instance uses it now.
                unsafe { (acl.free)(self.weight) };
            }
            drop(current);
            // SAFETY: this model's context, which nothing uses any more.
            unsafe { (acl.destroy_context)(self.context) };
        }
        if self.device_set {
            // SAFETY: pairs the aclrtSetDevice of `new`.
            unsafe { (acl.reset_device)(self.device) };
        }
    }
}
