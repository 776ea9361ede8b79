//! `#[unit_of_work]` on `async fn`s whose session is a diesel-async connection
//! (feature `async`): the body awaits its queries inside the transaction.
//! The scenarios of the blocking flavour (commit, rollback on error and on
//! panic, retry, isolation and read-only, hold-time warning, stale
//! connections, checkout timeout) through `#[unit_of_work]`. The shared
//! semantics (and cancellation at chosen await points) are in `scenarios.rs`.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dbscope::{
    unit_of_work, AsyncPoolableConnection, AsyncSessionFactory, Error, Phase, Validation,
};
use diesel::QueryResult;
use diesel_async::SimpleAsyncConnection;

use crate::support::{Backend, Ctx, Scalar, TestError};
use crate::uow_support::Recorder;

crate::all_backends!([
    native_commits_and_rolls_back,
    native_panic_rolls_back_and_closes_the_connection,
    native_read_only_is_honoured,
    native_budget_warning,
    native_stale_connection_is_never_handed_out,
    native_checkout_times_out,
    native_retries_a_transient_error,
    native_nested_unit_fails_fast,
]);

/// What the scenarios need of each backend's async connection.
pub trait Native: Backend {
    type Async: AsyncPoolableConnection;

    /// One `BIGINT` column named `n` of the first row.
    fn query_n<'c>(
        conn: &'c mut Self::Async,
        sql: String,
    ) -> impl Future<Output = QueryResult<i64>> + Send + 'c;

    /// A statement that waits `ms` milliseconds on the server.
    fn sleep_sql(ms: u64) -> String;

    /// A statement that fails with a transient error (serialization failure
    /// or deadlock), as the server reports it.
    fn transient_failure_sql() -> Option<&'static str>;

    /// Ends the server session `id` from another connection.
    fn kill(ctx: &Ctx<Self>, id: i64);

    /// How many server sessions among `ids` have a transaction open.
    fn open_transactions(ctx: &Ctx<Self>, ids: &[i64]) -> i64;
}

macro_rules! scalar_impl {
    () => {
        fn query_n<'c>(
            conn: &'c mut Self::Async,
            sql: String,
        ) -> impl Future<Output = QueryResult<i64>> + Send + 'c {
            async move {
                use diesel_async::RunQueryDsl;
                diesel::sql_query(sql)
                    .get_result::<Scalar>(conn)
                    .await
                    .map(|row| row.n)
            }
        }
    };
}

impl Native for crate::support::Sqlite {
    type Async =
        diesel_async::sync_connection_wrapper::SyncConnectionWrapper<diesel::SqliteConnection>;
    scalar_impl!();

    fn sleep_sql(_ms: u64) -> String {
        // No server to wait on: a cheap statement; the scenarios sleep on
        // the client side where they need time to pass.
        "SELECT 1".to_owned()
    }

    fn transient_failure_sql() -> Option<&'static str> {
        None
    }

    fn kill(_ctx: &Ctx<Self>, _id: i64) {}

    fn open_transactions(_ctx: &Ctx<Self>, _ids: &[i64]) -> i64 {
        0
    }
}

#[cfg(feature = "postgres")]
impl Native for crate::support::Postgres {
    type Async = diesel_async::AsyncPgConnection;
    scalar_impl!();

    fn sleep_sql(ms: u64) -> String {
        format!("SELECT pg_sleep({})", ms as f64 / 1000.0)
    }

    fn transient_failure_sql() -> Option<&'static str> {
        Some(
            "DO $$ BEGIN RAISE EXCEPTION 'could not serialize access due to concurrent update' \
             USING ERRCODE = '40001'; END $$",
        )
    }

    fn kill(ctx: &Ctx<Self>, id: i64) {
        let mut conn = ctx.plain();
        Self::scalar_blocking(
            &mut conn,
            &format!("SELECT CAST(COUNT(pg_terminate_backend({id})) AS BIGINT) AS n"),
        );
    }

    fn open_transactions(ctx: &Ctx<Self>, ids: &[i64]) -> i64 {
        if ids.is_empty() {
            return 0;
        }
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        Self::scalar_blocking(
            &mut ctx.plain(),
            &format!(
                "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE pid IN ({list}) \
                 AND xact_start IS NOT NULL"
            ),
        )
    }
}

#[cfg(feature = "mysql")]
impl Native for crate::support::Mysql {
    type Async = diesel_async::AsyncMysqlConnection;
    scalar_impl!();

    fn sleep_sql(ms: u64) -> String {
        format!("SELECT CAST(SLEEP({}) AS SIGNED) AS n", ms as f64 / 1000.0)
    }

    fn transient_failure_sql() -> Option<&'static str> {
        Some("SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = 'Deadlock found when trying to get lock; try restarting transaction'")
    }

    fn kill(ctx: &Ctx<Self>, id: i64) {
        use diesel::connection::SimpleConnection;
        let _ = ctx.plain().batch_execute(&format!("KILL {id}"));
    }

    fn open_transactions(ctx: &Ctx<Self>, ids: &[i64]) -> i64 {
        if ids.is_empty() {
            return 0;
        }
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        // InnoDB serves this view from a cache refreshed only when it was
        // last read over 100 ms ago: wait that long first.
        let mut conn = ctx.plain();
        Self::scalar_blocking(&mut conn, "SELECT CAST(SLEEP(0.15) AS SIGNED) AS n");
        Self::scalar_blocking(
            &mut conn,
            &format!(
                "SELECT COUNT(*) AS n FROM information_schema.innodb_trx \
                 WHERE trx_mysql_thread_id IN ({list})"
            ),
        )
    }
}

/// A blocking read on a plain connection.
trait ScalarBlocking: Backend {
    fn scalar_blocking(conn: &mut Self::Conn, sql: &str) -> i64 {
        Self::scalar(conn, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl<B: Backend> ScalarBlocking for B {}

/// A multi-thread runtime with I/O (the async drivers) and time.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn factory<B: Native>(ctx: &Ctx<B>, max_size: usize) -> AsyncSessionFactory<B::Async> {
    AsyncSessionFactory::builder(ctx.url())
        .max_size(max_size)
        .build()
        .expect("async factory")
}

fn connection_id_sql<B: Native>() -> &'static str {
    match B::NAME {
        "sqlite" => "SELECT 0 AS n",
        _ => B::CONNECTION_ID_SQL,
    }
}

#[unit_of_work(factory = db)]
async fn insert<B: Native>(
    db: &AsyncSessionFactory<B::Async>,
    #[session(async)] conn: &mut B::Async,
    table: &str,
    id: i64,
) -> Result<i64, Error> {
    conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES ({id}, 1)"))
        .await?;
    let n = B::query_n(conn, format!("SELECT COUNT(*) AS n FROM {table}")).await?;
    Ok(n)
}

#[unit_of_work(factory = db)]
async fn insert_then_refuse<B: Native>(
    db: &AsyncSessionFactory<B::Async>,
    #[session(async)] conn: &mut B::Async,
    table: &str,
    id: i64,
) -> Result<(), TestError> {
    conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES ({id}, 1)"))
        .await?;
    Err(TestError::Business("refused after the insert"))
}

fn native_commits_and_rolls_back<B: Native>(ctx: &Ctx<B>) {
    let factory = factory(ctx, 1);
    let table = ctx.table.clone();
    let (committed, refused) = runtime().block_on(async {
        let committed = insert::<B>(&factory, &table, 1).await;
        let refused = insert_then_refuse::<B>(&factory, &table, 2).await;
        (committed, refused)
    });
    assert_eq!(committed.expect("commits"), 1, "the unit saw its own row");
    assert!(
        matches!(refused, Err(TestError::Business(_))),
        "{refused:?}"
    );
    assert!(ctx.has_row(1), "committed: visible to another session");
    assert!(!ctx.has_row(2), "a refused unit left its row");
    let stats = factory.stats();
    assert_eq!((stats.in_use, stats.closed_dirty), (0, 0), "{stats:?}");
}

#[unit_of_work(factory = db)]
async fn insert_then_panic<B: Native>(
    db: &AsyncSessionFactory<B::Async>,
    #[session(async)] conn: &mut B::Async,
    table: &str,
) -> Result<(), Error> {
    conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES (7, 1)"))
        .await?;
    panic!("boom after the insert");
}

fn native_panic_rolls_back_and_closes_the_connection<B: Native>(ctx: &Ctx<B>) {
    let factory = factory(ctx, 1);
    let runtime = runtime();
    let (f, table) = (factory.clone(), ctx.table.clone());
    let joined =
        runtime.block_on(runtime.spawn(async move { insert_then_panic::<B>(&f, &table).await }));
    assert!(joined.is_err_and(|e| e.is_panic()), "the task panicked");
    assert!(
        !ctx.has_row(7),
        "the panicking unit's insert was rolled back"
    );
    let stats = factory.stats();
    assert_eq!((stats.in_use, stats.closed_dirty), (0, 1), "{stats:?}");
    // The pool of one still works.
    let n = runtime
        .block_on(insert::<B>(&factory, &ctx.table, 8))
        .expect("next unit");
    assert_eq!(n, 1);
}

#[unit_of_work(factory = db, read_only)]
async fn write_in_read_only<B: Native>(
    db: &AsyncSessionFactory<B::Async>,
    #[session(async)] conn: &mut B::Async,
    table: &str,
) -> Result<(), Error> {
    conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES (3, 1)"))
        .await?;
    Ok(())
}

#[unit_of_work(factory = db, isolation = serializable)]
async fn isolation_seen<B: Native>(
    db: &AsyncSessionFactory<B::Async>,
    #[session(async)] conn: &mut B::Async,
    table: &str,
) -> Result<i64, Error> {
    let sql = match B::NAME {
        "pg" => "SELECT CAST(CASE WHEN current_setting('transaction_isolation') = 'serializable' THEN 1 ELSE 0 END AS BIGINT) AS n",
        // InnoDB lists the transaction once it touched a table; its view is
        // refreshed when last read over 100 ms ago.
        "my" => "SELECT CAST(trx_isolation_level = 'SERIALIZABLE' AS SIGNED) AS n \
                 FROM information_schema.innodb_trx WHERE trx_mysql_thread_id = CONNECTION_ID()",
        _ => "SELECT 1 AS n",
    };
    if B::NAME != "my" {
        return Ok(B::query_n(conn, sql.to_owned()).await?);
    }
    B::query_n(conn, format!("SELECT COUNT(*) AS n FROM {table}")).await?;
    let mut tries = 0;
    loop {
        conn.batch_execute("DO SLEEP(0.15)").await?;
        match B::query_n(conn, sql.to_owned()).await {
            Err(diesel::result::Error::NotFound) if tries < 10 => tries += 1,
            other => return Ok(other?),
        }
    }
}

fn native_read_only_is_honoured<B: Native>(ctx: &Ctx<B>) {
    let factory = factory(ctx, 2);
    let runtime = runtime();
    let refused = runtime.block_on(write_in_read_only::<B>(&factory, &ctx.table));
    assert!(refused.is_err(), "a write in a read-only unit fails");
    assert!(!ctx.has_row(3));
    assert_eq!(
        runtime
            .block_on(isolation_seen::<B>(&factory, &ctx.table))
            .expect("isolation"),
        1,
        "the server sees the unit's isolation level"
    );
    // The read-only mode did not leak into the next unit on the same pool.
    runtime
        .block_on(insert::<B>(&factory, &ctx.table, 4))
        .expect("writable again");
    assert_eq!(factory.stats().in_use, 0);
}

#[unit_of_work(factory = db, budget_ms = 50)]
async fn slow_unit<B: Native>(
    db: &AsyncSessionFactory<B::Async>,
    #[session(async)] conn: &mut B::Async,
) -> Result<i64, Error> {
    let waited = B::query_n(conn, connection_id_sql::<B>().to_owned()).await?;
    conn.batch_execute(&B::sleep_sql(120)).await?;
    Ok(waited)
}

fn native_budget_warning<B: Native>(ctx: &Ctx<B>) {
    if B::NAME == "sqlite" {
        return; // nothing to wait on inside a SQLite transaction without a foreign await
    }
    let factory = factory(ctx, 1);
    let recorder = Recorder::default();
    let _guard = tracing::dispatcher::set_default(&recorder.dispatch());
    runtime()
        .block_on(slow_unit::<B>(&factory))
        .expect("slow unit");
    let warnings = recorder.budget_warnings("slow_unit");
    assert_eq!(warnings.len(), 1, "{:?}", recorder.events());
    assert!(warnings[0].number("held_ms").unwrap_or(0) >= 100);
}

#[unit_of_work(factory = db)]
async fn connection_id<B: Native>(
    db: &AsyncSessionFactory<B::Async>,
    #[session(async)] conn: &mut B::Async,
) -> Result<i64, Error> {
    Ok(B::query_n(conn, connection_id_sql::<B>().to_owned()).await?)
}

fn native_stale_connection_is_never_handed_out<B: Native>(ctx: &Ctx<B>) {
    if B::NAME == "sqlite" {
        return; // no server to end the connection
    }
    let factory = AsyncSessionFactory::<B::Async>::builder(ctx.url())
        .max_size(1)
        .validation(Validation::IdleFor(Duration::from_millis(100)))
        .build()
        .expect("factory");
    let runtime = runtime();
    let first = runtime
        .block_on(connection_id::<B>(&factory))
        .expect("first");
    B::kill(ctx, first);
    std::thread::sleep(Duration::from_millis(250));
    let second = runtime
        .block_on(connection_id::<B>(&factory))
        .expect("the killed connection is never handed to user code");
    assert_ne!(first, second);
    let stats = factory.stats();
    assert!(stats.validation_failures >= 1, "{stats:?}");
    // Used again at once: no round trip.
    let validations = stats.validations;
    runtime
        .block_on(connection_id::<B>(&factory))
        .expect("third");
    assert_eq!(factory.stats().validations, validations);
}

#[unit_of_work(factory = db)]
async fn hold<B: Native>(
    db: &AsyncSessionFactory<B::Async>,
    #[session(async)] conn: &mut B::Async,
    ms: u64,
) -> Result<(), Error> {
    conn.batch_execute(&B::sleep_sql(ms)).await?;
    Ok(())
}

fn native_checkout_times_out<B: Native>(ctx: &Ctx<B>) {
    let factory = AsyncSessionFactory::<B::Async>::builder(ctx.url())
        .max_size(1)
        .checkout_timeout(Duration::from_millis(100))
        .build()
        .expect("factory");
    let runtime = runtime();
    let outcome = runtime.block_on(async {
        if B::NAME == "sqlite" {
            // Hold the only connection by hand: a unit that never finishes.
            let f = factory.clone();
            let release = Arc::new(tokio::sync::Notify::new());
            let released = Arc::clone(&release);
            let holder = tokio::spawn(async move {
                let released = &*released;
                let _ = f
                    .run(
                        &dbscope::UnitOptions::new("holder"),
                        async |_conn: &mut B::Async| {
                            released.notified().await;
                            Ok::<(), Error>(())
                        },
                    )
                    .await;
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
            let outcome = hold::<B>(&factory, 0).await;
            release.notify_one();
            holder.await.expect("holder");
            outcome
        } else {
            let (held, timed_out) = tokio::join!(hold::<B>(&factory, 600), async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                hold::<B>(&factory, 0).await
            });
            held.expect("the holder finishes");
            timed_out
        }
    });
    let error = outcome.expect_err("a second unit cannot get the only connection");
    assert_eq!(error.phase(), Phase::CheckoutTimeout, "{error}");
    assert_eq!(factory.stats().checkout_timeouts, 1);
}

static ATTEMPTS: AtomicU32 = AtomicU32::new(0);

#[unit_of_work(factory = db, retry = 3)]
async fn fails_once<B: Native>(
    db: &AsyncSessionFactory<B::Async>,
    #[session(async)] conn: &mut B::Async,
    table: &str,
) -> Result<u32, Error> {
    let attempt = ATTEMPTS.fetch_add(1, Ordering::SeqCst) + 1;
    conn.batch_execute(&format!(
        "INSERT INTO {table} (id, v) VALUES ({attempt}, 1)"
    ))
    .await?;
    if attempt == 1 {
        if let Some(sql) = B::transient_failure_sql() {
            conn.batch_execute(sql).await?;
        }
    }
    Ok(attempt)
}

fn native_retries_a_transient_error<B: Native>(ctx: &Ctx<B>) {
    let Some(_) = B::transient_failure_sql() else {
        return;
    };
    let _serial = RETRY_SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    ATTEMPTS.store(0, Ordering::SeqCst);
    let factory = factory(ctx, 1);
    let attempt = runtime()
        .block_on(fails_once::<B>(&factory, &ctx.table))
        .expect("retried");
    assert_eq!(attempt, 2, "the second attempt committed");
    assert!(!ctx.has_row(1), "the failed attempt rolled back");
    assert!(ctx.has_row(2));
    assert_eq!(factory.stats().unit_retries, 1);
}

/// `ATTEMPTS` is shared by the backends' instances of the retry scenario.
static RETRY_SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A helper that is passed the session (so the macro accepts its `.await`)
/// but opens a unit of work of its own on the same factory.
async fn sneaky_helper<B: Native>(
    _conn: &mut B::Async,
    db: &AsyncSessionFactory<B::Async>,
) -> Result<i64, Error> {
    connection_id::<B>(db).await
}

#[unit_of_work(factory = db)]
async fn outer_unit<B: Native>(
    db: &AsyncSessionFactory<B::Async>,
    #[session(async)] conn: &mut B::Async,
) -> Result<i64, Error> {
    sneaky_helper::<B>(conn, db).await
}

fn native_nested_unit_fails_fast<B: Native>(ctx: &Ctx<B>) {
    let factory = AsyncSessionFactory::<B::Async>::builder(ctx.url())
        .max_size(1)
        .checkout_timeout(Duration::from_secs(10))
        .build()
        .expect("factory");
    let started = std::time::Instant::now();
    let error = runtime()
        .block_on(outer_unit::<B>(&factory))
        .expect_err("a nested unit on a pool of one");
    assert_eq!(error.phase(), Phase::Nesting, "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed fast, not at the checkout timeout"
    );
    let stats = factory.stats();
    assert_eq!((stats.in_use, stats.checkout_timeouts), (0, 0), "{stats:?}");
}

/// PostgreSQL ends a native unit's transaction left idle past its
/// `budget_ms` (`SET LOCAL idle_in_transaction_session_timeout` in the BEGIN
/// batch): the unit fails with a lost connection and the pool does not reuse
/// it. (A blocking sleep passes the await check; it stands for CPU-bound work.)
#[cfg(feature = "postgres")]
mod budget_enforced {
    use std::time::Duration;

    use dbscope::{unit_of_work, AsyncSessionFactory, Error};
    use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};

    use crate::support::Postgres;

    #[unit_of_work(factory = db, budget_ms = 100)]
    async fn idle_too_long(
        db: &AsyncSessionFactory<AsyncPgConnection>,
        conn: &mut AsyncPgConnection,
        table: &str,
    ) -> Result<(), Error> {
        conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES (1, 1)"))
            .await?;
        tokio::task::block_in_place(|| std::thread::sleep(Duration::from_millis(400)));
        conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES (2, 1)"))
            .await?;
        Ok(())
    }

    #[test]
    fn native_budget_is_enforced_by_postgres() {
        crate::support::run::<Postgres>("native_budget_enforced", |ctx| {
            let factory = AsyncSessionFactory::<AsyncPgConnection>::builder(ctx.url())
                .max_size(1)
                .build()
                .expect("factory");
            let runtime = super::runtime();
            let error = runtime
                .block_on(idle_too_long(&factory, &ctx.table))
                .expect_err("the server ended the idle transaction");
            assert!(error.is_transient(), "a lost connection: {error}");
            assert!(!ctx.has_row(1), "nothing committed");
            let stats = factory.stats();
            assert_eq!((stats.in_use, stats.closed_dirty), (0, 1), "{stats:?}");
        });
    }
}

/// Two SERIALIZABLE native units read both rows, meet, then each bumps one
/// row: a write skew PostgreSQL refuses for one of them (40001, a real
/// conflict). With `retry`, both succeed, as if one ran after the other.
#[cfg(feature = "postgres")]
mod write_skew {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    use dbscope::{unit_of_work, AsyncSessionFactory, Error};
    use diesel::connection::SimpleConnection as _;
    use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};

    use super::Native;
    use crate::support::{Backend, Postgres};

    // The loser's retries fail for as long as they start before the winner's
    // COMMIT lands (the winner read its row first); on a loaded machine that
    // took more than 5 attempts once (seen 2026-12-02), so allow 10.
    #[unit_of_work(factory = db, isolation = serializable, retry = 10)]
    async fn bump(
        db: &AsyncSessionFactory<AsyncPgConnection>,
        conn: &mut AsyncPgConnection,
        table: &str,
        row: i64,
        barrier: &Barrier,
        first_attempt: &AtomicBool,
        attempts: &AtomicUsize,
    ) -> Result<i64, Error> {
        attempts.fetch_add(1, Ordering::SeqCst);
        let sum = Postgres::query_n(
            conn,
            format!("SELECT CAST(SUM(v) AS BIGINT) AS n FROM {table}"),
        )
        .await?;
        if first_attempt.swap(false, Ordering::SeqCst) {
            // A blocking rendezvous (no `.await` on foreign work in a unit).
            tokio::task::block_in_place(|| barrier.wait());
        }
        conn.batch_execute(&format!("UPDATE {table} SET v = v + 1 WHERE id = {row}"))
            .await?;
        Ok(sum)
    }

    #[test]
    fn native_serialization_failure_is_retried() {
        crate::support::run::<Postgres>("native_serialization_retry", |ctx| {
            ctx.plain()
                .batch_execute(&format!(
                    "{}; {}",
                    ctx.insert_sql(1, 0),
                    ctx.insert_sql(2, 0)
                ))
                .expect("seed");
            let factory = AsyncSessionFactory::<AsyncPgConnection>::builder(ctx.url())
                .max_size(2)
                .build()
                .expect("factory");
            let barrier = Arc::new(Barrier::new(2));
            let attempts = Arc::new(AtomicUsize::new(0));
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(4)
                .enable_all()
                .build()
                .expect("runtime");
            let tasks: Vec<_> = [1, 2]
                .into_iter()
                .map(|row| {
                    let (f, table, barrier, attempts) = (
                        factory.clone(),
                        ctx.table.clone(),
                        Arc::clone(&barrier),
                        Arc::clone(&attempts),
                    );
                    runtime.spawn(async move {
                        let first = AtomicBool::new(true);
                        bump(&f, &table, row, &barrier, &first, &attempts).await
                    })
                })
                .collect();
            let mut sums: Vec<i64> = tasks
                .into_iter()
                .map(|t| {
                    runtime
                        .block_on(t)
                        .expect("task")
                        .expect("succeeds after retrying")
                })
                .collect();
            let stats = factory.stats();
            assert!(
                stats.unit_retries >= 1,
                "no serialization failure was retried: {stats:?}"
            );
            assert!(attempts.load(Ordering::SeqCst) >= 3, "{stats:?}");
            assert_eq!(stats.in_use, 0, "{stats:?}");
            sums.sort_unstable();
            assert_eq!(
                sums,
                vec![0, 1],
                "serializable: as if one ran after the other"
            );
            for row in [1, 2] {
                let v = Postgres::scalar(
                    &mut ctx.plain(),
                    &format!(
                        "SELECT CAST(v AS BIGINT) AS n FROM {} WHERE id = {row}",
                        ctx.table
                    ),
                );
                assert_eq!(v.unwrap(), 1, "row {row} bumped exactly once");
            }
        });
    }
}
