//! The one door generated code goes through. Not a public API: names here
//! change without notice.

pub use crate::factory::SessionSource;
pub use crate::macro_support::{
    require_isolation_levels, require_sqlite_locking, unit, unit_retrying, SupportsIsolationLevels,
    SupportsSqliteLocking, UnitResult,
};
#[cfg(feature = "tokio")]
pub use crate::macro_support::{unit_async, unit_async_retrying};
pub use crate::options::{Isolation, RetryPolicy, SqliteLock, UnitOptions};
pub use crate::session::Session;
pub use crate::unit::{run_unit, run_unit_retrying};
#[cfg(feature = "tokio")]
pub use crate::unit_async::{run_unit_async, run_unit_async_retrying};
pub use core;
pub use std;
