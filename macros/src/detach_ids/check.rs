//! Check phase of `#[detach_ids]`: signatures it cannot go on and the shape
//! of `#[load]` parameters. What parameters and return types hold is checked
//! by the compiler, through the probes the expansion emits.

use syn::{Ident, Pat, PatIdent, Type};

use super::analyse::Analysis;
use super::parse::Options;
use crate::shared::errors::Errors;

/// Rejects `const` and variadic functions.
pub(crate) fn signature(sig: &syn::Signature, errors: &mut Errors) {
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new(
            constness.span,
            "`#[detach_ids]` cannot go on a `const fn`: its checks run in the body; remove `const`",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new(
            variadic.dots.spans[0],
            "`#[detach_ids]` does not take variadic parameters; remove `...`",
        ));
    }
}

/// `#[load]` parameters need a factory to load from and a `Result` to fail
/// through.
pub(crate) fn loads(
    sig: &syn::Signature,
    analysis: &Analysis<'_>,
    options: &Options,
    errors: &mut Errors,
) {
    let Some(load_attr) = &analysis.first_load else {
        return;
    };
    if options.factory.is_none() && !options.factory_attempted {
        errors.push(syn::Error::new_spanned(
            load_attr,
            "`#[load]` needs a factory to load the row from; write \
             `#[detach_ids(factory = db)]` for a parameter `db: &SessionFactory<..>` (or \
             `factory = self.db` for a field)",
        ));
    }
    if analysis.ret.is_none() {
        errors.push(syn::Error::new(
            sig.paren_token.span.close(),
            "a function with `#[load]` parameters must return `Result<T, E>` with \
             `E: From<dbscope::Error>`: the row may be gone when it runs; add \
             `-> Result<(), E>`",
        ));
    }
}

/// Validates a `#[load]` parameter: a plain name and a row type by value.
/// Returns its name and whether it was written `mut`.
pub(crate) fn load_param<'a>(
    pat: &'a Pat,
    ty: &'a Type,
    errors: &mut Errors,
) -> Option<(&'a Ident, bool)> {
    let ident = match pat {
        Pat::Ident(PatIdent {
            by_ref: None,
            subpat: None,
            ident,
            mutability,
            ..
        }) => Some((ident, mutability.is_some())),
        _ => {
            errors.push(syn::Error::new_spanned(
                pat,
                "`#[load]` needs a plain parameter name (`#[load] app: App`): callers pass the \
                 id under that name; destructure the row inside the body instead",
            ));
            None
        }
    };
    let shape = row_type_problem(ty);
    if let Some(problem) = shape {
        errors.push(syn::Error::new_spanned(
            ty,
            format!(
                "`#[load]` loads one row by id and passes it by value; {problem}: write \
                 `#[load] app: App` (callers then pass `app: Id<App>`)"
            ),
        ));
    }
    let (ident, mutable) = ident?;
    if shape.is_some() {
        return None;
    }
    Some((ident, mutable))
}

/// Why `ty` cannot be a `#[load]`ed row type, if it cannot.
fn row_type_problem(ty: &Type) -> Option<&'static str> {
    match ty {
        Type::Group(group) => row_type_problem(&group.elem),
        Type::Paren(paren) => row_type_problem(&paren.elem),
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            let name = last.ident.to_string();
            let container = matches!(
                name.as_str(),
                "Option" | "Result" | "Vec" | "VecDeque" | "Box" | "Arc" | "Rc" | "Id"
            ) && !last.arguments.is_empty();
            container.then_some(match name.as_str() {
                "Id" => "this is already an id",
                "Option" => "an optional row is not supported",
                _ => "this is a container, not a row",
            })
        }
        Type::Path(_) => None,
        Type::Reference(_) => Some("a reference would borrow a row that no one owns"),
        Type::Tuple(_) | Type::Slice(_) | Type::Array(_) => Some("this holds several values"),
        _ => Some("this is not a row type"),
    }
}
