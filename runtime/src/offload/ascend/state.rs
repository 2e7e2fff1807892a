//! One session's instance of an Ascend offline model: made with the session, run without
//! allocating, released in its own context.

use std::ffi::{c_int, c_void};

use super::api::{
    Context, DataBuffer, Dataset, Failure, IoDims, ModelDesc, Stream, GEAR_INPUT,
    MALLOC_HUGE_FIRST, MEMCPY_DEVICE_TO_DEVICE, MEMCPY_DEVICE_TO_HOST, MEMCPY_HOST_TO_DEVICE,
    RUN_MODE_DEVICE, RUN_MODE_HOST,
};
use super::backend::{
    current_context, load_failure, unavailable, AscendModel, AttachError, Current,
};
use super::library::Library;
use crate::offload::device::Message;
use crate::offload::manifest::MAX_GEARS;

/// The device buffers of one session, in dataset order: hidden, mask, gear; output.
const HIDDEN: usize = 0;
const MASK: usize = 1;
const GEAR: usize = 2;
const OUT: usize = 3;

/// One session's instance of the model and everything a run needs.
pub struct AscendState {
    lib: &'static Library,
    context: Context,
    stream: Stream,
    work: *mut c_void,
    model_id: Option<u32>,
    desc: *mut ModelDesc,
    input: *mut Dataset,
    output: *mut Dataset,
    /// Device buffers (address, size) and their data buffers, by the indices above.
    memory: [(*mut c_void, usize); 4],
    data: [*mut DataBuffer; 4],
    /// The gear input's index in the model's inputs.
    gear_index: usize,
    /// Per gear of the model (ascending), the dims `aclmdlSetInputDynamicDims` takes.
    gear_dims: Vec<IoDims>,
    /// The mask, on the host, for the largest gear.
    mask: Vec<f32>,
    copy_in: c_int,
    copy_out: c_int,
}

// SAFETY: the pointers are this state's own AscendCL objects, used only through `&mut self`
// after making the state's context current on the calling thread.
unsafe impl Send for AscendState {}

impl AscendState {
    /// The session's context, stream, instance (its own work memory, the model's weight
    /// memory), and datasets over device buffers; checks the instance's interface.
    pub fn new(model: &AscendModel, om: &[u8]) -> Result<AscendState, AttachError> {
        let lib = model.lib;
        let acl = &lib.acl;
        let mut s = AscendState {
            lib,
            context: std::ptr::null_mut(),
            stream: std::ptr::null_mut(),
            work: std::ptr::null_mut(),
            model_id: None,
            desc: std::ptr::null_mut(),
            input: std::ptr::null_mut(),
            output: std::ptr::null_mut(),
            memory: [(std::ptr::null_mut(), 0); 4],
            data: [std::ptr::null_mut(); 4],
            gear_index: GEAR,
            gear_dims: Vec::new(),
            mask: Vec::new(),
            copy_in: MEMCPY_HOST_TO_DEVICE,
            copy_out: MEMCPY_DEVICE_TO_HOST,
        };
        let previous = current_context(acl);
        // SAFETY: writes the new context; it becomes current on this thread.
        let made = acl
            .check("aclrtCreateContext", unsafe {
                (acl.create_context)(&mut s.context, model.device)
            })
            .map_err(|f| unavailable(acl, f))
            .and_then(|()| s.build(model, om));
        if !previous.is_null() {
            // SAFETY: the context current on this thread before.
            unsafe { (acl.set_current_context)(previous) };
        }
        // On an error, Drop releases whatever was made.
        made.map(|()| s)
    }

    fn build(&mut self, m: &AscendModel, om: &[u8]) -> Result<(), AttachError> {
        let acl = &self.lib.acl;
        let fail = |f| unavailable(acl, f);
        // SAFETY: writes the stream of the current (this state's) context.
        acl.check("aclrtCreateStream", unsafe {
            (acl.create_stream)(&mut self.stream)
        })
        .map_err(fail)?;
        let mut mode: c_int = RUN_MODE_HOST;
        // SAFETY: writes one int.
        acl.check("aclrtGetRunMode", unsafe { (acl.get_run_mode)(&mut mode) })
            .map_err(fail)?;
        // On the board's own CPU, "host" memory is the device's: copies are device to device.
        if mode == RUN_MODE_DEVICE {
            (self.copy_in, self.copy_out) = (MEMCPY_DEVICE_TO_DEVICE, MEMCPY_DEVICE_TO_DEVICE);
        }
        if m.work_size > 0 {
            // SAFETY: writes the allocation's address.
            acl.check("aclrtMalloc", unsafe {
                (acl.malloc)(&mut self.work, m.work_size, MALLOC_HUGE_FIRST)
            })
            .map_err(fail)?;
        }
        let mut id = 0u32;
        {
            let _loading = m.loading.lock().unwrap_or_else(|e| e.into_inner());
            // SAFETY: `om` readable for its length; work and weight memory are allocations of
            // the sizes aclmdlQuerySizeFromMem gave for these bytes.
            let code = unsafe {
                (acl.load_from_mem_with_mem)(
                    om.as_ptr().cast(),
                    om.len(),
                    &mut id,
                    self.work,
                    m.work_size,
                    m.weight,
                    m.weight_size,
                )
            };
            acl.check("aclmdlLoadFromMemWithMem", code)
                .map_err(|f| load_failure(acl, f))?;
        }
        self.model_id = Some(id);
        // SAFETY: no arguments; NULL on failure.
        self.desc = unsafe { (acl.create_desc)() };
        if self.desc.is_null() {
            return Err(AttachError::Unavailable(
                "aclmdlCreateDesc returned NULL".into(),
            ));
        }
        // SAFETY: a live desc and the instance just loaded.
        acl.check("aclmdlGetDesc", unsafe { (acl.get_desc)(self.desc, id) })
            .map_err(|f| load_failure(acl, f))?;
        self.check_interface(m)?;
        self.make_datasets()?;
        self.mask = vec![0.0; m.largest_gear()];
        Ok(())
    }

    /// Refuses an offline model that is not dbrt's encoder with the expected gears: it would
    /// fail (or misread buffers) on every run.
    fn check_interface(&mut self, m: &AscendModel) -> Result<(), AttachError> {
        let acl = &self.lib.acl;
        let invalid = |what: String| AttachError::Invalid(format!("it {what}"));
        // SAFETY: a live desc (all calls below).
        let (inputs, outputs) =
            unsafe { ((acl.num_inputs)(self.desc), (acl.num_outputs)(self.desc)) };
        if (inputs, outputs) != (3, 1) {
            return Err(invalid(format!(
                "has {inputs} inputs and {outputs} outputs: hidden, mask and the gear input -> \
                 last_hidden expected (compiled with --dynamic_dims?)"
            )));
        }
        let mut gear_index = 0usize;
        // SAFETY: a NUL-terminated name; writes one index.
        acl.check("aclmdlGetInputIndexByName", unsafe {
            (acl.input_index_by_name)(self.desc, GEAR_INPUT.as_ptr(), &mut gear_index)
        })
        .map_err(|_| invalid("has no gear input (ascend_mbatch_shape_data)".into()))?;
        if gear_index != GEAR {
            return Err(invalid(format!(
                "takes its gear as input {gear_index}, not 2"
            )));
        }
        self.gear_index = gear_index;
        let (g, h) = (m.largest_gear(), m.hidden_size);
        let need = [(HIDDEN, g * h * 4), (MASK, g * 4)];
        for (i, bytes) in need {
            // SAFETY: an input index below the count checked above.
            let size = unsafe { (acl.input_size)(self.desc, i) };
            if size < bytes {
                return Err(invalid(format!(
                    "input {i} holds {size} bytes, {bytes} expected for {g} tokens"
                )));
            }
            self.memory[i].1 = size;
        }
        // SAFETY: input 2 and output 0 exist (counts above).
        self.memory[GEAR].1 = unsafe { (acl.input_size)(self.desc, GEAR) };
        // SAFETY: as above.
        self.memory[OUT].1 = unsafe { (acl.output_size)(self.desc, 0) };
        if self.memory[OUT].1 < g * h * 4 {
            return Err(invalid(format!(
                "output holds {} bytes, {} expected for {g} tokens",
                self.memory[OUT].1,
                g * h * 4
            )));
        }
        self.gear_dims = self.read_gears(m)?;
        Ok(())
    }

    /// The model's gears, each `[1, g, H, 1, g]`, in the order of `m.gears` (which they must
    /// equal as a set).
    fn read_gears(&self, m: &AscendModel) -> Result<Vec<IoDims>, AttachError> {
        let acl = &self.lib.acl;
        let invalid = |what: String| AttachError::Invalid(format!("it {what}"));
        let mut count = 0usize;
        // SAFETY: a live desc; index -1 as documented; writes one count.
        acl.check("aclmdlGetInputDynamicGearCount", unsafe {
            (acl.dynamic_gear_count)(self.desc, usize::MAX, &mut count)
        })
        .map_err(|f| load_failure(acl, f))?;
        if count == 0 || count > MAX_GEARS {
            return Err(invalid(format!(
                "has {count} gears (1..={MAX_GEARS} expected)"
            )));
        }
        let mut dims = vec![IoDims::ZERO; count];
        // SAFETY: room for `count` dims, as asked.
        acl.check("aclmdlGetInputDynamicDims", unsafe {
            (acl.dynamic_dims)(self.desc, usize::MAX, dims.as_mut_ptr(), count)
        })
        .map_err(|f| load_failure(acl, f))?;
        let h = m.hidden_size as i64;
        let mut ordered = Vec::with_capacity(m.gears.len());
        for &g in &m.gears {
            let want = [1, g as i64, h, 1, g as i64];
            match dims.iter().find(|d| d.used() == want) {
                Some(d) => ordered.push(*d),
                None => {
                    return Err(invalid(format!(
                        "has no gear {want:?} (compiled for other gears or another hidden size)"
                    )))
                }
            }
        }
        if count != m.gears.len() {
            return Err(invalid(format!(
                "has {count} gears, the export {}",
                m.gears.len()
            )));
        }
        Ok(ordered)
    }

    fn make_datasets(&mut self) -> Result<(), AttachError> {
        let acl = &self.lib.acl;
        // SAFETY: no arguments; NULL on failure (both).
        (self.input, self.output) = unsafe { ((acl.create_dataset)(), (acl.create_dataset)()) };
        if self.input.is_null() || self.output.is_null() {
            return Err(AttachError::Unavailable(
                "aclmdlCreateDataset returned NULL".into(),
            ));
        }
        for i in [HIDDEN, MASK, GEAR, OUT] {
            let size = self.memory[i].1;
            // SAFETY: writes the allocation's address.
            acl.check("aclrtMalloc", unsafe {
                (acl.malloc)(&mut self.memory[i].0, size.max(1), MALLOC_HUGE_FIRST)
            })
            .map_err(|f| unavailable(acl, f))?;
            // SAFETY: a device allocation of `size` bytes (at least), alive while the buffer is.
            self.data[i] = unsafe { (acl.create_data_buffer)(self.memory[i].0, size) };
            if self.data[i].is_null() {
                return Err(AttachError::Unavailable(
                    "aclCreateDataBuffer returned NULL".into(),
                ));
            }
            let set = if i == OUT { self.output } else { self.input };
            // SAFETY: a live dataset and data buffer; the dataset does not free the buffer.
            acl.check("aclmdlAddDatasetBuffer", unsafe {
                (acl.add_dataset_buffer)(set, self.data[i])
            })
            .map_err(|f| unavailable(acl, f))?;
        }
        Ok(())
    }

    /// Runs gear `index` (of the model's) over the first `tokens` rows of `hidden`, into
    /// `hidden`'s first `rows` rows. Allocates nothing; a failure's message goes to `message`.
    pub fn run(
        &mut self,
        m: &AscendModel,
        index: usize,
        hidden: &mut [f32],
        tokens: usize,
        rows: usize,
        message: &mut Message,
    ) -> Result<(), ()> {
        let acl = &self.lib.acl;
        let report = |message: &mut Message, f: Failure| {
            message.set(format_args!(""));
            acl.describe(f, message);
        };
        let (Some(&g), Some(dims)) = (m.gears.get(index), self.gear_dims.get(index)) else {
            message.set(format_args!("no gear {index}"));
            return Err(());
        };
        let h = m.hidden_size;
        if tokens > g || rows > tokens || hidden.len() < tokens * h {
            message.set(format_args!("{tokens} tokens for gear {g}"));
            return Err(());
        }
        let Some(id) = self.model_id else {
            message.set(format_args!("no model instance"));
            return Err(());
        };
        let current = match Current::enter(acl, self.context) {
            Ok(c) => c,
            Err(f) => {
                report(message, f);
                return Err(());
            }
        };
        self.mask[..tokens].fill(1.0);
        self.mask[tokens..g].fill(0.0);
        let done = self.copy_run_copy(id, dims, hidden, tokens, g, rows * h * 4, h);
        drop(current);
        done.map_err(|f| report(message, f))
    }

    /// In the state's context: the inputs in (the padded rows zeroed), the gear, the run, the
    /// first rows out.
    #[allow(clippy::too_many_arguments)]
    fn copy_run_copy(
        &self,
        id: u32,
        dims: &IoDims,
        hidden: &mut [f32],
        tokens: usize,
        g: usize,
        back: usize,
        h: usize,
    ) -> Result<(), Failure> {
        let acl = &self.lib.acl;
        let ((hp, hs), (mp, ms), (op, _)) =
            (self.memory[HIDDEN], self.memory[MASK], self.memory[OUT]);
        let (filled, padding) = (tokens * h * 4, (g - tokens) * h * 4);
        // SAFETY: the hidden buffer holds the largest gear (checked at creation; `g` is one of
        // the gears) and `hidden` at least `tokens` rows (checked by `run`).
        let code = unsafe { (acl.memcpy)(hp, hs, hidden.as_ptr().cast(), filled, self.copy_in) };
        acl.check("aclrtMemcpy", code)?;
        if padding > 0 {
            // SAFETY: rows `tokens..g` of the hidden buffer, inside it (as above).
            let code = unsafe {
                (acl.memset)(hp.cast::<u8>().add(filled).cast(), hs - filled, 0, padding)
            };
            acl.check("aclrtMemset", code)?;
        }
        // SAFETY: the mask buffer holds the largest gear; the host mask too.
        let code = unsafe { (acl.memcpy)(mp, ms, self.mask.as_ptr().cast(), g * 4, self.copy_in) };
        acl.check("aclrtMemcpy", code)?;
        // SAFETY: this state's instance and input dataset; dims as the model reported them.
        let code = unsafe { (acl.set_input_dynamic_dims)(id, self.input, self.gear_index, dims) };
        acl.check("aclmdlSetInputDynamicDims", code)?;
        // SAFETY: this state's instance and datasets, in its context (current).
        let code = unsafe { (acl.execute)(id, self.input, self.output) };
        acl.check("aclmdlExecute", code)?;
        // SAFETY: `hidden` holds at least `tokens` ≥ `rows` rows (`back` bytes); the output
        // buffer holds the largest gear.
        let code = unsafe {
            (acl.memcpy)(
                hidden.as_mut_ptr().cast(),
                hidden.len() * 4,
                op,
                back,
                self.copy_out,
            )
        };
        acl.check("aclrtMemcpy", code)
    }
}

impl Drop for AscendState {
    fn drop(&mut self) {
        let acl = &self.lib.acl;
        if self.context.is_null() {
            return;
        }
        let current = Current::enter(acl, self.context);
        // SAFETY: objects this state made, each released once, in its context (current).
        unsafe {
            if let Some(id) = self.model_id {
                (acl.unload)(id);
            }
            if !self.desc.is_null() {
                (acl.destroy_desc)(self.desc);
            }
            for d in self.data {
                if !d.is_null() {
                    (acl.destroy_data_buffer)(d);
                }
            }
            for set in [self.input, self.output] {
                if !set.is_null() {
                    (acl.destroy_dataset)(set);
                }
            }
            for (p, _) in self.memory {
                if !p.is_null() {
                    (acl.free)(p);
                }
            }
            if !self.work.is_null() {
                (acl.free)(self.work);
            }
            if !self.stream.is_null() {
                (acl.destroy_stream)(self.stream);
            }
        }
        drop(current);
        // SAFETY: this state's context, now empty.
        unsafe { (acl.destroy_context)(self.context) };
    }
}
