//! `#[derive(Detached)]`: a job payload (or any struct or enum that crosses a
//! boundary) whose every field is probed like a `#[detach_ids]` parameter,
//! with the error on the field; the type then implements `Detached`, so a
//! `#[detach_ids]` function accepts it.
//!
//! Phases: parse (the item and its `#[detached(crate = ..)]` attribute),
//! analyse (the fields' leaf types, through the containers
//! [`peel`](crate::detach_ids::peel) knows), expand (the probes in a function
//! that is type-checked, never called, and the `Detached` impl).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Fields, Path};

use crate::detach_ids::expand::probe_block;
use crate::detach_ids::peel::{self, Leaf};
use crate::shared::errors::Errors;
use crate::shared::options::{krate_or_default, set_crate, OptionSpec, OptionTable, Written};

/// The options of `#[detached(..)]` on the type.
const OPTIONS: OptionTable<Option<Written<Path>>> = OptionTable {
    options: &[OptionSpec {
        key: "crate",
        parse: set_crate,
    }],
    unknown: |key, valid| format!("unknown option `{key}`; valid options are {valid}"),
};

/// Expands `#[derive(Detached)]`. Never panics: problems become compile
/// errors next to the impl.
pub(crate) fn derive(item: TokenStream) -> TokenStream {
    let input = match syn::parse2::<DeriveInput>(item) {
        Ok(input) => input,
        Err(error) => return error.into_compile_error(),
    };
    let mut errors = Errors::default();
    let mut krate = None;
    for attr in input
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("detached"))
    {
        match attr.meta.require_list() {
            Ok(list) => {
                OPTIONS.parse_args(list.tokens.clone(), &mut krate, &mut errors);
            }
            Err(_) => errors.push(syn::Error::new_spanned(
                attr,
                "write `#[detached(crate = my_crate::dbscope)]`, or leave the attribute out",
            )),
        }
    }
    let krate = krate_or_default(krate);
    let private = quote!(#krate::__private);
    let fields: Vec<&syn::Field> = match &input.data {
        Data::Struct(data) => fields_of(&data.fields).collect(),
        Data::Enum(data) => data
            .variants
            .iter()
            .flat_map(|variant| fields_of(&variant.fields))
            .collect(),
        Data::Union(data) => data.fields.named.iter().collect(),
    };
    let leaves: Vec<Leaf<'_>> = fields
        .iter()
        .flat_map(|field| peel::leaves(&field.ty))
        .collect();
    let probes = probe_block(leaves.iter().map(|leaf| (leaf, "field")), &private);
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let check = format_ident!("__dbscope_detached_fields_of_{}", name);
    let error = errors.combined().map(syn::Error::into_compile_error);
    quote! {
        #error
        impl #impl_generics #krate::Detached for #name #ty_generics #where_clause {}

        impl #impl_generics #name #ty_generics #where_clause {
            /// Type-checked, never called: probes every field.
            #[allow(dead_code, non_snake_case, clippy::all)]
            #[doc(hidden)]
            fn #check() {
                #probes
            }
        }
    }
}

/// The fields of a struct or variant.
fn fields_of(fields: &Fields) -> impl Iterator<Item = &syn::Field> {
    fields.iter()
}
