//! Check phase of `#[detach_ids]`: signatures it cannot go on and the shape
//! of `#[load]` parameters. What parameters and return types hold is checked
//! by the compiler, through the probes the expansion emits.

use syn::visit::Visit;
use syn::{GenericParam, Generics, Ident, Pat, PatIdent, Type, TypeParamBound, WherePredicate};

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
            let row = row_inside(ty).unwrap_or_else(|| "Row".to_owned());
            let name = snake_case(row.rsplit("::").next().unwrap_or(&row));
            errors.push(syn::Error::new_spanned(
                pat,
                format!(
                    "`#[load]` needs a plain parameter name (`#[load] {name}: {row}`): callers \
                     pass the id under that name; destructure the row inside the body instead"
                ),
            ));
            None
        }
    };
    let shape = row_type_problem(ty);
    if let Some(problem) = shape {
        let name = ident.map_or_else(|| "row".to_owned(), |(ident, _)| ident.to_string());
        let row = row_inside(ty).unwrap_or_else(|| "Row".to_owned());
        errors.push(syn::Error::new_spanned(
            ty,
            format!(
                "`#[load]` loads one row by id and passes it by value; {problem}: write \
                 `#[load] {name}: {row}` (callers then pass `{name}: Id<{row}>`)"
            ),
        ));
    }
    let (ident, mutable) = ident?;
    if shape.is_some() {
        return None;
    }
    Some((ident, mutable))
}

/// `AppUser` → `app_user`, for a suggested parameter name.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (index, ch) in name.chars().enumerate() {
        if ch.is_uppercase() {
            if index > 0 {
                out.push('_');
            }
            out.extend(ch.to_lowercase());
        } else if ch.is_alphanumeric() || ch == '_' {
            out.push(ch);
        }
    }
    out
}

/// The row type a malformed `#[load]` type wraps (`User` in `Option<User>`,
/// `&User`, `Id<User>`, `(User, Org)`), as written.
fn row_inside(ty: &Type) -> Option<String> {
    use quote::ToTokens;
    match ty {
        Type::Group(group) => row_inside(&group.elem),
        Type::Paren(paren) => row_inside(&paren.elem),
        Type::Reference(reference) => row_inside(&reference.elem),
        Type::Slice(slice) => row_inside(&slice.elem),
        Type::Array(array) => row_inside(&array.elem),
        Type::Tuple(tuple) => tuple.elems.iter().find_map(row_inside),
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            match &last.arguments {
                syn::PathArguments::AngleBracketed(args) => {
                    args.args.iter().find_map(|arg| match arg {
                        syn::GenericArgument::Type(inner) => row_inside(inner),
                        _ => None,
                    })
                }
                _ if super::peel::PRIMITIVES.contains(&last.ident.to_string().as_str()) => None,
                _ => Some(ty.to_token_stream().to_string().replace(' ', "")),
            }
        }
        _ => None,
    }
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

/// Rejects a closure parameter (`Box<dyn FnOnce()>`, `impl Fn()`, `F` with
/// `F: FnOnce()`): what it captured (a session, a connection, a row) is out
/// of sight of the probes.
pub(crate) fn closure_param(ty: &Type, generics: &Generics, errors: &mut Errors) {
    struct FindClosure<'a> {
        closure_generics: Vec<&'a Ident>,
        found: Option<proc_macro2::TokenStream>,
    }
    impl<'ast> Visit<'ast> for FindClosure<'_> {
        fn visit_type_trait_object(&mut self, node: &'ast syn::TypeTraitObject) {
            if self.found.is_none() && node.bounds.iter().any(is_fn_bound) {
                self.found = Some(quote::quote!(#node));
            }
        }
        fn visit_type_impl_trait(&mut self, node: &'ast syn::TypeImplTrait) {
            if self.found.is_none() && node.bounds.iter().any(is_fn_bound) {
                self.found = Some(quote::quote!(#node));
            }
        }
        fn visit_type_path(&mut self, node: &'ast syn::TypePath) {
            if self.found.is_none() && node.qself.is_none() {
                if let Some(ident) = node.path.get_ident() {
                    if self.closure_generics.contains(&ident) {
                        self.found = Some(quote::quote!(#node));
                        return;
                    }
                }
            }
            syn::visit::visit_type_path(self, node);
        }
    }
    let mut closure_generics = Vec::new();
    for param in &generics.params {
        if let GenericParam::Type(param) = param {
            if param.bounds.iter().any(is_fn_bound) {
                closure_generics.push(&param.ident);
            }
        }
    }
    if let Some(where_clause) = &generics.where_clause {
        for predicate in &where_clause.predicates {
            if let WherePredicate::Type(predicate) = predicate {
                if let Type::Path(path) = &predicate.bounded_ty {
                    if let Some(ident) = path.path.get_ident() {
                        if predicate.bounds.iter().any(is_fn_bound) {
                            closure_generics.push(ident);
                        }
                    }
                }
            }
        }
    }
    let mut finder = FindClosure {
        closure_generics,
        found: None,
    };
    finder.visit_type(ty);
    if let Some(found) = finder.found {
        errors.push(syn::Error::new_spanned(
            found,
            "a closure can carry a session, a connection or a row that `#[detach_ids]` cannot \
             see (its captures are hidden behind its type); take the ids and plain data it \
             needs as parameters and open a unit of work inside, or mark the parameter \
             `#[allow_attached(reason = \"..\")]` once you have checked what it captures",
        ));
    }
}

/// `Fn(..)`, `FnMut(..)`, `FnOnce(..)` and their async twins.
fn is_fn_bound(bound: &TypeParamBound) -> bool {
    match bound {
        TypeParamBound::Trait(bound) => bound.path.segments.last().is_some_and(|segment| {
            matches!(
                segment.ident.to_string().as_str(),
                "Fn" | "FnMut" | "FnOnce" | "AsyncFn" | "AsyncFnMut" | "AsyncFnOnce"
            )
        }),
        _ => false,
    }
}
