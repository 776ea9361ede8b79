//! MySQL and MariaDB: `SET TRANSACTION ISOLATION LEVEL` then
//! `START TRANSACTION [READ ONLY]`; on MariaDB the hold-time budget becomes
//! `idle_transaction_timeout` (whole seconds). MySQL has no such limit.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::Duration;

use diesel::MysqlConnection;

use super::{unsupported, BackendKind, IdleTimeoutSupport, PoolableConnection, ServerTraits};
use crate::error::Error;
use crate::options::UnitOptions;

impl PoolableConnection for MysqlConnection {
    const KIND: BackendKind = BackendKind::Mysql;

    // MariaDB 10.3+ knows this variable; MySQL answers "Unknown system variable".
    const IDLE_TIMEOUT: IdleTimeoutSupport =
        IdleTimeoutSupport::IfAccepted("SET @dbscope_probe = @@session.idle_transaction_timeout");

    fn budget_setup_sql(budget: Duration) -> Option<String> {
        Some(format!(
            "SET SESSION idle_transaction_timeout = {}",
            whole_seconds_at_least_one(budget)
        ))
    }

    fn budget_reset_sql() -> Option<String> {
        Some("SET SESSION idle_transaction_timeout = DEFAULT".to_owned())
    }

    const BUDGET_OVERRIDE_IS_LOCAL: bool = false;

    const PLAIN_BEGIN: &'static str = "START TRANSACTION";

    fn begin_sql(
        options: &UnitOptions,
        budget: Option<Duration>,
        server: ServerTraits,
    ) -> Result<Cow<'static, str>, Error> {
        if options.sqlite_lock_mode().is_some() {
            return Err(unsupported(
                BackendKind::Mysql,
                "a SQLite lock mode",
                "remove `immediate` / `exclusive`; MySQL takes row locks with `SELECT .. FOR UPDATE`",
            ));
        }
        if options.isolation_level().is_none() && !options.is_read_only() && budget.is_none() {
            return Ok(Cow::Borrowed(Self::PLAIN_BEGIN));
        }
        let mut sql = String::new();
        if let (Some(budget), true) = (budget, server.idle_transaction_timeout) {
            let _ = write!(
                sql,
                "SET SESSION idle_transaction_timeout = {}; ",
                whole_seconds_at_least_one(budget)
            );
        }
        if let Some(level) = options.isolation_level() {
            let _ = write!(sql, "SET TRANSACTION ISOLATION LEVEL {}; ", level.as_sql());
        }
        sql.push_str("START TRANSACTION");
        if options.is_read_only() {
            sql.push_str(" READ ONLY");
        }
        Ok(Cow::Owned(sql))
    }
}

/// Whole seconds, rounded up, at least one (MariaDB reads 0 as "no timeout"),
/// and no overflow for `Duration::MAX`: MariaDB clamps values above its
/// maximum (one year) itself.
fn whole_seconds_at_least_one(duration: Duration) -> u64 {
    duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0))
        .max(1)
}
