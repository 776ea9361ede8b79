//! Database sessions that live exactly as long as the work that needs them.
//!
//! See the README for a tour.
pub use dbscope_runtime::*;

pub use dbscope_macros::unit_of_work;
