//! `#[detach_ids]`: a function that crosses a boundary (a spawned task, a
//! queued job, a long async flow) holds no session and carries no row.
//!
//! Phases: [`parse`] (`factory`, `crate`, through one table), [`analyse`]
//! (parameter markers, `#[load]` parameters, which types to probe, with
//! [`peel`] taking containers down to leaf types), [`check`] (signatures it
//! cannot go on, `#[load]` shapes), [`expand`] (the probes, the load unit,
//! the caller-facing signature).

mod analyse;
mod check;
pub(crate) mod expand;
mod parse;
pub(crate) mod peel;

use proc_macro2::TokenStream;

use crate::shared::errors::Errors;
use crate::shared::fallback;
use crate::shared::item::{FnItem, MacroName};

/// How `#[detach_ids]` names itself in errors about the item.
const DETACH_IDS: MacroName = MacroName {
    name: "detach_ids",
    goes_on: "a function",
    advice: "put it on each function or method that crosses a boundary (a spawned task, a \
             queued job, a long async flow)",
};

/// Expands `#[detach_ids(args)] item`. Never panics: every problem becomes
/// a compile error next to a caller-facing stand-in of the function.
pub(crate) fn detach_ids(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let raw = parse::RawOptions::parse(args, &mut errors);
    let function = match FnItem::parse(item.clone(), &DETACH_IDS) {
        Ok(function) => function,
        Err(error) => {
            errors.push(error);
            return fallback::unparsed(item, errors);
        }
    };
    let options = raw.build();
    check::signature(&function.sig, &mut errors);
    let analysis = analyse::analyse(&function, &mut errors);
    check::loads(&function.sig, &analysis, &options, &mut errors);
    let sig = expand::caller_signature(&function, &analysis.loads, &options);
    match errors.combined() {
        None => expand::generate(&function, sig, &analysis, &options),
        Some(error) => fallback::stand_in(&function, sig, Some(error)),
    }
}
