//! Helpers every attribute uses: error collection, the item as written, the
//! stand-in emitted on errors, option tables, token helpers.

pub(crate) mod errors;
pub(crate) mod fallback;
pub(crate) mod flavour;
pub(crate) mod item;
pub(crate) mod options;
pub(crate) mod tokens;
