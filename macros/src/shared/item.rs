//! The function an attribute is put on: a free `fn` or a method with a body,
//! as written. Shared by `#[unit_of_work]` and `#[detach_ids]`.

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{AttrStyle, Attribute, Block, Item, ItemFn, Signature, Visibility};

/// Which attribute is parsing, for its error messages.
pub(crate) struct MacroName {
    /// `unit_of_work`.
    pub(crate) name: &'static str,
    /// What it goes on: "a function that takes a session".
    pub(crate) goes_on: &'static str,
    /// Where to put it instead: "put it on each method that does database work".
    pub(crate) advice: &'static str,
}

/// A function with a body, split the way the expansion needs it.
pub(crate) struct FnItem {
    /// `#[...]` and doc comments above the function.
    pub(crate) outer_attrs: Vec<Attribute>,
    /// `#![...]` at the top of the body.
    pub(crate) inner_attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    pub(crate) block: Block,
}

impl FnItem {
    /// Parses the item. Anything but a function with a body is an error that
    /// says where the attribute goes instead.
    pub(crate) fn parse(item: TokenStream, attribute: &MacroName) -> syn::Result<FnItem> {
        match syn::parse2::<ItemFn>(item.clone()) {
            Ok(function) => {
                let (inner_attrs, outer_attrs) = function
                    .attrs
                    .into_iter()
                    .partition(|attr| matches!(attr.style, AttrStyle::Inner(_)));
                Ok(FnItem {
                    outer_attrs,
                    inner_attrs,
                    vis: function.vis,
                    sig: function.sig,
                    block: *function.block,
                })
            }
            Err(error) => Err(explain_not_a_fn(item, attribute).unwrap_or(error)),
        }
    }
}

/// A better error than "expected `fn`" for items that parse as something else.
fn explain_not_a_fn(item: TokenStream, attribute: &MacroName) -> Option<syn::Error> {
    if let Ok(declaration) = syn::parse2::<syn::TraitItemFn>(item.clone()) {
        if declaration.default.is_none() {
            let span = declaration
                .semi_token
                .map_or_else(|| declaration.sig.span(), |semi| semi.span);
            return Some(syn::Error::new(
                span,
                format!(
                    "`#[{}]` needs a function body; put it on the method in the `impl` \
                     block, not on a declaration without a body",
                    attribute.name
                ),
            ));
        }
        return None;
    }
    let item = syn::parse2::<Item>(item).ok()?;
    let (what, span) = match &item {
        Item::Fn(_) => return None,
        Item::Struct(item) => ("a struct", item.struct_token.span),
        Item::Enum(item) => ("an enum", item.enum_token.span),
        Item::Union(item) => ("a union", item.union_token.span),
        Item::Impl(item) => ("an `impl` block", item.impl_token.span),
        Item::Trait(item) => ("a trait", item.trait_token.span),
        Item::Mod(item) => ("a module", item.mod_token.span),
        Item::Const(item) => ("a constant", item.const_token.span),
        Item::Static(item) => ("a static", item.static_token.span),
        Item::Type(item) => ("a type alias", item.type_token.span),
        Item::Use(item) => ("a `use` declaration", item.use_token.span),
        _ => ("this item", Span::call_site()),
    };
    Some(syn::Error::new(
        span,
        format!(
            "`#[{}]` goes on {}, not on {what}; {}",
            attribute.name, attribute.goes_on, attribute.advice
        ),
    ))
}
