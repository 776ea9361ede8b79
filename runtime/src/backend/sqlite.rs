//! SQLite: `BEGIN DEFERRED | IMMEDIATE | EXCLUSIVE`, read-only through
//! `PRAGMA query_only`, always serializable.

use std::borrow::Cow;
use std::time::Duration;

use diesel::SqliteConnection;

use super::{unsupported, BackendKind, PoolableConnection, ServerTraits};
use crate::error::Error;
use crate::options::{Isolation, SqliteLock, UnitOptions};

impl PoolableConnection for SqliteConnection {
    const KIND: BackendKind = BackendKind::Sqlite;
    /// A unit that may write takes the write lock at `BEGIN`, where the busy
    /// timeout applies. A deferred transaction that reads and then writes
    /// cannot wait for the lock: SQLite answers `database is locked` at its
    /// first write, whatever the busy timeout says.
    const PLAIN_BEGIN: &'static str = "BEGIN IMMEDIATE";

    fn begin_sql(
        options: &UnitOptions,
        _budget: Option<Duration>,
        _server: ServerTraits,
    ) -> Result<Cow<'static, str>, Error> {
        match options.isolation_level() {
            None | Some(Isolation::Serializable) => {}
            Some(other) => {
                return Err(unsupported(
                    BackendKind::Sqlite,
                    &format!("isolation `{}`", other.as_sql()),
                    "SQLite transactions are always serializable: drop the option or ask for `serializable`",
                ))
            }
        }
        let begin = match options.sqlite_lock_mode() {
            // Read-only units take no write lock: readers stay concurrent.
            None if options.is_read_only() => "BEGIN DEFERRED",
            None => Self::PLAIN_BEGIN,
            Some(SqliteLock::Deferred) => "BEGIN DEFERRED",
            Some(SqliteLock::Immediate) => "BEGIN IMMEDIATE",
            Some(SqliteLock::Exclusive) => "BEGIN EXCLUSIVE",
        };
        Ok(if options.is_read_only() {
            Cow::Owned(format!("{begin}; PRAGMA query_only = ON"))
        } else {
            Cow::Borrowed(begin)
        })
    }

    fn default_setup_sql(in_memory: bool) -> Vec<String> {
        let mut setup = vec![
            "PRAGMA busy_timeout = 5000".to_owned(),
            "PRAGMA foreign_keys = ON".to_owned(),
        ];
        if !in_memory {
            setup.push("PRAGMA journal_mode = WAL".to_owned());
            setup.push("PRAGMA synchronous = NORMAL".to_owned());
        }
        setup
    }

    fn end_sql(options: &UnitOptions) -> Option<&'static str> {
        options.is_read_only().then_some("PRAGMA query_only = OFF")
    }
}
