//! `#[unit_of_work]`: the function's body runs as one unit of work on a
//! session from a factory.
//!
//! Phases: [`parse`] (the options, through one table), [`analyse`] (the
//! session parameter, its await policy, the flavour, the return type),
//! [`check`] (signatures a unit cannot have, forbidden `.await`s), [`expand`]
//! (the glue around the runtime's runner).

mod analyse;
mod check;
mod expand;
mod parse;

use proc_macro2::TokenStream;

use crate::shared::errors::Errors;
use crate::shared::fallback;
use crate::shared::item::{FnItem, MacroName};

/// How `#[unit_of_work]` names itself in errors about the item.
const UNIT_OF_WORK: MacroName = MacroName {
    name: "unit_of_work",
    goes_on: "a function that takes a session",
    advice: "put it on each method that does database work",
};

/// Expands `#[unit_of_work(args)] item`. Never panics: every problem becomes
/// a compile error next to a caller-facing stand-in of the function.
pub(crate) fn unit_of_work(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let raw = parse::RawOptions::parse(args, &mut errors);
    let function = match FnItem::parse(item.clone(), &UNIT_OF_WORK) {
        Ok(function) => function,
        Err(error) => {
            errors.push(error);
            return fallback::unparsed(item, errors);
        }
    };
    let options = raw.build(&mut errors);
    check::signature(&function.sig, &mut errors);
    let analysis = analyse::analyse(&function, &mut errors);
    let factory = options.as_ref().map(|options| &options.factory);
    check::body(&function, &analysis, factory, &mut errors);
    match (errors.combined(), options, &analysis.session, analysis.ret) {
        (None, Some(options), Some(session), Some(ret)) => {
            expand::generate(&function, analysis.flavour, session, ret, &options)
        }
        (error, ..) => fallback::stand_in(
            &function,
            expand::caller_signature(&function, &analysis.session_indices),
            error,
        ),
    }
}
