//! `#[checked]`: the await rule of units of work for hand-held async code (a
//! handler, a task, any `async fn` that checks connections out itself).
//!
//! Phases: [`analyse`] (the connection parameters), the check (the shared
//! [`await_check`](crate::await_check) in hand-held mode: sessions are the
//! parameters and what the body checks out, open until dropped, consumed or
//! out of scope), and the expansion: the function as written, without its
//! `#[session]` markers, plus one error per offending `.await`.

mod analyse;

use proc_macro2::TokenStream;
use quote::quote;

use crate::await_check::{self, AwaitPolicy, Sessions};
use crate::shared::errors::Errors;
use crate::shared::fallback;
use crate::shared::item::{FnItem, MacroName};

/// How `#[checked]` names itself in errors about the item.
const CHECKED: MacroName = MacroName {
    name: "checked",
    goes_on: "an `async fn`",
    advice: "put it on each `async fn` or handler that checks connections out",
};

/// Expands `#[checked] item`. Never panics: every problem becomes a compile
/// error next to the function as written.
pub(crate) fn checked(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    if !args.is_empty() {
        errors.push(syn::Error::new_spanned(
            &args,
            "`#[checked]` takes no options; write `#[checked]`",
        ));
    }
    let function = match FnItem::parse(item.clone(), &CHECKED) {
        Ok(function) => function,
        Err(error) => {
            errors.push(error);
            return fallback::unparsed(item, errors);
        }
    };
    if function.sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            function.sig.fn_token,
            "`#[checked]` checks the `.await`s of an `async fn`, and this one is not `async`; \
             remove the attribute, or make the function `async`",
        ));
    }
    let params = analyse::session_params(&function.sig);
    await_check::check(
        &function.block,
        Sessions::HandHeld { params },
        AwaitPolicy::SessionOnly,
        &mut errors,
    );
    let sig = analyse::without_markers(&function.sig);
    let attrs = &function.outer_attrs;
    let inner_attrs = &function.inner_attrs;
    let vis = &function.vis;
    let stmts = &function.block.stmts;
    let error = errors.combined().map(syn::Error::into_compile_error);
    quote! {
        #(#attrs)*
        #vis #sig {
            #(#inner_attrs)*
            #(#stmts)*
        }
        #error
    }
}
