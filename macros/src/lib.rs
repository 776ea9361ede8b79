//! Procedural macros of [dbscope](https://docs.rs/dbscope): `#[unit_of_work]`.
//!
//! Use them through the `dbscope` crate, which documents them and provides the
//! runtime their expansions call. Everything here works on `proc_macro2`, so
//! the expansions are unit-tested (snapshots, malformed input) in this crate.

mod analysis;
mod await_check;
mod errors;
mod expand;
mod fallback;
mod item;
mod options;

#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Runs the function's body as one unit of work on a session from a factory.
///
/// See the documentation of `dbscope::unit_of_work` for the options and the
/// code this expands to.
#[proc_macro_attribute]
pub fn unit_of_work(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::unit_of_work(args.into(), item.into()).into()
}
