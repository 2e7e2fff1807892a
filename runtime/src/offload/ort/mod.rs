//! onnxruntime through its C API, loaded at run time: the API table (`api`), the library and
//! the process's environment (`library`), and the backends `qnn` and `ort-cpu` (`backend`).

pub mod api;
mod api_info;
mod api_run;
pub mod backend;
pub mod library;
