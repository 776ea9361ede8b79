//! Expand phase of `#[detach_ids]`: the compile-time probes, the short unit
//! of work that loads `#[load]` parameters before the body runs, and the
//! signature callers see.

use proc_macro2::{Delimiter, Group, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, Pat, Signature, Type};

use super::analyse::{is_allow_marker, is_load_marker, Analysis, Load, Position};
use super::parse::Options;
use super::peel::Leaf;
use crate::shared::flavour::Flavour;
use crate::shared::item::FnItem;
use crate::shared::tokens::{borrow, respan};

/// The function with the probes and the load unit in front of its body.
pub(crate) fn generate(
    function: &FnItem,
    sig: Signature,
    analysis: &Analysis<'_>,
    options: &Options,
) -> TokenStream {
    let krate = &options.krate;
    let private = quote!(#krate::__private);
    let probes = probes(analysis, &private);
    let loads = match (&options.factory, analysis.ret) {
        (Some(factory), Some(ret)) if !analysis.loads.is_empty() => {
            load_rows(function, analysis, factory, ret, &private)
        }
        _ => TokenStream::new(),
    };
    let attrs = &function.outer_attrs;
    let inner_attrs = &function.inner_attrs;
    let vis = &function.vis;
    let stmts = &function.block.stmts;
    quote! {
        #(#attrs)*
        #vis #sig {
            #(#inner_attrs)*
            #probes
            #loads
            #(#stmts)*
        }
    }
}

/// The probes of every parameter and return type, in a block of their own.
fn probes(analysis: &Analysis<'_>, private: &TokenStream) -> TokenStream {
    probe_block(
        analysis.probes.iter().map(|site| {
            let verdict = match site.position {
                Position::Param => "param",
                Position::Return => "returned",
            };
            (&site.leaf, verdict)
        }),
        private,
    )
}

/// One statement per leaf type:
/// `(&&&&&&&&&&&Probe::<Leaf>::new()).probe().verdict();` with every token
/// placed on the leaf, so an error lands there; in a block that imports the
/// probe traits. Empty when there is nothing to probe.
pub(crate) fn probe_block<'a>(
    leaves: impl Iterator<Item = (&'a Leaf<'a>, &'static str)>,
    private: &TokenStream,
) -> TokenStream {
    let calls: Vec<TokenStream> = leaves
        .map(|(leaf, verdict)| {
            let span = leaf.span;
            let ty = leaf.ty;
            let verdict = Ident::new(verdict, span);
            let probe = respan(quote!(#private::detach::Probe), span);
            let glue = respan(quote!(&&&&&&&&&&&), span);
            quote_spanned! {span=>
                (#glue #probe::<#ty>::new()).probe().#verdict();
            }
        })
        .collect();
    if calls.is_empty() {
        return TokenStream::new();
    }
    quote! {
        {
            #[allow(unused_imports)]
            use #private::detach::probes::*;
            #(#calls)*
        }
    }
}

/// Loads every `#[load]` parameter in one short unit of work and shadows the
/// ids with the rows; a failure returns early through the declared `Result`.
fn load_rows(
    function: &FnItem,
    analysis: &Analysis<'_>,
    factory: &syn::Expr,
    ret: &Type,
    private: &TokenStream,
) -> TokenStream {
    let name = function.sig.ident.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name);
    let options = Ident::new("__DETACH_LOAD", Span::mixed_site());
    let factory_var = Ident::new(
        "__detach_factory",
        Span::mixed_site().located_at(factory.span()),
    );
    let conn = Ident::new("__detach_conn", Span::mixed_site());
    let rows = Ident::new("__detach_rows", Span::mixed_site());
    let error = Ident::new("__detach_error", Span::mixed_site());
    let factory = borrow(factory);

    let patterns = analysis.loads.iter().map(|load| {
        let ident = load.ident;
        let mutability = load.mutable.then(|| quote!(mut));
        quote!(#mutability #ident)
    });
    let types = analysis.loads.iter().map(|load| load.ty);
    let calls = analysis.loads.iter().map(|load| {
        // The whole call is placed on the row type, so "not a row" is
        // reported there.
        let span = load.ty.span();
        let mut ident = load.ident.clone();
        ident.set_span(span);
        let conn = Ident::new("__detach_conn", Span::mixed_site().located_at(span));
        let loader = respan(quote!(#private::load_by_id), span);
        let mut arguments = Group::new(
            Delimiter::Parenthesis,
            quote_spanned!(span=> #conn, &#ident),
        );
        arguments.set_span(span);
        quote_spanned!(span=> #loader #arguments ?)
    });
    let loader = match analysis.flavour {
        Flavour::Sync => quote!(#private::detach::load),
        Flavour::Async | Flavour::Native => quote!(#private::detach::load_async),
    };
    let await_suffix = match analysis.flavour {
        Flavour::Sync => quote!(),
        Flavour::Async | Flavour::Native => quote!(.await),
    };
    // Placed on the return type, so a non-`Result` return type is reported there.
    let fail = {
        let span = ret.span();
        let path = respan(quote!(#private::detach::fail), span);
        let error = Ident::new("__detach_error", Span::mixed_site().located_at(span));
        let mut arguments = Group::new(Delimiter::Parenthesis, quote!(#error));
        arguments.set_span(span);
        quote!(#path #arguments)
    };
    quote! {
        const #options: #private::UnitOptions = #private::UnitOptions::new(
            ::core::concat!(::core::module_path!(), "::", #name, "#load")
        )
        .read_only(true)
        .retry(#private::RetryPolicy::attempts(3));
        let #factory_var = #factory;
        let (#(#patterns,)*): (#(#types,)*) = match #loader(#factory_var, &#options, |#conn| {
            ::core::result::Result::Ok((#(#calls,)*))
        }) #await_suffix {
            ::core::result::Result::Ok(#rows) => #rows,
            ::core::result::Result::Err(#error) => return #fail,
        };
    }
}

/// The signature callers see: `#[load] app: App` becomes `app: Id<App>`, and
/// the `#[load]` / `#[allow_attached]` markers and a variadic are removed.
pub(crate) fn caller_signature(
    function: &FnItem,
    loads: &[Load<'_>],
    options: &Options,
) -> Signature {
    let krate = &options.krate;
    let mut sig = function.sig.clone();
    for (index, input) in sig.inputs.iter_mut().enumerate() {
        let attrs = match input {
            FnArg::Receiver(receiver) => &mut receiver.attrs,
            FnArg::Typed(param) => {
                if let Some(load) = loads.iter().find(|load| load.index == index) {
                    let row = load.ty;
                    let span = row.span();
                    let id = respan(quote!(#krate::Id), span);
                    let ty = match &load.key {
                        Some(key) => quote_spanned!(span=> #id<#row, #key>),
                        None => quote_spanned!(span=> #id<#row>),
                    };
                    *param.ty = Type::Verbatim(ty);
                    if let Pat::Ident(ident) = &mut *param.pat {
                        // `mut` goes on the row's binding, not the id's.
                        ident.mutability = None;
                    }
                }
                &mut param.attrs
            }
        };
        attrs.retain(|attr| !is_load_marker(attr) && !is_allow_marker(attr));
    }
    sig.variadic = None;
    sig
}
