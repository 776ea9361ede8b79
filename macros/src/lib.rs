//! Procedural macros of [dbscope](https://docs.rs/dbscope): `#[unit_of_work]`,
//! `#[detach_ids]`, `#[checked]` and `#[derive(Detached)]`.
//!
//! Use them through the `dbscope` crate, which documents them and provides the
//! runtime their expansions call. Everything here works on `proc_macro2`, so
//! the expansions are unit-tested (snapshots, malformed input) in this crate.

mod await_check;
mod checked;
mod detach_ids;
mod detached;
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

/// Applies the await rule of units of work to hand-held async code: an
/// `.await` on work that does not use a connection the function holds is a
/// compile error.
///
/// See the documentation of `dbscope::checked`.
#[proc_macro_attribute]
pub fn checked(args: TokenStream, item: TokenStream) -> TokenStream {
    checked::checked(args.into(), item.into()).into()
}

/// Checks every field of a payload type as `#[detach_ids]` checks
/// parameters (no session, connection or row, with the error on the field)
/// and implements `Detached` for it.
///
/// See the documentation of `dbscope::Detached`.
#[proc_macro_derive(Detached, attributes(detached))]
pub fn derive_detached(item: TokenStream) -> TokenStream {
    detached::derive(item.into()).into()
}
