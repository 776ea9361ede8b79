//! Parse phase of `#[detach_ids(...)]`: `factory = <expr>` (needed by
//! `#[load]` parameters) and `crate = path`, read through one table with the
//! helpers `#[unit_of_work]` uses, so duplicates, unknown keys and malformed
//! values read the same.

use proc_macro2::TokenStream;
use syn::{Expr, Path};

use crate::shared::errors::Errors;
use crate::shared::options::{
    krate_or_default, set_crate, set_factory, OptionSpec, OptionTable, Written,
};

/// The options `#[detach_ids]` accepts, in the order the docs list them.
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
            key: "crate",
            parse: |raw, meta, key, errors| set_crate(&mut raw.krate, meta, key, errors),
        },
    ],
    unknown: |key, valid| {
        let hint = if key == "allow" {
            "; to exempt one parameter, mark it `#[allow_attached]`"
        } else {
            ""
        };
        format!("unknown option `{key}`; valid options are {valid}{hint}")
    },
};

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
        if !OPTIONS.parse_args(args, &mut raw, errors) {
            raw.factory_attempted = true;
        }
        raw
    }

    /// The options; nothing here can conflict, so this cannot fail.
    pub(crate) fn build(self) -> Options {
        Options {
            factory: self.factory.map(|written| written.value),
            factory_attempted: self.factory_attempted,
            krate: krate_or_default(self.krate),
        }
    }
}
