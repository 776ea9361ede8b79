//! Token helpers the expansions share.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::quote;
use syn::Expr;

/// `tokens` with every span set to `span`.
pub(crate) fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut inner = Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

/// `&factory`, parenthesised only where precedence needs it.
pub(crate) fn borrow(factory: &Expr) -> TokenStream {
    match factory {
        Expr::Path(_)
        | Expr::Field(_)
        | Expr::MethodCall(_)
        | Expr::Call(_)
        | Expr::Index(_)
        | Expr::Paren(_)
        | Expr::Reference(_)
        | Expr::Macro(_)
        | Expr::Try(_) => quote!(&#factory),
        other => quote!(&(#other)),
    }
}
