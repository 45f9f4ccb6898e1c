//! The names mxscope reads and writes: domain names and domain lists
//! ([`domain`]), and the name a probe announces in `EHLO` ([`ehlo`]).

pub mod domain;
pub mod ehlo;
