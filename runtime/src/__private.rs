//! The one door generated code goes through. Not a public API: names here
//! change without notice.

#[cfg(feature = "async")]
pub use crate::async_factory::AsyncSessionSource;
pub use crate::factory::SessionSource;
pub use crate::id::load_by_id;
pub use crate::join::join_unit;
#[cfg(feature = "async")]
pub use crate::join::join_unit_native;
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
pub use crate::unit_block_in_place::{run_unit_async, run_unit_async_retrying};
#[cfg(feature = "async")]
pub use crate::unit_native::{run_unit_native, run_unit_native_retrying};
pub use core;

/// What `#[detach_ids]` expansions use: probes, verdicts and the load unit.
pub mod detach {
    #[cfg(feature = "tokio")]
    pub use crate::detach::load_async;
    pub use crate::detach::probes;
    pub use crate::detach::{
        fail, load, Accepted, ConnectionField, ConnectionParam, ConnectionReturn, ConnectionToken,
        IsSession, LoadResult, PooledField, PooledParam, PooledReturn, PooledToken, Probe,
        RowField, RowParam, RowReturn, RowToken, SessionField, SessionParam, SessionReturn,
        SessionToken,
    };
}
pub use std;
