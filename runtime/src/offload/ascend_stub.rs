//! The `ascend` module of a build without the `ascend` feature: the same interface, and the
//! backend never attaches (a session asking for it falls back to the CPU, recorded, or fails
//! under `FallbackPolicy::Never`), so that apps which never use Ascend carry none of the code.

pub mod library {
    use std::path::Path;

    pub const ASCENDCL_LIB_ENV: &str = "DBRT_ASCENDCL_LIB";

    /// Uninhabited: nothing of AscendCL exists in this build.
    pub enum Library {}

    pub fn library(_: Option<&Path>) -> Result<&'static Library, String> {
        Err("this build of dbrt has no Ascend support (its `ascend` feature is off)".into())
    }
}

pub mod backend {
    use super::library::Library;
    use crate::offload::device::Message;

    #[allow(dead_code)] // made by the real backend only
    #[derive(Debug)]
    pub enum AttachError {
        Unavailable(String),
        Invalid(String),
    }

    pub enum AscendModel {}
    pub enum AscendState {}

    impl AscendModel {
        pub fn new(
            lib: &'static Library,
            _: i32,
            _: &[u8],
            _: Vec<usize>,
            _: usize,
        ) -> Result<AscendModel, AttachError> {
            match *lib {}
        }
    }

    impl AscendState {
        pub fn new(model: &AscendModel, _: &[u8]) -> Result<AscendState, AttachError> {
            match *model {}
        }

        pub fn run(
            &mut self,
            _: &AscendModel,
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
