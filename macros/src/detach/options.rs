//! The options of `#[detach_ids(...)]`: `factory = <expr>` (needed by `#[load]`
//! parameters) and `crate = path`. Parsed with the helpers `#[unit_of_work]`
//! uses, so duplicates, unknown keys and malformed values read the same.

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::{Expr, Ident, Path};

use crate::errors::Errors;
use crate::options::{
    crate_value, factory_value, for_each_option, list, set_once, skip_value, Written,
};

/// The keys `#[detach_ids]` accepts, in the order the docs list them.
const KEYS: &[&str] = &["factory", "crate"];

/// Options as written, before validation.
#[derive(Default)]
pub(crate) struct RawOptions {
    factory: Option<Written<Expr>>,
    krate: Option<Written<Path>>,
    /// Whether a `factory` key was written, well-formed or not, or parsing
    /// stopped early: either way "`#[load]` needs a factory" would be a
    /// second error.
    factory_attempted: bool,
}

/// Validated options.
pub(crate) struct Options {
    /// Where `#[load]` parameters are loaded from.
    pub(crate) factory: Option<Expr>,
    /// Whether the user tried to give a factory (so its absence is already
    /// reported).
    pub(crate) factory_attempted: bool,
    /// The path of the `dbscope` crate.
    pub(crate) krate: Path,
}

impl RawOptions {
    /// Parses the attribute's arguments; every error lands in `errors`.
    pub(crate) fn parse(args: TokenStream, errors: &mut Errors) -> RawOptions {
        let mut raw = RawOptions::default();
        if !for_each_option(args, KEYS, errors, |meta, key, errors| {
            raw.parse_one(meta, key, errors)
        }) {
            raw.factory_attempted = true;
        }
        raw
    }

    fn parse_one(
        &mut self,
        meta: &ParseNestedMeta<'_>,
        key: &Ident,
        errors: &mut Errors,
    ) -> syn::Result<()> {
        match key.to_string().as_str() {
            "factory" => {
                self.factory_attempted = true;
                let expr = factory_value(meta, key)?;
                set_once(&mut self.factory, key, expr, errors);
            }
            "crate" => {
                let path = crate_value(meta, key)?;
                set_once(&mut self.krate, key, path, errors);
            }
            _ => {
                skip_value(meta.input)?;
                let hint = if key == "allow" {
                    "; to exempt one parameter, mark it `#[allow_attached]`"
                } else {
                    ""
                };
                return Err(syn::Error::new(
                    key.span(),
                    format!(
                        "unknown option `{key}`; valid options are {}{hint}",
                        list(KEYS)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The options; nothing here can conflict, so this cannot fail.
    pub(crate) fn build(self) -> Options {
        Options {
            factory: self.factory.map(|written| written.value),
            factory_attempted: self.factory_attempted,
            krate: match self.krate {
                Some(path) => path.value,
                None => syn::parse_quote!(::dbscope),
            },
        }
    }
}
