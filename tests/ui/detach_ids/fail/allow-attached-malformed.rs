//! `#[allow_attached]` is a flag, with an optional `reason = ".."`.
use dbscope::detach_ids;

#[detach_ids]
fn with_value(#[allow_attached = "yes"] id: i32) {}

#[detach_ids]
fn unknown(#[allow_attached(because = "x")] id: i32) {}

fn main() {}
