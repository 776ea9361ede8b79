//! Units of work whose `COMMIT` reply the fault proxy drops, and the truth
//! about them: what each unit reported against the rows the server holds.
//!
//! Each unit inserts one row `(k)` into a table without a key, so a unit
//! that runs twice leaves two rows. Its body arms the proxy to drop the reply
//! to the next `COMMIT` (the one of this attempt: units run one at a time),
//! once per unit, so a retry commits normally.
//!
//! Shared by the `commit_faults` integration tests and
//! `benches/commit_faults.rs` (included there by path).

#![allow(dead_code)] // each includer uses a part

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use dbscope::{
    AsyncPoolableConnection, AsyncSessionFactory, Error, PoolableConnection, RetryPolicy,
    SessionFactory, UnitOptions,
};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::fault_proxy::{Fault, FaultProxy};

/// What a unit said about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    /// `Ok`: committed.
    Committed,
    /// An error saying the transaction was rolled back / nothing committed.
    RolledBack(String),
    /// An error saying the outcome is unknown (may or may not have committed).
    Unknown(String),
    /// Any other error: the caller has to assume it failed.
    Failed(String),
}

impl Report {
    pub fn of<T>(outcome: &Result<T, Error>) -> Self {
        let Err(error) = outcome else {
            return Report::Committed;
        };
        let text = error.to_string();
        let lower = text.to_lowercase();
        if lower.contains("may or may not have committed") || lower.contains("outcome is unknown") {
            Report::Unknown(text)
        } else if lower.contains("rolled back") || lower.contains("nothing was committed") {
            Report::RolledBack(text)
        } else {
            Report::Failed(text)
        }
    }

    /// Whether the report is true of a unit that left `rows` rows.
    pub fn is_truthful(&self, rows: i64) -> bool {
        match self {
            Report::Committed => rows == 1,
            Report::Unknown(_) => rows <= 1,
            Report::RolledBack(_) | Report::Failed(_) => rows == 0,
        }
    }
}

/// Units reported against rows found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub units: usize,
    /// Rows beyond the first for a key: a unit applied twice.
    pub duplicates: i64,
    /// Units whose report contradicts the rows.
    pub misreported: usize,
    pub committed: usize,
    pub rolled_back: usize,
    pub unknown: usize,
    pub failed: usize,
    /// Keys with no row.
    pub absent: usize,
}

impl Tally {
    pub fn of(reports: &[(i64, Report)], rows: &HashMap<i64, i64>) -> Self {
        let mut tally = Tally::default();
        for (k, report) in reports {
            let n = rows.get(k).copied().unwrap_or(0);
            tally.units += 1;
            tally.duplicates += (n - 1).max(0);
            tally.misreported += usize::from(!report.is_truthful(n));
            tally.absent += usize::from(n == 0);
            match report {
                Report::Committed => tally.committed += 1,
                Report::RolledBack(_) => tally.rolled_back += 1,
                Report::Unknown(_) => tally.unknown += 1,
                Report::Failed(_) => tally.failed += 1,
            }
        }
        tally
    }
}

/// `(k, rows)` read back.
#[derive(QueryableByName)]
struct KeyRows {
    #[diesel(sql_type = BigInt)]
    k: i64,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// A server backend of the commit scenarios.
pub trait CommitServer: 'static {
    type Conn: PoolableConnection;
    type Async: AsyncPoolableConnection;
    const NAME: &'static str;
    /// The type `CAST(.. AS ?)` needs for a 64-bit integer.
    const BIGINT: &'static str;

    /// Rows per key in `table`, read on `conn`.
    fn rows_per_key(conn: &mut Self::Conn, table: &str) -> HashMap<i64, i64>;
}

macro_rules! rows_per_key_impl {
    () => {
        fn rows_per_key(conn: &mut Self::Conn, table: &str) -> HashMap<i64, i64> {
            let sql = format!(
                "SELECT CAST(k AS {b}) AS k, CAST(COUNT(*) AS {b}) AS n FROM {table} GROUP BY k",
                b = Self::BIGINT
            );
            diesel::sql_query(sql)
                .load::<KeyRows>(conn)
                .expect("rows per key")
                .into_iter()
                .map(|row| (row.k, row.n))
                .collect()
        }
    };
}

#[cfg(feature = "postgres")]
pub struct PgServer;

#[cfg(feature = "postgres")]
impl CommitServer for PgServer {
    type Conn = diesel::PgConnection;
    type Async = diesel_async::AsyncPgConnection;
    const NAME: &'static str = "pg";
    const BIGINT: &'static str = "BIGINT";
    rows_per_key_impl!();
}

#[cfg(feature = "mysql")]
pub struct MyServer;

#[cfg(feature = "mysql")]
impl CommitServer for MyServer {
    type Conn = diesel::MysqlConnection;
    type Async = diesel_async::AsyncMysqlConnection;
    const NAME: &'static str = "my";
    const BIGINT: &'static str = "SIGNED";
    rows_per_key_impl!();
}

/// (Re)creates `table` as `(k INTEGER NOT NULL)`, no key.
pub fn create_log_table<S: CommitServer>(url: &str, table: &str) {
    let mut conn = S::Conn::establish(url).unwrap_or_else(|e| panic!("connect {url}: {e}"));
    conn.batch_execute(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (k INTEGER NOT NULL)"
    ))
    .expect("create the log table");
}

/// Rows per key in `table`, read directly from the server at `url`.
pub fn rows_per_key<S: CommitServer>(url: &str, table: &str) -> HashMap<i64, i64> {
    let mut conn = S::Conn::establish(url).unwrap_or_else(|e| panic!("connect {url}: {e}"));
    S::rows_per_key(&mut conn, table)
}

/// A multi-thread runtime with I/O for the async drivers
/// (`support::tokio_runtime` has only the time driver).
pub fn io_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub fn options(retry: bool) -> UnitOptions {
    let options = UnitOptions::new("it::commit_reply_lost");
    if retry {
        options.retry(RetryPolicy::attempts(3))
    } else {
        options
    }
}

fn insert_sql(table: &str, k: i64) -> String {
    format!("INSERT INTO {table} (k) VALUES ({k})")
}

/// One blocking unit inserting `k` whose first `COMMIT` reply is dropped;
/// returns its report and how many times its body ran.
pub fn blocking_unit_losing_commit<C: PoolableConnection>(
    factory: &SessionFactory<C>,
    proxy: &FaultProxy,
    table: &str,
    k: i64,
    retry: bool,
) -> (Report, u32) {
    let attempts = AtomicU32::new(0);
    let outcome = factory.run(&options(retry), |s| {
        s.batch_execute(&insert_sql(table, k))?;
        if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
            proxy.arm("COMMIT", Fault::DropReply);
        }
        Ok::<_, Error>(())
    });
    proxy.disarm();
    (Report::of(&outcome), attempts.load(Ordering::SeqCst))
}

/// The native async twin of [`blocking_unit_losing_commit`].
pub async fn native_unit_losing_commit<A: AsyncPoolableConnection>(
    factory: &AsyncSessionFactory<A>,
    proxy: &FaultProxy,
    table: &str,
    k: i64,
    retry: bool,
) -> (Report, u32) {
    let attempts = AtomicU32::new(0);
    let sql = insert_sql(table, k);
    let outcome = factory
        .run(&options(retry), async |conn: &mut A| {
            conn.batch_execute(&sql).await?;
            if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                proxy.arm("COMMIT", Fault::DropReply);
            }
            Ok::<_, Error>(())
        })
        .await;
    proxy.disarm();
    (Report::of(&outcome), attempts.load(Ordering::SeqCst))
}
