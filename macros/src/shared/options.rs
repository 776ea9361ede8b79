//! Option parsing shared by the attributes: a table of keys and their
//! parsers drives the reading, so the keys an attribute lists in its errors
//! are exactly the keys it parses. Raw values keep their spans for the
//! validation step of each attribute.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, Ident, Lit, LitInt, Path, Token};

use crate::shared::errors::Errors;

/// Reads one option's value into the raw options `R`.
pub(crate) type ParseOption<R> =
    fn(&mut R, &ParseNestedMeta<'_>, &Ident, &mut Errors) -> syn::Result<()>;

/// One key an attribute accepts and how its value is read.
pub(crate) struct OptionSpec<R> {
    pub(crate) key: &'static str,
    pub(crate) parse: ParseOption<R>,
}

/// The options of one attribute (or of one nested list such as `retry(..)`),
/// in the order its docs list them.
pub(crate) struct OptionTable<R: 'static> {
    pub(crate) options: &'static [OptionSpec<R>],
    /// The error for an unknown key, given the key and the valid keys as a
    /// sentence (`` `a`, `b` or `c` ``).
    pub(crate) unknown: fn(&Ident, &str) -> String,
}

impl<R> OptionTable<R> {
    /// The keys, in table order.
    pub(crate) fn keys(&self) -> Vec<&'static str> {
        self.options.iter().map(|option| option.key).collect()
    }

    /// Reads the value of `key` with its parser; an unknown key is an error
    /// on the key listing the valid ones (its value is skipped).
    pub(crate) fn parse_value(
        &self,
        raw: &mut R,
        meta: &ParseNestedMeta<'_>,
        key: &Ident,
        errors: &mut Errors,
    ) -> syn::Result<()> {
        let name = key.to_string();
        match self.options.iter().find(|option| option.key == name) {
            Some(option) => (option.parse)(raw, meta, key, errors),
            None => {
                skip_value(meta.input)?;
                Err(syn::Error::new(
                    key.span(),
                    (self.unknown)(key, &list(&self.keys())),
                ))
            }
        }
    }

    /// The key of `meta` as an identifier (keywords such as `crate`
    /// included).
    pub(crate) fn key_of(&self, meta: &ParseNestedMeta<'_>) -> syn::Result<Ident> {
        match meta.path.get_ident() {
            Some(ident) => Ok(ident.clone()),
            None => Err(syn::Error::new_spanned(
                &meta.path,
                format!("expected an option name, one of {}", list(&self.keys())),
            )),
        }
    }

    /// Reads an attribute's arguments option by option into `raw`, each
    /// ending at a comma. Errors in one option do not stop the others from
    /// being read; every error lands in `errors`. Returns `false` when the
    /// arguments could not even be split into options.
    pub(crate) fn parse_args(&self, args: TokenStream, raw: &mut R, errors: &mut Errors) -> bool {
        let mut local = Errors::default();
        let parser = syn::meta::parser(|meta| {
            let parsed = self.key_of(&meta).and_then(|key| {
                self.parse_value(raw, &meta, &key, &mut local)?;
                expect_end_of_option(meta.input, &key)
            });
            if let Err(error) = parsed {
                local.push(error);
            }
            // Whatever happened, move on to the next option.
            skip_value(meta.input)
        });
        let split = match parser.parse2(args) {
            Ok(()) => true,
            Err(error) => {
                local.push(error);
                false
            }
        };
        errors.extend(local);
        split
    }

    /// Reads a nested list (`retry(a = 1, b = 2)`) into `raw`; every error
    /// lands in `errors`.
    pub(crate) fn parse_nested(
        &self,
        meta: &ParseNestedMeta<'_>,
        raw: &mut R,
        errors: &mut Errors,
    ) {
        let nested = meta.parse_nested_meta(|nested| {
            let parsed = self
                .key_of(&nested)
                .and_then(|key| self.parse_value(raw, &nested, &key, errors));
            if let Err(error) = parsed {
                errors.push(error);
            }
            skip_value(nested.input)
        });
        if let Err(error) = nested {
            errors.push(error);
        }
    }
}

/// An option as written: the key's span and the value.
#[derive(Clone)]
pub(crate) struct Written<T> {
    pub(crate) key: Span,
    pub(crate) value: T,
}

/// Sets `slot` once; a second time is a "duplicate" error on the key.
pub(crate) fn set_once<T>(
    slot: &mut Option<Written<T>>,
    key: &Ident,
    value: T,
    errors: &mut Errors,
) {
    if slot.is_some() {
        errors.push(syn::Error::new(
            key.span(),
            format!("duplicate `{key}`; give each option once"),
        ));
    } else {
        *slot = Some(Written {
            key: key.span(),
            value,
        });
    }
}

/// `` `a`, `b` or `c` ``.
pub(crate) fn list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// Consumes whatever value follows a key (`= ...` or `(...)`) up to the next
/// top-level comma, so parsing goes on after an error.
pub(crate) fn skip_value(input: ParseStream<'_>) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// After a well-formed option, only `,` or the end may follow.
fn expect_end_of_option(input: ParseStream<'_>, key: &Ident) -> syn::Result<()> {
    if has_value(input) {
        return Err(syn::Error::new(
            input.span(),
            format!("expected `,` after the `{key}` option; separate options with commas"),
        ));
    }
    Ok(())
}

/// Whether a value follows the key.
fn has_value(input: ParseStream<'_>) -> bool {
    !input.is_empty() && !input.peek(Token![,])
}

/// Requires `=` after `key`. Without it, skips whatever stands there and
/// reports `message` on it (or on the key when nothing follows).
pub(crate) fn require_equals(
    meta: &ParseNestedMeta<'_>,
    key: &Ident,
    message: String,
) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        return Ok(());
    }
    let span = if has_value(meta.input) {
        meta.input.span()
    } else {
        key.span()
    };
    skip_value(meta.input)?;
    Err(syn::Error::new(span, message))
}

/// Parses `= <integer literal>`; on anything else reports on the value,
/// showing `example`.
pub(crate) fn int_value(
    meta: &ParseNestedMeta<'_>,
    key: &Ident,
    example: &str,
) -> syn::Result<Option<LitInt>> {
    require_equals(
        meta,
        key,
        format!("`{key}` needs a whole number; write `{example}`"),
    )?;
    let value = meta.value()?;
    let expr: Expr = value.parse()?;
    match &expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(int), ..
        }) if int.suffix().is_empty() => Ok(Some(int.clone())),
        _ => Err(syn::Error::new_spanned(
            &expr,
            format!("`{key}` needs a whole number literal; write `{example}`"),
        )),
    }
}

/// Reports a value given to a flag, and consumes it.
fn flag(meta: &ParseNestedMeta<'_>, key: &Ident) -> syn::Result<()> {
    if has_value(meta.input) {
        let span = meta.input.span();
        skip_value(meta.input)?;
        return Err(syn::Error::new(
            span,
            format!("`{key}` is a flag and takes no value; write `{key}` alone"),
        ));
    }
    Ok(())
}

/// Parses `= <expr>` after `factory`.
fn factory_value(meta: &ParseNestedMeta<'_>, key: &Ident) -> syn::Result<Expr> {
    require_equals(meta, key, "`factory` needs a value; write `factory = db` (a parameter) or `factory = self.db` (a field)".to_owned())?;
    meta.value()?.parse()
}

/// Parses `= path` or `= "path"` after `crate`.
fn crate_value(meta: &ParseNestedMeta<'_>, key: &Ident) -> syn::Result<Path> {
    let malformed = |span: Span| {
        syn::Error::new(
            span,
            "`crate` needs a path; write `crate = my_crate::dbscope`",
        )
    };
    require_equals(
        meta,
        key,
        "`crate` needs a path; write `crate = my_crate::dbscope`".to_owned(),
    )?;
    let value = meta.value()?;
    if value.peek(syn::LitStr) {
        let lit: syn::LitStr = value.parse()?;
        lit.parse_with(Path::parse_mod_style)
            .map_err(|_| malformed(lit.span()))
    } else {
        let span = value.span();
        value
            .call(Path::parse_mod_style)
            .map_err(|_| malformed(span))
    }
}

/// The default path of the `dbscope` crate, or the `crate = ..` override.
pub(crate) fn krate_or_default(krate: Option<Written<Path>>) -> Path {
    match krate {
        Some(path) => path.value,
        None => syn::parse_quote!(::dbscope),
    }
}

/// Reads `factory = <expr>` into `slot`, noting in `attempted` that a
/// factory was written (so its absence is not reported a second time).
pub(crate) fn set_factory(
    slot: &mut Option<Written<Expr>>,
    attempted: &mut bool,
    meta: &ParseNestedMeta<'_>,
    key: &Ident,
    errors: &mut Errors,
) -> syn::Result<()> {
    *attempted = true;
    let expr = factory_value(meta, key)?;
    set_once(slot, key, expr, errors);
    Ok(())
}

/// Reads `crate = path` into `slot`.
pub(crate) fn set_crate(
    slot: &mut Option<Written<Path>>,
    meta: &ParseNestedMeta<'_>,
    key: &Ident,
    errors: &mut Errors,
) -> syn::Result<()> {
    let path = crate_value(meta, key)?;
    set_once(slot, key, path, errors);
    Ok(())
}

/// Reads a flag (a key without a value) into `slot`.
pub(crate) fn set_flag(
    slot: &mut Option<Written<()>>,
    meta: &ParseNestedMeta<'_>,
    key: &Ident,
    errors: &mut Errors,
) -> syn::Result<()> {
    flag(meta, key)?;
    set_once(slot, key, (), errors);
    Ok(())
}
