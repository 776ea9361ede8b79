//! Analyse phase of `#[checked]`: which parameters are connections.

use quote::ToTokens;
use syn::{FnArg, Pat, Signature};

use crate::await_check::is_connection_like;

/// Whether `attr` is the `#[session]` marker.
fn is_session_marker(attr: &syn::Attribute) -> bool {
    attr.path().is_ident("session")
}

/// The names of the parameters that hold a connection: marked `#[session]`,
/// or of a type whose name ends in `Connection` (`&mut PgConnection`,
/// `AsyncPooledConnection<..>`, `PooledConnection<..>`) or is `Session`.
pub(crate) fn session_params(sig: &Signature) -> Vec<String> {
    sig.inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(param)
                if param.attrs.iter().any(is_session_marker) || is_connection_like(&param.ty) =>
            {
                Some(match &*param.pat {
                    Pat::Ident(ident) => ident.ident.to_string(),
                    other => other.to_token_stream().to_string(),
                })
            }
            _ => None,
        })
        .collect()
}

/// `sig` without `#[session]` markers on its parameters.
pub(crate) fn without_markers(sig: &Signature) -> Signature {
    let mut sig = sig.clone();
    for input in &mut sig.inputs {
        if let FnArg::Typed(param) = input {
            param.attrs.retain(|attr| !is_session_marker(attr));
        }
    }
    sig
}
