//! PostgreSQL: `BEGIN ISOLATION LEVEL .. READ ONLY` and the hold-time budget as
//! `SET LOCAL idle_in_transaction_session_timeout`, in one round trip.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::Duration;

use diesel::PgConnection;

use super::{unsupported, BackendKind, IdleTimeoutSupport, PoolableConnection, ServerTraits};
use crate::error::Error;
use crate::options::UnitOptions;

impl PoolableConnection for PgConnection {
    const KIND: BackendKind = BackendKind::Postgres;

    // Every supported PostgreSQL (9.6+) has idle_in_transaction_session_timeout.
    const IDLE_TIMEOUT: IdleTimeoutSupport = IdleTimeoutSupport::Always;

    fn budget_setup_sql(budget: Duration) -> Option<String> {
        Some(format!(
            "SET idle_in_transaction_session_timeout = {}",
            millis_for_server(budget)
        ))
    }

    fn begin_sql(
        options: &UnitOptions,
        budget: Option<Duration>,
        server: ServerTraits,
    ) -> Result<Cow<'static, str>, Error> {
        if options.sqlite_lock_mode().is_some() {
            return Err(unsupported(
                BackendKind::Postgres,
                "a SQLite lock mode",
                "remove `immediate` / `exclusive`; PostgreSQL takes row locks with `SELECT .. FOR UPDATE`",
            ));
        }
        if options.isolation_level().is_none() && !options.is_read_only() && budget.is_none() {
            return Ok(Cow::Borrowed(Self::PLAIN_BEGIN));
        }
        let mut sql = String::from("BEGIN");
        if let Some(level) = options.isolation_level() {
            let _ = write!(sql, " ISOLATION LEVEL {}", level.as_sql());
        }
        if options.is_read_only() {
            sql.push_str(" READ ONLY");
        }
        if let (Some(budget), true) = (budget, server.idle_transaction_timeout) {
            let _ = write!(
                sql,
                "; SET LOCAL idle_in_transaction_session_timeout = {}",
                millis_for_server(budget)
            );
        }
        Ok(Cow::Owned(sql))
    }
}

/// Whole milliseconds, at least 1 (PostgreSQL reads 0 as "no timeout") and at
/// most the largest timeout it accepts, 2^31 - 1 ms (about 24.8 days): a longer
/// budget is refused ("Value exceeds integer range"), which would fail every
/// `BEGIN` of the unit, or every connect for a factory budget.
fn millis_for_server(duration: Duration) -> u128 {
    duration.as_millis().clamp(1, i32::MAX as u128)
}
