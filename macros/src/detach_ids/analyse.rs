//! Analyse phase of `#[detach_ids]`: which parameters are `#[load]`ed rows,
//! which are exempt (`#[allow_attached]`), and which leaf types of the other
//! parameters and of the return type to probe. The IR points back into the
//! syn nodes for spans.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, Ident, Meta, ReturnType, Type};

use super::check;
use super::peel::{self, Leaf};
use crate::shared::errors::Errors;
use crate::shared::flavour::Flavour;
use crate::shared::item::FnItem;

/// Where a probed type sits, which decides the wording of its error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Position {
    Param,
    Return,
}

/// One leaf type to probe.
pub(crate) struct ProbeSite<'a> {
    pub(crate) leaf: Leaf<'a>,
    pub(crate) position: Position,
}

/// A `#[load] name: Row` parameter: callers pass `name: Id<Row>`.
pub(crate) struct Load<'a> {
    /// Its position in the signature's inputs.
    pub(crate) index: usize,
    pub(crate) ident: &'a Ident,
    /// Whether it was written `#[load] mut name: Row`.
    pub(crate) mutable: bool,
    /// The row type.
    pub(crate) ty: &'a Type,
    /// `#[load(key = K)]`: the primary key's type, when not `i32`.
    pub(crate) key: Option<Type>,
}

/// What the expansion needs to know about the function.
pub(crate) struct Analysis<'a> {
    pub(crate) flavour: Flavour,
    pub(crate) probes: Vec<ProbeSite<'a>>,
    pub(crate) loads: Vec<Load<'a>>,
    /// The declared return type, if any.
    pub(crate) ret: Option<&'a Type>,
    /// The first `#[load]` attribute, for errors about all of them.
    pub(crate) first_load: Option<Attribute>,
}

/// Whether `attr` is `#[load]`.
pub(crate) fn is_load_marker(attr: &Attribute) -> bool {
    attr.path().is_ident("load")
}

/// Whether `attr` is `#[allow_attached]`.
pub(crate) fn is_allow_marker(attr: &Attribute) -> bool {
    attr.path().is_ident("allow_attached")
}

/// Analyses `function`, pushing every problem with its markers and `#[load]`
/// parameters to `errors`.
pub(crate) fn analyse<'a>(function: &'a FnItem, errors: &mut Errors) -> Analysis<'a> {
    let sig = &function.sig;
    let mut probes = Vec::new();
    let mut loads = Vec::new();
    let mut first_load_attr = None;
    for (index, input) in sig.inputs.iter().enumerate() {
        let (attrs, ty, fallback_span) = match input {
            FnArg::Receiver(receiver) => (&receiver.attrs, &*receiver.ty, receiver.self_token.span),
            FnArg::Typed(param) => (&param.attrs, &*param.ty, param.ty.span()),
        };
        let markers = Markers::read(attrs, errors);
        if let Some(load_attr) = &markers.load {
            if first_load_attr.is_none() {
                first_load_attr = Some(load_attr.attr.clone());
            }
            if let Some(allow) = &markers.allow {
                errors.push(syn::Error::new_spanned(
                    allow,
                    "`#[allow_attached]` has no effect on a `#[load]` parameter (its callers pass \
                     an id); remove it",
                ));
            }
            match input {
                FnArg::Receiver(receiver) => errors.push(syn::Error::new(
                    receiver.self_token.span,
                    "`#[load]` goes on a typed parameter such as `#[load] app: App`, not on `self`",
                )),
                FnArg::Typed(param) => {
                    if let Some((ident, mutable)) = check::load_param(&param.pat, &param.ty, errors)
                    {
                        loads.push(Load {
                            index,
                            ident,
                            mutable,
                            ty: &param.ty,
                            key: load_attr.key.clone(),
                        });
                    }
                }
            }
            continue;
        }
        if markers.allow.is_some() {
            continue;
        }
        check::closure_param(ty, &sig.generics, errors);
        let mut leaves = peel::leaves(ty);
        if let FnArg::Receiver(receiver) = input {
            // `self`, `&self`, `&mut self`: the type is implied; point at `self`.
            if receiver.colon_token.is_none() {
                for leaf in &mut leaves {
                    leaf.span = fallback_span;
                }
            }
        }
        probes.extend(leaves.into_iter().map(|leaf| ProbeSite {
            leaf,
            position: Position::Param,
        }));
    }
    let ret = match &sig.output {
        ReturnType::Type(_, ty) => {
            probes.extend(peel::leaves(ty).into_iter().map(|leaf| ProbeSite {
                leaf,
                position: Position::Return,
            }));
            Some(&**ty)
        }
        ReturnType::Default => None,
    };
    Analysis {
        flavour: Flavour::of(sig),
        first_load: first_load_attr,
        probes,
        loads,
        ret,
    }
}

/// `#[load]` as written: the attribute, for error spans, and its key type.
struct LoadAttr {
    attr: Attribute,
    key: Option<Type>,
}

/// The markers on one parameter.
#[derive(Default)]
struct Markers {
    load: Option<LoadAttr>,
    /// `#[allow_attached]`, for error spans.
    allow: Option<Attribute>,
}

impl Markers {
    fn read(attrs: &[Attribute], errors: &mut Errors) -> Markers {
        let mut markers = Markers::default();
        for attr in attrs {
            if is_load_marker(attr) {
                let parsed = parse_load(attr, errors);
                if markers.load.is_some() {
                    errors.push(syn::Error::new_spanned(
                        attr,
                        "duplicate `#[load]`; write it once",
                    ));
                } else {
                    markers.load = Some(parsed);
                }
            } else if is_allow_marker(attr) {
                check_allow(attr, errors);
                if markers.allow.is_some() {
                    errors.push(syn::Error::new_spanned(
                        attr,
                        "duplicate `#[allow_attached]`; write it once",
                    ));
                } else {
                    markers.allow = Some(attr.clone());
                }
            }
        }
        markers
    }
}

/// `#[load]` or `#[load(key = K)]`.
fn parse_load(attr: &Attribute, errors: &mut Errors) -> LoadAttr {
    let mut load = LoadAttr {
        attr: attr.clone(),
        key: None,
    };
    match &attr.meta {
        Meta::Path(_) => {}
        Meta::NameValue(name_value) => errors.push(syn::Error::new_spanned(
            &name_value.value,
            "`#[load]` takes no value; write `#[load]`, or `#[load(key = i64)]` for a key type \
             other than `i32`",
        )),
        Meta::List(list) => {
            let parsed = list.parse_nested_meta(|meta| {
                if meta.path.is_ident("key") {
                    let ty: Type = meta.value()?.parse()?;
                    if load.key.is_some() {
                        errors.push(syn::Error::new_spanned(
                            &meta.path,
                            "duplicate `key`; give it once",
                        ));
                    }
                    load.key = Some(ty);
                    Ok(())
                } else {
                    Err(syn::Error::new_spanned(
                        &meta.path,
                        "unknown `#[load]` option; the only one is `key`, the primary key's \
                         type: `#[load(key = i64)]`",
                    ))
                }
            });
            if let Err(error) = parsed {
                errors.push(error);
            }
        }
    }
    load
}

/// `#[allow_attached]` or `#[allow_attached(reason = "..")]`.
fn check_allow(attr: &Attribute, errors: &mut Errors) {
    let malformed = |span: Span| {
        syn::Error::new(
            span,
            "write `#[allow_attached]`, or `#[allow_attached(reason = \"..\")]` to say why",
        )
    };
    match &attr.meta {
        Meta::Path(_) => {}
        Meta::NameValue(name_value) => errors.push(malformed(name_value.value.span())),
        Meta::List(list) => {
            let parsed = list.parse_nested_meta(|meta| {
                if meta.path.is_ident("reason") {
                    meta.value()?.parse::<syn::LitStr>()?;
                    Ok(())
                } else {
                    Err(malformed(meta.path.span()))
                }
            });
            if let Err(error) = parsed {
                errors.push(error);
            }
        }
    }
}
