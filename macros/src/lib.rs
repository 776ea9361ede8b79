//! Procedural macros of [dbscope](https://docs.rs/dbscope): `#[unit_of_work]`
//! and `#[detach_ids]`.
//!
//! Use them through the `dbscope` crate, which documents them and provides the
//! runtime their expansions call. Everything here works on `proc_macro2`, so
//! the expansions are unit-tested (snapshots, malformed input) in this crate.

mod await_check;
mod detach_ids;
mod shared;
mod unit_of_work;

#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Runs the function's body as one unit of work on a session from a factory.
///
/// See the documentation of `dbscope::unit_of_work` for the options and the
/// code this expands to.
#[proc_macro_attribute]
pub fn unit_of_work(args: TokenStream, item: TokenStream) -> TokenStream {
    unit_of_work::unit_of_work(args.into(), item.into()).into()
}

/// Checks at compile time that a function crossing a boundary holds no
/// session and carries no row, and turns `#[load]` parameters into ids that
/// are reloaded when the call starts.
///
/// See the documentation of `dbscope::detach_ids` for the options and the
/// code this expands to.
#[proc_macro_attribute]
pub fn detach_ids(args: TokenStream, item: TokenStream) -> TokenStream {
    detach_ids::detach_ids(args.into(), item.into()).into()
}
