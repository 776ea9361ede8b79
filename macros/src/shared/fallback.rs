//! What is emitted when the macro reports errors: the errors, and a stand-in
//! with the signature callers expect, so they see no second wave of errors.

use proc_macro2::TokenStream;
use quote::quote;

use crate::shared::errors::Errors;
use crate::shared::item::FnItem;

/// The function with `sig`, the signature callers see (for `#[unit_of_work]`
/// without the session parameter), an inert body, and `error`.
pub(crate) fn stand_in(
    function: &FnItem,
    sig: syn::Signature,
    error: Option<syn::Error>,
) -> TokenStream {
    let attrs = &function.outer_attrs;
    let vis = &function.vis;
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
