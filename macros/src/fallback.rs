//! What is emitted when the macro reports errors: the errors, and a stand-in
//! with the signature callers expect, so they see no second wave of errors.

use proc_macro2::TokenStream;
use quote::quote;

use crate::errors::Errors;
use crate::expand::caller_signature;
use crate::item::UnitFn;

/// The function as callers will see it (session parameters removed), with an
/// inert body, plus `error`.
pub(crate) fn stand_in(
    function: &UnitFn,
    remove: &[usize],
    error: Option<syn::Error>,
) -> TokenStream {
    let attrs = &function.outer_attrs;
    let vis = &function.vis;
    let sig = caller_signature(function, remove);
    let error = error.map(syn::Error::into_compile_error);
    quote! {
        #(#attrs)*
        #[allow(unused_variables, unused_mut, clippy::empty_loop)]
        #vis #sig {
            #error
            loop {}
        }
    }
}

/// The item unchanged plus the errors, for input that is not a function.
pub(crate) fn unparsed(item: TokenStream, errors: Errors) -> TokenStream {
    let error = errors.combined().map(syn::Error::into_compile_error);
    quote! {
        #item
        #error
    }
}
