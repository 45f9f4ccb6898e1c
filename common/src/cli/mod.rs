//! What both command lines (`mxscope`, `mxscope-worker`) share: one
//! definition per flag, setting and unit.

pub mod args;
pub mod config;
pub mod docs;
