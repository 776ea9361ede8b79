//! Expand phase of `#[unit_of_work]`: the generated glue around the
//! runtime's `run_unit*` functions, and the signature callers see.

use proc_macro2::{Delimiter, Group, Span, TokenStream};
use quote::quote;
use syn::spanned::Spanned;
use syn::{FnArg, Ident, Pat, PatIdent, Type};

use super::analyse::{is_session_marker, SessionParam};
use super::parse::Options;
use crate::shared::flavour::Flavour;
use crate::shared::item::FnItem;
use crate::shared::tokens::{borrow, respan};

/// The function with the session parameter removed, its body run as a unit
/// of work.
pub(crate) fn generate(
    function: &FnItem,
    flavour: Flavour,
    session: &SessionParam<'_>,
    ret: &Type,
    options: &Options,
) -> TokenStream {
    let krate = &options.krate;
    let private = quote!(#krate::__private);
    let factory_var = Ident::new(
        "__uow_factory",
        Span::mixed_site().located_at(options.factory.span()),
    );
    let options_const = options_const(function, options, &private);

    let factory = borrow(&options.factory);
    // Backend checks: calls placed wholly on the option, so an unmet bound
    // is reported there.
    let check = |name: &str, span: Span| {
        let function = Ident::new(name, span);
        let path = respan(quote!(#private::#function), span);
        // Bound in its own block, so user code never sees it; the argument
        // sits on the option so an unmet bound is reported there.
        let argument = Ident::new("__uow_backend", span);
        let mut call = Group::new(Delimiter::Parenthesis, quote!(#argument));
        call.set_span(span);
        quote!({
            let #argument = #factory_var;
            #path #call;
        })
    };
    let mut checks = Vec::new();
    // The compile-time backend checks read a blocking `SessionSource`; an
    // async factory's backend refuses options it cannot honour at `BEGIN`.
    let blocking = flavour != Flavour::Native;
    if let (Some((_, span)), true) = (options.sqlite_lock, blocking) {
        checks.push(check("require_sqlite_locking", span));
    }
    if let (Some((level, span)), true) = (options.isolation, blocking) {
        if !level.is_serializable() {
            checks.push(check("require_isolation_levels", span));
        }
    }

    let runner_name = match (flavour, options.retry.is_some()) {
        (Flavour::Sync, false) => "unit",
        (Flavour::Sync, true) => "unit_retrying",
        (Flavour::Async, false) => "unit_async",
        (Flavour::Async, true) => "unit_async_retrying",
        (Flavour::Native, false) => "run_unit_native",
        (Flavour::Native, true) => "run_unit_native_retrying",
    };
    let runner_name = Ident::new(runner_name, Span::call_site());
    let runner = respan(quote!(#private::#runner_name), ret.span());
    let await_suffix = match flavour {
        Flavour::Sync => quote!(),
        Flavour::Async | Flavour::Native => respan(quote!(.await), ret.span()),
    };
    // Native: an async closure, so the body's future may borrow the
    // connection the runtime lends it for the length of the transaction.
    let asyncness = (flavour == Flavour::Native).then(|| quote!(async));

    // The `let` converts `&mut Session<C>` to the declared type by deref
    // coercion; the session variable is placed on the declared type so a
    // mismatch is reported there.
    let session_attrs = &session.attrs;
    let session_pat = session.pat;
    let session_ty = session.ty;
    // The closure's parameter takes the session parameter's own name when it
    // is a plain identifier, so borrow errors name it (`conn`), and sits on
    // the declared type so a mismatch in the `let` is reported there.
    let (session_var, session_value, allow) = match session.pat {
        Pat::Ident(PatIdent {
            by_ref: None,
            mutability: None,
            subpat: None,
            ident,
            ..
        }) if !ident.to_string().starts_with('_') => {
            let mut value = ident.clone();
            value.set_span(session_ty.span());
            (ident.clone(), value, None)
        }
        pat => (
            Ident::new("__uow_session", Span::mixed_site()),
            Ident::new(
                "__uow_session",
                Span::mixed_site().located_at(session_ty.span()),
            ),
            // `_conn` says "unused on purpose"; binding it is not a use.
            matches!(pat, Pat::Ident(_))
                .then(|| quote!(#[allow(clippy::no_effect_underscore_binding)])),
        ),
    };
    let block = &function.block;
    let body = quote! {
        #asyncness |#session_var| -> #ret {
            #(#session_attrs)*
            #allow
            let #session_pat: #session_ty = #session_value;
            #block
        }
    };
    // The entry point is generic over the return type with a bound
    // (`UnitResult`) that names the problem. The call's path and parentheses
    // are placed on the return type, so a function that does not return a
    // `Result` gets one error, there.
    let mut arguments = Group::new(
        Delimiter::Parenthesis,
        quote!(#factory_var, &__UOW_OPTIONS, #body),
    );
    arguments.set_span(ret.span());

    let attrs = &function.outer_attrs;
    let inner_attrs = &function.inner_attrs;
    let vis = &function.vis;
    let sig = caller_signature(function, &[session.index]);
    let twin = options.joinable.then(|| {
        joined_twin(
            function,
            flavour,
            session.index,
            &body,
            &options_const,
            &private,
        )
    });

    quote! {
        #(#attrs)*
        #vis #sig {
            #(#inner_attrs)*
            #options_const
            let #factory_var = #factory;
            #(#checks)*
            #runner #arguments #await_suffix
        }
        #twin
    }
}

/// `name_in`: the same body run in a savepoint of the caller's transaction,
/// on the connection the caller passes where the session parameter was.
fn joined_twin(
    function: &FnItem,
    flavour: Flavour,
    session_index: usize,
    body: &TokenStream,
    options_const: &TokenStream,
    private: &TokenStream,
) -> TokenStream {
    let name = function.sig.ident.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name);
    let joined = Ident::new("__uow_joined", Span::mixed_site());
    let mut sig = function.sig.clone();
    sig.ident = Ident::new(&format!("{name}_in"), function.sig.ident.span());
    // Callable from a unit's synchronous body: the async flavour's twin runs
    // on the caller's connection without waiting for anything.
    if flavour == Flavour::Async {
        sig.asyncness = None;
    }
    sig.variadic = None;
    for (index, input) in sig.inputs.iter_mut().enumerate() {
        match input {
            FnArg::Receiver(receiver) => receiver.attrs.retain(|attr| !is_session_marker(attr)),
            FnArg::Typed(param) => {
                param.attrs.retain(|attr| !is_session_marker(attr));
                if index == session_index {
                    param.attrs.clear();
                    *param.pat = Pat::Ident(PatIdent {
                        attrs: Vec::new(),
                        by_ref: None,
                        mutability: None,
                        ident: joined.clone(),
                        subpat: None,
                    });
                }
            }
        }
    }
    let call = match flavour {
        Flavour::Native => quote!(#private::join_unit_native(#joined, &__UOW_OPTIONS, #body).await),
        Flavour::Sync | Flavour::Async => {
            quote!(#private::join_unit(#joined, &__UOW_OPTIONS, #body))
        }
    };
    let doc = format!(
        "[`{name}`] inside its caller's transaction: the same body, run in a savepoint on \
         the connection passed where [`{name}`] takes its session from the factory. Its `Err` \
         rolls back only its own work; its `Ok` commits with the caller's transaction. \
         Generated by `#[unit_of_work(joinable)]`."
    );
    // Docs stay on the unit itself; `cfg`s and lints come along.
    let attrs = function
        .outer_attrs
        .iter()
        .filter(|attr| !attr.path().is_ident("doc"));
    let inner_attrs = &function.inner_attrs;
    let vis = &function.vis;
    quote! {
        #(#attrs)*
        #[doc = #doc]
        #[allow(unused_variables, clippy::used_underscore_binding)]
        #vis #sig {
            #(#inner_attrs)*
            #options_const
            #call
        }
    }
}

/// `const __UOW_OPTIONS: UnitOptions = UnitOptions::new("module::name")...;`
fn options_const(function: &FnItem, options: &Options, private: &TokenStream) -> TokenStream {
    let name = function.sig.ident.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name);
    let duration = quote!(#private::core::time::Duration);
    let mut builders = Vec::new();
    if let Some((level, _)) = options.isolation {
        let variant = level.variant();
        builders.push(quote!(.isolation(#private::Isolation::#variant)));
    }
    if options.read_only {
        builders.push(quote!(.read_only(true)));
    }
    if let Some((lock, _)) = options.sqlite_lock {
        let variant = lock.variant();
        builders.push(quote!(.sqlite_lock(#private::SqliteLock::#variant)));
    }
    if let Some(retry) = &options.retry {
        let attempts = retry.attempts;
        let backoff = retry.backoff.map(|(initial, max)| {
            quote!(.backoff(#duration::from_millis(#initial), #duration::from_millis(#max)))
        });
        builders.push(quote!(.retry(#private::RetryPolicy::attempts(#attempts) #backoff)));
    }
    if let Some(budget) = options.budget_ms {
        builders.push(quote!(.budget(#duration::from_millis(#budget))));
    }
    if options.requires_new {
        builders.push(quote!(.requires_new(true)));
    }
    quote! {
        const __UOW_OPTIONS: #private::UnitOptions = #private::UnitOptions::new(
            ::core::concat!(::core::module_path!(), "::", #name)
        ) #(#builders)*;
    }
}

/// The signature callers see: without the session parameters and without
/// `#[session]` markers or a variadic.
pub(crate) fn caller_signature(function: &FnItem, remove: &[usize]) -> syn::Signature {
    let mut sig = function.sig.clone();
    sig.inputs = sig
        .inputs
        .into_pairs()
        .enumerate()
        .filter(|(index, _)| !remove.contains(index))
        .map(|(_, pair)| pair)
        .collect();
    for input in &mut sig.inputs {
        let attrs = match input {
            FnArg::Receiver(receiver) => &mut receiver.attrs,
            FnArg::Typed(param) => &mut param.attrs,
        };
        attrs.retain(|attr| !is_session_marker(attr));
    }
    sig.variadic = None;
    sig
}
