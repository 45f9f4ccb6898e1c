//! Generated gRPC code (`proto/mxscope/v1`). Only this module, [`crate::wire::convert`]
//! and each crate's `grpc` module may touch these types.

mod generated {
    #![allow(warnings, clippy::all, clippy::pedantic, unreachable_pub)]
    tonic::include_proto!("mxscope.v1");
}

pub use generated::*;
