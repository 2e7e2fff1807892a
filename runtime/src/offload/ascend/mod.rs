//! Huawei's Ascend NPUs through AscendCL (CANN's runtime), loaded at run time: the entries
//! (`api`), the library and its process-wide initialization (`library`), and the backend
//! (`backend`): an offline model compiled by ATC from dbrt's dynamic-sequence export, one
//! instance per session over weight memory the sessions share.

pub mod api;
pub mod backend;
pub mod library;
mod state;
