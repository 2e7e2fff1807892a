//! The `ort` module of a build without the `onnxruntime` feature: the same interface, and no
//! backend attaches (a session asking for one falls back to the CPU, recorded, or fails under
//! `FallbackPolicy::Never`), so that apps which never offload carry none of the code.

pub mod library {
    pub const ONNXRUNTIME_LIB_ENV: &str = "DBRT_ONNXRUNTIME_LIB";
    pub const QNN_EP_LIB_ENV: &str = "DBRT_QNN_EP_LIB";
}

pub mod backend {
    use std::path::Path;

    use crate::offload::device::Message;

    pub enum Provider {
        Qnn,
        Cpu,
    }

    #[allow(dead_code)] // read by the real backends only
    pub struct Libraries<'a> {
        pub onnxruntime: Option<&'a Path>,
        pub qnn: Option<&'a Path>,
    }

    /// Uninhabited: nothing of onnxruntime exists in this build.
    pub enum Runtime {}
    pub enum Device {}
    pub enum OrtModel {}
    pub enum OrtState {}

    #[allow(dead_code)] // made by the real backends only
    pub enum CompileError {
        Backend(String),
        Graph(String),
    }

    pub fn attach_runtime(
        _: Provider,
        _: &Libraries<'_>,
    ) -> Result<(&'static Runtime, Option<Device>), String> {
        Err(
            "this build of dbrt has no onnxruntime support (its `onnxruntime` feature is off)"
                .into(),
        )
    }

    impl OrtModel {
        pub fn new(
            rt: &'static Runtime,
            _: Option<&Device>,
            _: &[(usize, Vec<u8>)],
            _: usize,
            _: usize,
        ) -> Result<OrtModel, CompileError> {
            match *rt {}
        }
    }

    impl OrtState {
        pub fn new(model: &OrtModel) -> Result<OrtState, String> {
            match *model {}
        }

        pub fn run(
            &mut self,
            _: &OrtModel,
            _: usize,
            _: &mut [f32],
            _: usize,
            _: usize,
            _: &mut Message,
        ) -> Result<(), ()> {
            match *self {}
        }
    }
}
