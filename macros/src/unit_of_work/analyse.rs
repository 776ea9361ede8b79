//! Analyse phase of `#[unit_of_work]`: which parameter is the session, which
//! `.await`s it allows, how the body runs, what the function returns. The
//! result is a small IR that points back into the syn nodes for spans.

use quote::ToTokens;
use syn::{Attribute, FnArg, Pat, PatType, ReturnType, Type};

use crate::await_check::AwaitPolicy;
use crate::shared::errors::Errors;
use crate::shared::flavour::Flavour;
use crate::shared::item::FnItem;

/// The parameter that receives the session.
pub(crate) struct SessionParam<'a> {
    /// Its position in the signature's inputs.
    pub(crate) index: usize,
    pub(crate) pat: &'a Pat,
    pub(crate) ty: &'a Type,
    /// Its attributes other than `#[session]`, moved onto the `let` that binds it.
    pub(crate) attrs: Vec<&'a Attribute>,
    /// How error messages name it: `conn`, or the pattern as written.
    pub(crate) name: String,
    /// Marked `#[session(async)]`: an async connection whatever its type is
    /// called (a type alias or a generic parameter).
    pub(crate) async_marker: bool,
}

/// What the checks and the expansion need to know about the function.
pub(crate) struct Analysis<'a> {
    /// How the body runs: [`Flavour::Native`] when the session's policy is
    /// [`AwaitPolicy::SessionOnly`], else as the signature says.
    pub(crate) flavour: Flavour,
    /// Which `.await`s the session allows, when there is a session.
    pub(crate) policy: Option<AwaitPolicy>,
    /// The session parameter, when there is exactly one.
    pub(crate) session: Option<SessionParam<'a>>,
    /// Positions of every parameter taken for a session (also when there are
    /// too many), removed from the caller-facing signature.
    pub(crate) session_indices: Vec<usize>,
    /// The declared return type, if any.
    pub(crate) ret: Option<&'a Type>,
}

/// Whether `attr` is the `#[session]` marker.
pub(crate) fn is_session_marker(attr: &Attribute) -> bool {
    attr.path().is_ident("session")
}

/// Whether `attr` is `#[session(async)]`.
fn is_async_marker(attr: &Attribute) -> bool {
    is_session_marker(attr)
        && attr
            .meta
            .require_list()
            .is_ok_and(|list| list.tokens.to_string() == "async")
}

/// Analyses `function`, pushing every problem with its session parameter to
/// `errors`.
pub(crate) fn analyse<'a>(function: &'a FnItem, errors: &mut Errors) -> Analysis<'a> {
    let sig = &function.sig;
    let ret = match &sig.output {
        ReturnType::Type(_, ty) => Some(&**ty),
        ReturnType::Default => None,
    };
    let (session, session_indices) = find_session(function, errors);
    let policy = session.as_ref().map(|session| {
        if session.async_marker {
            AwaitPolicy::SessionOnly
        } else {
            AwaitPolicy::for_session(session.ty)
        }
    });
    let flavour = match policy {
        Some(AwaitPolicy::SessionOnly) => Flavour::Native,
        _ => Flavour::of(sig),
    };
    Analysis {
        flavour,
        policy,
        session,
        session_indices,
        ret,
    }
}

/// Finds the session parameter: the ones marked `#[session]` if any are, else
/// the ones whose type is `&mut ..Connection` or `&mut Session<..>`.
fn find_session<'a>(
    function: &'a FnItem,
    errors: &mut Errors,
) -> (Option<SessionParam<'a>>, Vec<usize>) {
    let mut marked = Vec::new();
    let mut looks_like = Vec::new();
    let mut receiver_marked = false;
    for (index, input) in function.sig.inputs.iter().enumerate() {
        match input {
            FnArg::Receiver(receiver) => {
                if let Some(attr) = receiver.attrs.iter().find(|attr| is_session_marker(attr)) {
                    receiver_marked = true;
                    errors.push(syn::Error::new_spanned(
                        attr,
                        "`self` cannot be the session; mark a `conn: &mut Conn` parameter with `#[session]` instead",
                    ));
                }
            }
            FnArg::Typed(param) => {
                if param.attrs.iter().any(is_session_marker) {
                    for attr in param.attrs.iter().filter(|attr| is_session_marker(attr)) {
                        if !matches!(attr.meta, syn::Meta::Path(_)) && !is_async_marker(attr) {
                            errors.push(syn::Error::new_spanned(
                                &attr.meta,
                                "unknown form of `#[session]`; write `#[session]`, or \
                                 `#[session(async)]` for a diesel-async connection",
                            ));
                        }
                    }
                    marked.push((index, param));
                } else if is_connection_type(&param.ty) {
                    looks_like.push((index, param));
                }
            }
        }
    }
    let candidates = if marked.is_empty() {
        looks_like
    } else {
        marked
    };
    let indices: Vec<usize> = candidates.iter().map(|(index, _)| *index).collect();
    match candidates.as_slice() {
        [] if receiver_marked => (None, indices),
        [] => {
            errors.push(syn::Error::new(
                function.sig.paren_token.span.join(),
                "no session parameter: add one such as `conn: &mut SqliteConnection` (any type \
                 ending in `Connection`, `&mut SyncConnectionWrapper<..>`, or \
                 `&mut dbscope::Session<..>`), or mark the session parameter with `#[session]` \
                 (`#[session(async)]` for a diesel-async connection behind an alias)",
            ));
            (None, indices)
        }
        [(index, param)] => {
            if !matches!(strip(&param.ty), Type::Reference(reference) if reference.mutability.is_some())
            {
                errors.push(syn::Error::new_spanned(
                    &param.ty,
                    "the session parameter must be a mutable reference; write `&mut Conn` or \
                     `&mut dbscope::Session<Conn>`",
                ));
            }
            (Some(session_param(*index, param)), indices)
        }
        [_, extra @ ..] => {
            for (_, param) in extra {
                errors.push(syn::Error::new_spanned(
                    param,
                    "a second session parameter: a unit of work opens exactly one session; remove \
                     this parameter, or mark the session with `#[session]` if this one is an \
                     ordinary argument",
                ));
            }
            (None, indices)
        }
    }
}

fn session_param(index: usize, param: &PatType) -> SessionParam<'_> {
    let name = match &*param.pat {
        Pat::Ident(ident) => ident.ident.to_string(),
        other => other.to_token_stream().to_string(),
    };
    SessionParam {
        index,
        pat: &param.pat,
        ty: &param.ty,
        attrs: param
            .attrs
            .iter()
            .filter(|attr| !is_session_marker(attr))
            .collect(),
        name,
        async_marker: param.attrs.iter().any(is_async_marker),
    }
}

/// Looks through invisible groups and parentheses.
fn strip(ty: &Type) -> &Type {
    match ty {
        Type::Group(group) => strip(&group.elem),
        Type::Paren(paren) => strip(&paren.elem),
        other => other,
    }
}

/// `&mut T` where T's last path segment ends with `Connection` or is `Session`.
fn is_connection_type(ty: &Type) -> bool {
    let Type::Reference(reference) = strip(ty) else {
        return false;
    };
    if reference.mutability.is_none() {
        return false;
    }
    let Type::Path(path) = strip(&reference.elem) else {
        return false;
    };
    if path.qself.is_some() {
        return false;
    }
    path.path.segments.last().is_some_and(|segment| {
        let name = segment.ident.to_string();
        name.ends_with("Connection") || name == "Session"
    }) || crate::await_check::is_async_connection(ty)
}
