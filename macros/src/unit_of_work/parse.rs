//! Parse phase of `#[unit_of_work(...)]`: the options, read through one
//! table of keys and parsers into raw values that keep their spans, then
//! validated into [`Options`] in one [`RawOptions::build`] step.

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::{Expr, Ident, LitInt, Path};

use crate::shared::errors::Errors;
use crate::shared::options::{
    int_value, krate_or_default, list, require_equals, set_crate, set_factory, set_flag, set_once,
    OptionSpec, OptionTable, Written,
};

/// The options `#[unit_of_work]` accepts, in the order the docs list them.
const OPTIONS: OptionTable<RawOptions> = OptionTable {
    options: &[
        OptionSpec {
            key: "factory",
            parse: |raw, meta, key, errors| {
                set_factory(
                    &mut raw.factory,
                    &mut raw.factory_attempted,
                    meta,
                    key,
                    errors,
                )
            },
        },
        OptionSpec {
            key: "isolation",
            parse: RawOptions::parse_isolation,
        },
        OptionSpec {
            key: "read_only",
            parse: |raw, meta, key, errors| set_flag(&mut raw.read_only, meta, key, errors),
        },
        OptionSpec {
            key: "retry",
            parse: RawOptions::parse_retry,
        },
        OptionSpec {
            key: "immediate",
            parse: |raw, meta, key, errors| set_flag(&mut raw.immediate, meta, key, errors),
        },
        OptionSpec {
            key: "exclusive",
            parse: RawOptions::parse_exclusive,
        },
        OptionSpec {
            key: "deferred",
            parse: |raw, meta, key, errors| set_flag(&mut raw.deferred, meta, key, errors),
        },
        OptionSpec {
            key: "budget_ms",
            parse: RawOptions::parse_budget_ms,
        },
        OptionSpec {
            key: "requires_new",
            parse: |raw, meta, key, errors| set_flag(&mut raw.requires_new, meta, key, errors),
        },
        OptionSpec {
            key: "joinable",
            parse: |raw, meta, key, errors| set_flag(&mut raw.joinable, meta, key, errors),
        },
        OptionSpec {
            key: "crate",
            parse: |raw, meta, key, errors| set_crate(&mut raw.krate, meta, key, errors),
        },
    ],
    unknown: |key, valid| format!("unknown option `{key}`; valid options are {valid}"),
};

/// The options of `retry(...)`.
const RETRY_OPTIONS: OptionTable<RawRetry> = OptionTable {
    options: &[
        OptionSpec {
            key: "attempts",
            parse: |retry, meta, key, errors| {
                RawRetry::parse_count(&mut retry.attempts, meta, key, "attempts = 3", errors)
            },
        },
        OptionSpec {
            key: "backoff_ms",
            parse: |retry, meta, key, errors| {
                RawRetry::parse_count(&mut retry.backoff_ms, meta, key, "backoff_ms = 10", errors)
            },
        },
        OptionSpec {
            key: "max_backoff_ms",
            parse: |retry, meta, key, errors| {
                RawRetry::parse_count(
                    &mut retry.max_backoff_ms,
                    meta,
                    key,
                    "max_backoff_ms = 1000",
                    errors,
                )
            },
        },
    ],
    unknown: |key, valid| format!("unknown `retry` option `{key}`; valid ones are {valid}"),
};

/// Options as written, before validation. Every field is set at most once.
#[derive(Default)]
pub(crate) struct RawOptions {
    factory: Option<Written<Expr>>,
    /// The level and the span of its value.
    isolation: Option<Written<(Isolation, Span)>>,
    read_only: Option<Written<()>>,
    retry: Option<Written<RawRetry>>,
    immediate: Option<Written<()>>,
    exclusive: Option<Written<()>>,
    deferred: Option<Written<()>>,
    budget_ms: Option<Written<LitInt>>,
    requires_new: Option<Written<()>>,
    joinable: Option<Written<()>>,
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
    /// `requires_new`: a transaction of its own even inside another unit.
    pub(crate) requires_new: bool,
    /// `joinable`: also generate the `name_in` twin that joins the caller's
    /// transaction.
    pub(crate) joinable: bool,
    /// The path of the `dbscope` crate.
    pub(crate) krate: Path,
}

/// An isolation level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isolation {
    ReadUncommitted,
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

impl Isolation {
    /// Every level, in the order the docs list them.
    const ALL: [Isolation; 4] = [
        Isolation::ReadUncommitted,
        Isolation::ReadCommitted,
        Isolation::RepeatableRead,
        Isolation::Serializable,
    ];

    /// How the level is written in the attribute.
    fn written(self) -> &'static str {
        match self {
            Isolation::ReadUncommitted => "read_uncommitted",
            Isolation::ReadCommitted => "read_committed",
            Isolation::RepeatableRead => "repeatable_read",
            Isolation::Serializable => "serializable",
        }
    }

    /// The level written `name`, if any.
    fn from_written(name: &str) -> Option<Isolation> {
        Isolation::ALL
            .into_iter()
            .find(|level| level.written() == name)
    }

    /// The variant of `Isolation` in the runtime.
    pub(crate) fn variant(self) -> Ident {
        let name = match self {
            Isolation::ReadUncommitted => "ReadUncommitted",
            Isolation::ReadCommitted => "ReadCommitted",
            Isolation::RepeatableRead => "RepeatableRead",
            Isolation::Serializable => "Serializable",
        };
        Ident::new(name, Span::call_site())
    }

    /// Whether every backend, SQLite included, honours this level.
    pub(crate) fn is_serializable(self) -> bool {
        self == Isolation::Serializable
    }
}

/// `immediate`, `exclusive` or `deferred`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SqliteLock {
    Immediate,
    Exclusive,
    Deferred,
}

impl SqliteLock {
    /// The variant of `SqliteLock` in the runtime.
    pub(crate) fn variant(self) -> Ident {
        let name = match self {
            SqliteLock::Immediate => "Immediate",
            SqliteLock::Exclusive => "Exclusive",
            SqliteLock::Deferred => "Deferred",
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

impl RawOptions {
    /// Parses the attribute's arguments; every error lands in `errors`.
    pub(crate) fn parse(args: TokenStream, errors: &mut Errors) -> RawOptions {
        let mut raw = RawOptions::default();
        if !OPTIONS.parse_args(args, &mut raw, errors) {
            raw.factory_attempted = true;
        }
        raw
    }

    fn parse_isolation(
        &mut self,
        meta: &ParseNestedMeta<'_>,
        key: &Ident,
        errors: &mut Errors,
    ) -> syn::Result<()> {
        let example = "isolation = serializable";
        require_equals(
            meta,
            key,
            format!("`isolation` needs a level; write `{example}`"),
        )?;
        let value = meta.value()?;
        let levels: Vec<&str> = Isolation::ALL.iter().map(|level| level.written()).collect();
        let level = match value.parse::<Expr>()? {
            Expr::Path(path) if path.path.get_ident().is_some() && path.qself.is_none() => {
                match path.path.get_ident().and_then(|ident| {
                    Isolation::from_written(&ident.to_string()).map(|level| (level, ident.span()))
                }) {
                    Some(level) => level,
                    None => {
                        return Err(syn::Error::new_spanned(
                            &path,
                            format!("unknown isolation level; write one of {}", list(&levels)),
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
        Ok(())
    }

    fn parse_exclusive(
        &mut self,
        meta: &ParseNestedMeta<'_>,
        key: &Ident,
        errors: &mut Errors,
    ) -> syn::Result<()> {
        self.exclusive_first = self.immediate.is_none();
        set_flag(&mut self.exclusive, meta, key, errors)
    }

    fn parse_budget_ms(
        &mut self,
        meta: &ParseNestedMeta<'_>,
        key: &Ident,
        errors: &mut Errors,
    ) -> syn::Result<()> {
        if let Some(int) = int_value(meta, key, "budget_ms = 2000")? {
            set_once(&mut self.budget_ms, key, int, errors);
        }
        Ok(())
    }

    fn parse_retry(
        &mut self,
        meta: &ParseNestedMeta<'_>,
        key: &Ident,
        errors: &mut Errors,
    ) -> syn::Result<()> {
        let retry = if meta.input.peek(syn::token::Paren) {
            let mut retry = RawRetry::default();
            let mut inner = Errors::default();
            RETRY_OPTIONS.parse_nested(meta, &mut retry, &mut inner);
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
        let sqlite_lock = match (&self.deferred, sqlite_lock) {
            (Some(deferred), Some(_)) => {
                errors.push(syn::Error::new(
                    deferred.key,
                    "`deferred` cannot be combined with `immediate` or `exclusive`; keep one of them",
                ));
                None
            }
            (Some(deferred), None) => Some((SqliteLock::Deferred, deferred.key)),
            (None, lock) => lock,
        };
        let isolation = self.isolation.map(|written| written.value);
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
        let krate = krate_or_default(self.krate);
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
            requires_new: self.requires_new.is_some(),
            joinable: self.joinable.is_some(),
            krate,
        })
    }
}

impl RawRetry {
    /// Reads `= N` into `slot`, showing `example` on a malformed value.
    fn parse_count(
        slot: &mut Option<Written<LitInt>>,
        meta: &ParseNestedMeta<'_>,
        key: &Ident,
        example: &str,
        errors: &mut Errors,
    ) -> syn::Result<()> {
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
