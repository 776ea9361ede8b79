//! The options of `#[unit_of_work(...)]`: parsed into raw values that keep
//! their spans, then validated into [`Options`] in one [`RawOptions::build`] step.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, Ident, Lit, LitInt, Path, Token};

use crate::errors::Errors;

/// The keys `#[unit_of_work]` accepts, in the order the docs list them.
const KEYS: &[&str] = &[
    "factory",
    "isolation",
    "read_only",
    "retry",
    "immediate",
    "exclusive",
    "budget_ms",
    "crate",
];

/// The keys of `retry(...)`.
const RETRY_KEYS: &[&str] = &["attempts", "backoff_ms", "max_backoff_ms"];

/// The isolation levels, as written in the attribute and as runtime variants.
const LEVELS: &[(&str, &str)] = &[
    ("read_uncommitted", "ReadUncommitted"),
    ("read_committed", "ReadCommitted"),
    ("repeatable_read", "RepeatableRead"),
    ("serializable", "Serializable"),
];

/// An option as written: the key's span and the value.
#[derive(Clone)]
pub(crate) struct Written<T> {
    pub(crate) key: Span,
    pub(crate) value: T,
}

/// Options as written, before validation. Every field is set at most once.
#[derive(Default)]
pub(crate) struct RawOptions {
    factory: Option<Written<Expr>>,
    isolation: Option<Written<Ident>>,
    read_only: Option<Written<()>>,
    retry: Option<Written<RawRetry>>,
    immediate: Option<Written<()>>,
    exclusive: Option<Written<()>>,
    budget_ms: Option<Written<LitInt>>,
    krate: Option<Written<Path>>,
    /// Whether a `factory` key was written, well-formed or not, or parsing
    /// stopped early: either way "missing `factory`" would be a second error.
    factory_attempted: bool,
    /// Whether `exclusive` was written before `immediate`, so a conflict is
    /// reported on the later one.
    exclusive_first: bool,
}

/// `retry = N` or `retry(attempts = N, backoff_ms = A, max_backoff_ms = B)`.
#[derive(Clone, Default)]
struct RawRetry {
    /// Whether it was written `retry = N` rather than `retry(..)`.
    written_short: bool,
    attempts: Option<Written<LitInt>>,
    backoff_ms: Option<Written<LitInt>>,
    max_backoff_ms: Option<Written<LitInt>>,
}

/// Validated options.
pub(crate) struct Options {
    /// Where sessions come from.
    pub(crate) factory: Expr,
    /// The isolation level, with the span of its value.
    pub(crate) isolation: Option<(Isolation, Span)>,
    /// `read_only`.
    pub(crate) read_only: bool,
    /// The retry policy.
    pub(crate) retry: Option<Retry>,
    /// The SQLite lock mode, with the span of its key.
    pub(crate) sqlite_lock: Option<(SqliteLock, Span)>,
    /// `budget_ms`.
    pub(crate) budget_ms: Option<u64>,
    /// The path of the `dbscope` crate.
    pub(crate) krate: Path,
}

/// An isolation level, by its runtime variant name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Isolation(&'static str);

impl Isolation {
    /// The variant of `Isolation` in the runtime.
    pub(crate) fn variant(self) -> Ident {
        Ident::new(self.0, Span::call_site())
    }

    /// Whether every backend, SQLite included, honours this level.
    pub(crate) fn is_serializable(self) -> bool {
        self.0 == "Serializable"
    }
}

/// `immediate` or `exclusive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SqliteLock {
    Immediate,
    Exclusive,
}

impl SqliteLock {
    /// The variant of `SqliteLock` in the runtime.
    pub(crate) fn variant(self) -> Ident {
        let name = match self {
            SqliteLock::Immediate => "Immediate",
            SqliteLock::Exclusive => "Exclusive",
        };
        Ident::new(name, Span::call_site())
    }
}

/// A validated retry policy.
pub(crate) struct Retry {
    pub(crate) attempts: u32,
    /// `(backoff_ms, max_backoff_ms)` when either was given; the other takes
    /// the runtime's default.
    pub(crate) backoff: Option<(u64, u64)>,
}

/// The runtime's backoff defaults (`RetryPolicy::attempts`).
const DEFAULT_BACKOFF_MS: u64 = 10;
const DEFAULT_MAX_BACKOFF_MS: u64 = 1000;

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

/// The key of `meta` as an identifier (keywords such as `crate` included);
/// `keys` are the valid ones, for the error.
pub(crate) fn key_of(meta: &ParseNestedMeta<'_>, keys: &[&str]) -> syn::Result<Ident> {
    match meta.path.get_ident() {
        Some(ident) => Ok(ident.clone()),
        None => Err(syn::Error::new_spanned(
            &meta.path,
            format!("expected an option name, one of {}", list(keys)),
        )),
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
pub(crate) fn expect_end_of_option(input: ParseStream<'_>, key: &Ident) -> syn::Result<()> {
    if has_value(input) {
        return Err(syn::Error::new(
            input.span(),
            format!("expected `,` after the `{key}` option; separate options with commas"),
        ));
    }
    Ok(())
}

/// Whether a value follows the key.
pub(crate) fn has_value(input: ParseStream<'_>) -> bool {
    !input.is_empty() && !input.peek(Token![,])
}

/// Requires `=` after `key`. Without it, skips whatever stands there and
/// reports `message` on it (or on the key when nothing follows).
fn require_equals(meta: &ParseNestedMeta<'_>, key: &Ident, message: String) -> syn::Result<()> {
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

/// Parses `= <integer literal>`; on anything else reports `what` on the value.
fn int_value(
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
pub(crate) fn flag(meta: &ParseNestedMeta<'_>, key: &Ident) -> syn::Result<()> {
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
pub(crate) fn factory_value(meta: &ParseNestedMeta<'_>, key: &Ident) -> syn::Result<Expr> {
    require_equals(meta, key, "`factory` needs a value; write `factory = db` (a parameter) or `factory = self.db` (a field)".to_owned())?;
    meta.value()?.parse()
}

/// Parses `= path` or `= "path"` after `crate`.
pub(crate) fn crate_value(meta: &ParseNestedMeta<'_>, key: &Ident) -> syn::Result<Path> {
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

/// Reads an attribute's arguments option by option: checks each key against
/// `keys`, hands it to `parse_one`, and requires the option to end there.
/// Errors in one option do not stop the others from being read; every error
/// lands in `errors`. Returns `false` when the arguments could not even be
/// split into options.
pub(crate) fn for_each_option(
    args: TokenStream,
    keys: &[&str],
    errors: &mut Errors,
    mut parse_one: impl FnMut(&ParseNestedMeta<'_>, &Ident, &mut Errors) -> syn::Result<()>,
) -> bool {
    let mut local = Errors::default();
    let parser = syn::meta::parser(|meta| {
        let parsed = key_of(&meta, keys).and_then(|key| {
            parse_one(&meta, &key, &mut local)?;
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
        let name = key.to_string();
        match name.as_str() {
            "factory" => {
                self.factory_attempted = true;
                let expr = factory_value(meta, key)?;
                set_once(&mut self.factory, key, expr, errors);
            }
            "isolation" => {
                let example = "isolation = serializable";
                require_equals(
                    meta,
                    key,
                    format!("`isolation` needs a level; write `{example}`"),
                )?;
                let value = meta.value()?;
                let levels: Vec<&str> = LEVELS.iter().map(|(written, _)| *written).collect();
                let level = match value.parse::<Expr>()? {
                    Expr::Path(path) if path.path.get_ident().is_some() && path.qself.is_none() => {
                        match path.path.get_ident() {
                            Some(ident) if levels.contains(&ident.to_string().as_str()) => {
                                ident.clone()
                            }
                            _ => {
                                return Err(syn::Error::new_spanned(
                                    &path,
                                    format!(
                                        "unknown isolation level; write one of {}",
                                        list(&levels)
                                    ),
                                ))
                            }
                        }
                    }
                    other => {
                        return Err(syn::Error::new_spanned(
                            &other,
                            format!(
                                "expected an isolation level without quotes, one of {}",
                                list(&levels)
                            ),
                        ))
                    }
                };
                set_once(&mut self.isolation, key, level, errors);
            }
            "read_only" => {
                flag(meta, key)?;
                set_once(&mut self.read_only, key, (), errors);
            }
            "immediate" => {
                flag(meta, key)?;
                set_once(&mut self.immediate, key, (), errors);
            }
            "exclusive" => {
                flag(meta, key)?;
                self.exclusive_first = self.immediate.is_none();
                set_once(&mut self.exclusive, key, (), errors);
            }
            "budget_ms" => {
                if let Some(int) = int_value(meta, key, "budget_ms = 2000")? {
                    set_once(&mut self.budget_ms, key, int, errors);
                }
            }
            "retry" => {
                let retry = if meta.input.peek(syn::token::Paren) {
                    let mut retry = RawRetry::default();
                    let mut inner = Errors::default();
                    let nested = meta.parse_nested_meta(|nested| {
                        let parsed = key_of(&nested, RETRY_KEYS)
                            .and_then(|inner_key| retry.parse_one(&nested, &inner_key, &mut inner));
                        if let Err(error) = parsed {
                            inner.push(error);
                        }
                        skip_value(nested.input)
                    });
                    if let Err(error) = nested {
                        inner.push(error);
                    }
                    let had_errors = !inner.is_empty();
                    errors.extend(inner);
                    if retry.attempts.is_none() && !had_errors {
                        return Err(syn::Error::new(
                            key.span(),
                            "`retry(..)` needs `attempts`; write `retry(attempts = 3, backoff_ms = 10, max_backoff_ms = 1000)`",
                        ));
                    }
                    retry
                } else {
                    let attempts = int_value(meta, key, "retry = 3")?;
                    RawRetry {
                        attempts: attempts.map(|value| Written {
                            key: key.span(),
                            value,
                        }),
                        written_short: true,
                        ..RawRetry::default()
                    }
                };
                set_once(&mut self.retry, key, retry, errors);
            }
            "crate" => {
                let path = crate_value(meta, key)?;
                set_once(&mut self.krate, key, path, errors);
            }
            _ => {
                skip_value(meta.input)?;
                return Err(syn::Error::new(
                    key.span(),
                    format!("unknown option `{key}`; valid options are {}", list(KEYS)),
                ));
            }
        }
        Ok(())
    }

    /// Validates the options. Errors go to `errors`; the result is `None` when
    /// no usable configuration can be made (no factory).
    pub(crate) fn build(self, errors: &mut Errors) -> Option<Options> {
        let sqlite_lock = match (&self.immediate, &self.exclusive) {
            (Some(immediate), Some(exclusive)) => {
                let later = if self.exclusive_first {
                    immediate.key
                } else {
                    exclusive.key
                };
                errors.push(syn::Error::new(
                    later,
                    "`immediate` and `exclusive` cannot both be set; keep one of them",
                ));
                None
            }
            (Some(immediate), None) => Some((SqliteLock::Immediate, immediate.key)),
            (None, Some(exclusive)) => Some((SqliteLock::Exclusive, exclusive.key)),
            (None, None) => None,
        };
        let isolation = self.isolation.as_ref().and_then(|written| {
            let name = written.value.to_string();
            LEVELS
                .iter()
                .find(|(spelled, _)| *spelled == name)
                .map(|(_, variant)| (Isolation(variant), written.value.span()))
        });
        let retry = self.retry.and_then(|raw| raw.value.build(errors));
        let budget_ms = self.budget_ms.and_then(|raw| {
            match positive::<u64>(&raw.value, "budget_ms", "budget_ms = 2000") {
                Ok(value) => Some(value),
                Err(error) => {
                    errors.push(error);
                    None
                }
            }
        });
        let krate = match self.krate {
            Some(path) => path.value,
            None => syn::parse_quote!(::dbscope),
        };
        let factory = match self.factory {
            Some(factory) => Some(factory.value),
            None if self.factory_attempted => None,
            None => {
                errors.push(syn::Error::new(
                    Span::call_site(),
                    "missing `factory`: name where sessions come from, for example \
                     `#[unit_of_work(factory = db)]` for a parameter `db` or \
                     `#[unit_of_work(factory = self.db)]` for a field",
                ));
                None
            }
        };
        Some(Options {
            factory: factory?,
            isolation,
            read_only: self.read_only.is_some(),
            retry,
            sqlite_lock,
            budget_ms,
            krate,
        })
    }
}

impl RawRetry {
    fn parse_one(
        &mut self,
        meta: &ParseNestedMeta<'_>,
        key: &Ident,
        errors: &mut Errors,
    ) -> syn::Result<()> {
        let name = key.to_string();
        let (slot, example) = match name.as_str() {
            "attempts" => (&mut self.attempts, "attempts = 3"),
            "backoff_ms" => (&mut self.backoff_ms, "backoff_ms = 10"),
            "max_backoff_ms" => (&mut self.max_backoff_ms, "max_backoff_ms = 1000"),
            _ => {
                skip_value(meta.input)?;
                return Err(syn::Error::new(
                    key.span(),
                    format!(
                        "unknown `retry` option `{key}`; valid ones are {}",
                        list(RETRY_KEYS)
                    ),
                ));
            }
        };
        if let Some(int) = int_value(meta, key, example)? {
            set_once(slot, key, int, errors);
        }
        Ok(())
    }

    fn build(self, errors: &mut Errors) -> Option<Retry> {
        let attempts = self.attempts.as_ref().and_then(|raw| {
            let name = if self.written_short {
                "retry"
            } else {
                "attempts"
            };
            let example = if self.written_short {
                "retry = 3"
            } else {
                "attempts = 3"
            };
            positive::<u32>(&raw.value, name, example)
                .map_err(|e| errors.push(e))
                .ok()
        });
        let initial = self.backoff_ms.as_ref().and_then(|raw| {
            raw.value
                .base10_parse::<u64>()
                .map_err(|_| errors.push(too_large(&raw.value, "backoff_ms", "backoff_ms = 10")))
                .ok()
        });
        let max = self.max_backoff_ms.as_ref().and_then(|raw| {
            raw.value
                .base10_parse::<u64>()
                .map_err(|_| {
                    errors.push(too_large(
                        &raw.value,
                        "max_backoff_ms",
                        "max_backoff_ms = 1000",
                    ))
                })
                .ok()
        });
        let attempts = attempts?;
        if self.backoff_ms.is_some() && initial.is_none()
            || self.max_backoff_ms.is_some() && max.is_none()
        {
            return None;
        }
        let backoff = match (initial, max) {
            (None, None) => None,
            (initial, max) => {
                let initial = initial.unwrap_or(DEFAULT_BACKOFF_MS);
                let max = max.unwrap_or(DEFAULT_MAX_BACKOFF_MS.max(initial));
                if initial > max {
                    if let Some(raw) = &self.max_backoff_ms {
                        errors.push(syn::Error::new(
                            raw.value.span(),
                            format!(
                                "`max_backoff_ms` ({max}) is below `backoff_ms` ({initial}); \
                                 the cap must be at least the first wait"
                            ),
                        ));
                    }
                    return None;
                }
                Some((initial, max))
            }
        };
        Some(Retry { attempts, backoff })
    }
}

fn too_large(lit: &LitInt, name: &str, example: &str) -> syn::Error {
    syn::Error::new(
        lit.span(),
        format!("`{name}` is too large; write for example `{example}`"),
    )
}

/// Parses a whole number of at least 1.
fn positive<N>(lit: &LitInt, name: &str, example: &str) -> syn::Result<N>
where
    N: std::str::FromStr + PartialEq + From<u8>,
    N::Err: std::fmt::Display,
{
    let value = lit
        .base10_parse::<N>()
        .map_err(|_| too_large(lit, name, example))?;
    if value == N::from(0) {
        return Err(syn::Error::new(
            lit.span(),
            format!("`{name}` must be at least 1; write for example `{example}`"),
        ));
    }
    Ok(value)
}
