//! Check phase of `#[unit_of_work]`: signatures a unit of work cannot have,
//! a session the function's flavour cannot drive, and the `.await`s the
//! session's policy forbids (see [`crate::await_check`]).

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::visit::Visit;
use syn::{ReturnType, Type};

use super::analyse::Analysis;
use crate::await_check::{self, AwaitPolicy, Sessions};
use crate::shared::errors::Errors;
use crate::shared::item::FnItem;

/// Rejects `const`, `extern`, variadic functions and return types a unit of
/// work cannot have.
pub(crate) fn signature(sig: &syn::Signature, errors: &mut Errors) {
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new(
            constness.span,
            "`#[unit_of_work]` cannot go on a `const fn`: a unit of work opens a transaction at \
             run time; remove `const`",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            "`#[unit_of_work]` cannot go on an `extern` function; remove the ABI and call the \
             unit of work from a separate `extern` function",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new(
            variadic.dots.spans[0],
            "`#[unit_of_work]` does not take variadic parameters; remove `...`",
        ));
    }
    match &sig.output {
        ReturnType::Type(_, ty) => check_no_impl_trait(ty, errors),
        ReturnType::Default => errors.push(syn::Error::new(
            sig.paren_token.span.close(),
            "a `#[unit_of_work]` function must return `Result<T, E>`; add `-> Result<(), E>` \
             (or another `Ok` type), with `E: From<dbscope::Error>`",
        )),
    }
}

/// Rejects a diesel-async session in a plain `fn`, and every `.await` of the
/// body that the session's policy forbids.
/// `factory` is the unit's factory expression, when the options named one.
pub(crate) fn body(
    function: &FnItem,
    analysis: &Analysis<'_>,
    factory: Option<&syn::Expr>,
    errors: &mut Errors,
) {
    let (Some(session), Some(policy)) = (&analysis.session, analysis.policy) else {
        return;
    };
    if policy == AwaitPolicy::SessionOnly && function.sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            session.ty,
            format!(
                "session `{}` is an async connection (diesel-async), whose queries are \
                 awaited: make this an `async fn`, or take a blocking connection",
                session.name
            ),
        ));
    }
    let sessions = Sessions::Unit {
        name: &session.name,
        factory: factory.map(|factory| factory.to_token_stream().to_string()),
    };
    await_check::check(&function.block, sessions, policy, errors);
}

/// `impl Trait` cannot be written as a closure's return type, which the body
/// becomes.
fn check_no_impl_trait(ty: &Type, errors: &mut Errors) {
    struct FindImpl(Option<TokenStream>);
    impl<'ast> Visit<'ast> for FindImpl {
        fn visit_type_impl_trait(&mut self, node: &'ast syn::TypeImplTrait) {
            if self.0.is_none() {
                self.0 = Some(quote!(#node));
            }
        }
    }
    let mut finder = FindImpl(None);
    finder.visit_type(ty);
    if let Some(found) = finder.0 {
        errors.push(syn::Error::new_spanned(
            found,
            "`#[unit_of_work]` cannot return `impl Trait` (the body becomes a closure, whose \
             return type must be named); name the type, or box it",
        ));
    }
}
