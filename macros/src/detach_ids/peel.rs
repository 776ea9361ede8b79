//! Peels known containers off a type, syntactically, down to the leaf types
//! the probes check, so an error lands on `App` in `Option<Vec<App>>`.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{GenericArgument, PathArguments, Type};

/// Containers whose type arguments are what they carry. Matched on the last
/// path segment, so `std::sync::Arc<T>` and a user alias `Result<T>` both
/// peel.
const CONTAINERS: &[&str] = &[
    "Option", "Result", "Vec", "VecDeque", "Box", "Arc", "Rc", "Weak", "Cow", "Pin", "Cell",
    "RefCell", "Mutex", "RwLock", "HashMap", "BTreeMap", "HashSet", "BTreeSet",
];

/// Types that are plain data for sure; not probed, to keep expansions short.
pub(crate) const PRIMITIVES: &[&str] = &[
    "bool", "char", "str", "String", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16",
    "u32", "u64", "u128", "usize", "f32", "f64",
];

/// A type to probe, and where its errors go.
pub(crate) struct Leaf<'a> {
    pub(crate) ty: &'a Type,
    /// The last path segment's name for paths (`App` in `models::App`), the
    /// first token otherwise.
    pub(crate) span: Span,
}

/// The leaf types of `ty`, outermost first.
pub(crate) fn leaves(ty: &Type) -> Vec<Leaf<'_>> {
    let mut found = Vec::new();
    collect(ty, &mut found);
    found
}

fn collect<'a>(ty: &'a Type, found: &mut Vec<Leaf<'a>>) {
    match ty {
        Type::Group(group) => collect(&group.elem, found),
        Type::Paren(paren) => collect(&paren.elem, found),
        Type::Reference(reference) => collect(&reference.elem, found),
        Type::Ptr(pointer) => collect(&pointer.elem, found),
        Type::Slice(slice) => collect(&slice.elem, found),
        Type::Array(array) => collect(&array.elem, found),
        Type::Tuple(tuple) => tuple.elems.iter().for_each(|elem| collect(elem, found)),
        Type::Path(path) if path.qself.is_none() => {
            let Some(last) = path.path.segments.last() else {
                return;
            };
            let name = last.ident.to_string();
            match &last.arguments {
                PathArguments::AngleBracketed(args) if CONTAINERS.contains(&name.as_str()) => {
                    for arg in &args.args {
                        if let GenericArgument::Type(inner) = arg {
                            collect(inner, found);
                        }
                    }
                }
                PathArguments::None
                    if path.path.segments.len() == 1 && PRIMITIVES.contains(&name.as_str()) => {}
                _ => push(ty, last.ident.span(), found),
            }
        }
        Type::Path(_) | Type::Macro(_) => push(ty, ty.span(), found),
        // `impl Trait` cannot be named in an expression, `dyn Trait` and
        // `fn(..)` carry no value of their own, `!` and `_` carry nothing.
        _ => {}
    }
}

/// Adds `ty` unless it mentions `impl Trait` or `_`, which cannot be named in
/// the probe.
fn push<'a>(ty: &'a Type, span: Span, found: &mut Vec<Leaf<'a>>) {
    struct Unnameable(bool);
    impl<'ast> Visit<'ast> for Unnameable {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
        fn visit_type_infer(&mut self, _: &'ast syn::TypeInfer) {
            self.0 = true;
        }
    }
    let mut unnameable = Unnameable(false);
    unnameable.visit_type(ty);
    if !unnameable.0 {
        found.push(Leaf { ty, span });
    }
}

#[cfg(test)]
mod tests {
    use quote::ToTokens;

    use super::*;

    fn peel(ty: Type) -> Vec<String> {
        leaves(&ty)
            .iter()
            .map(|leaf| leaf.ty.to_token_stream().to_string())
            .collect()
    }

    #[test]
    fn containers_peel_to_their_leaves() {
        assert_eq!(peel(syn::parse_quote!(Option<Vec<App>>)), ["App"]);
        assert_eq!(
            peel(syn::parse_quote!((
                &[App],
                [models::User; 3],
                Box<Arc<Rc<Note>>>
            ))),
            ["App", "models :: User", "Note"]
        );
        assert_eq!(
            peel(syn::parse_quote!(Result<HashMap<Id<App>, App>, Error>)),
            ["Id < App >", "App", "Error"]
        );
        assert_eq!(peel(syn::parse_quote!(&mut PgConnection)), ["PgConnection"]);
    }

    #[test]
    fn primitives_and_unnameable_types_are_skipped() {
        assert!(peel(syn::parse_quote!((i32, &str, String, Vec<u8>))).is_empty());
        assert!(peel(syn::parse_quote!(impl Fn(App))).is_empty());
        assert!(peel(syn::parse_quote!(Wrapper<impl Display>)).is_empty());
        assert!(peel(syn::parse_quote!(Box<dyn Fn(App)>)).is_empty());
    }

    #[test]
    fn the_span_is_the_last_segment() {
        let ty: Type = syn::parse_quote!(models::App);
        let leaf = &leaves(&ty)[0];
        let Type::Path(path) = &ty else {
            unreachable!()
        };
        assert_eq!(
            format!("{:?}", leaf.span),
            format!("{:?}", path.path.segments[1].ident.span())
        );
    }
}
