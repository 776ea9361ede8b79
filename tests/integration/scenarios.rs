//! The semantics of a unit of work, written once and run by two drivers: the
//! blocking flavour (`SessionFactory::run`) and the native async flavour
//! (`AsyncSessionFactory::run` over diesel-async), on SQLite, PostgreSQL and
//! MariaDB. A scenario describes the unit's body as a [`Script`] of steps; each
//! driver interprets the script on its own connection type, so both flavours
//! are held to the same assertions.
//!
//! Instantiated as `scenarios::<backend>::<flavour>::<scenario>`.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dbscope::{
    AsyncSessionFactory, Error, Phase, PoolStats, RetryPolicy, SessionFactory, UnitOptions,
};
use diesel::connection::SimpleConnection;

use crate::support::{Backend, Ctx, TestError};
use crate::uow_native::Native;
use crate::uow_support::Recorder;

/// One step of a unit's body.
pub enum Step {
    /// Runs a statement; its error ends the body (`?`).
    Exec(String),
    /// Runs a statement and ignores its error (`let _ = ..`).
    ExecIgnoringError(String),
    /// Runs a statement in a savepoint (`conn.transaction(..)`) and ignores
    /// the savepoint's error.
    ExecInSavepointIgnoringError(String),
    /// Ends the body with `Ok(0)` before the result query.
    ReturnEarly,
    /// Opens a nested transaction level and never ends it.
    OpenLevel,
    /// Ends the body with a business error.
    Fail,
    /// Panics.
    Panic,
    /// Fails with a transient error (serialization failure or deadlock, as
    /// the server reports it) when the counter, bumped here, was 0.
    TransientOnFirstAttempt(Arc<AtomicU32>),
    /// Runs a unit of work on the same factory inside this one.
    Nest,
    /// Waits, holding the session, without touching it.
    Sleep(Duration),
    /// Signals the test and waits forever (native flavour): the test drops the
    /// unit's future at this await point.
    Pause(Arc<tokio::sync::Notify>),
}

/// A unit's body: its steps, then a query whose `n` is the unit's result.
pub struct Script {
    pub steps: Vec<Step>,
    pub result_sql: String,
}

impl Script {
    pub fn new<B: Backend>(ctx: &Ctx<B>, steps: Vec<Step>) -> Self {
        Script {
            steps,
            result_sql: ctx.count_sql(),
        }
    }
}

/// Factory settings a scenario can ask for.
#[derive(Clone, Copy)]
pub struct Settings {
    pub max_size: usize,
    pub rollback_only: bool,
    pub hold_budget: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_size: 1,
            rollback_only: false,
            hold_budget: Some(Duration::from_secs(5)),
        }
    }
}

/// One flavour of the runtime, driven the same way.
pub trait Driver: 'static {
    type B: Backend;
    type Factory: Clone + Send + Sync + 'static;
    /// Whether a panicking body costs the pool its connection (the native
    /// flavour cannot roll back in `Drop`, so it closes it).
    const PANIC_CLOSES: bool;

    fn factory(ctx: &Ctx<Self::B>, settings: Settings) -> Self::Factory;
    fn run(
        factory: &Self::Factory,
        options: &UnitOptions,
        script: &Script,
    ) -> Result<i64, TestError>;
    fn stats(factory: &Self::Factory) -> PoolStats;
}

fn transient_sql<B: Native>() -> &'static str {
    B::transient_failure_sql().expect("scenario needs a server with transient errors")
}

/// `SessionFactory::run` over the backend's blocking connection.
pub struct Blocking<B>(std::marker::PhantomData<B>);

impl<B: Native> Driver for Blocking<B> {
    type B = B;
    type Factory = SessionFactory<B::Conn>;
    const PANIC_CLOSES: bool = false;

    fn factory(ctx: &Ctx<B>, settings: Settings) -> Self::Factory {
        let mut builder = ctx
            .builder()
            .max_size(settings.max_size)
            .hold_budget(settings.hold_budget);
        if settings.rollback_only {
            builder = builder.rollback_only();
        }
        builder.build().expect("blocking factory")
    }

    fn run(
        factory: &Self::Factory,
        options: &UnitOptions,
        script: &Script,
    ) -> Result<i64, TestError> {
        factory.run(options, |session| {
            for step in &script.steps {
                match step {
                    Step::Exec(sql) => session.batch_execute(sql)?,
                    Step::ExecIgnoringError(sql) => {
                        let _ = session.batch_execute(sql);
                    }
                    Step::ExecInSavepointIgnoringError(sql) => {
                        use diesel::Connection;
                        let _ = session.transaction(|conn| conn.batch_execute(sql));
                    }
                    Step::ReturnEarly => return Ok(0),
                    Step::OpenLevel => {
                        use diesel::connection::{AnsiTransactionManager, TransactionManager};
                        AnsiTransactionManager::begin_transaction(&mut **session)?;
                    }
                    Step::Fail => return Err(TestError::Business("the body refused")),
                    Step::Panic => panic!("the body panicked"),
                    Step::TransientOnFirstAttempt(attempts) => {
                        if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                            session.batch_execute(transient_sql::<B>())?;
                        }
                    }
                    Step::Nest => {
                        factory.run(&UnitOptions::new("inner"), |_| Ok::<(), Error>(()))?
                    }
                    Step::Sleep(duration) => std::thread::sleep(*duration),
                    Step::Pause(_) => unreachable!("a blocking body has no await point"),
                }
            }
            Ok(B::scalar(&mut **session, &script.result_sql)?)
        })
    }

    fn stats(factory: &Self::Factory) -> PoolStats {
        factory.stats()
    }
}

/// `AsyncSessionFactory::run` over the backend's diesel-async connection.
pub struct NativeAsync<B>(std::marker::PhantomData<B>);

/// A multi-thread runtime with I/O and time.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

impl<B: Native> NativeAsync<B> {
    /// The unit as a future, for scenarios that drop it part-way.
    pub async fn unit(
        factory: &AsyncSessionFactory<B::Async>,
        options: &UnitOptions,
        script: &Script,
    ) -> Result<i64, TestError> {
        use diesel_async::SimpleAsyncConnection;
        factory
            .run(options, async |conn: &mut B::Async| {
                for step in &script.steps {
                    match step {
                        Step::Exec(sql) => conn.batch_execute(sql).await?,
                        Step::ExecIgnoringError(sql) => {
                            let _ = conn.batch_execute(sql).await;
                        }
                        Step::ExecInSavepointIgnoringError(sql) => {
                            use diesel_async::AsyncConnection;
                            let _ = conn.transaction(async |c| c.batch_execute(sql).await).await;
                        }
                        Step::ReturnEarly => return Ok(0),
                        Step::OpenLevel => {
                            use diesel_async::{AsyncConnection, TransactionManager};
                            <B::Async as AsyncConnection>::TransactionManager::begin_transaction(
                                conn,
                            )
                            .await?;
                        }
                        Step::Fail => return Err(TestError::Business("the body refused")),
                        Step::Panic => panic!("the body panicked"),
                        Step::TransientOnFirstAttempt(attempts) => {
                            if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                                conn.batch_execute(transient_sql::<B>()).await?;
                            }
                        }
                        Step::Nest => {
                            factory
                                .run(&UnitOptions::new("inner"), async |_: &mut B::Async| {
                                    Ok::<(), Error>(())
                                })
                                .await?
                        }
                        Step::Sleep(duration) => tokio::time::sleep(*duration).await,
                        Step::Pause(reached) => {
                            reached.notify_one();
                            std::future::pending::<()>().await;
                        }
                    }
                }
                Ok(B::query_n(conn, script.result_sql.clone()).await?)
            })
            .await
    }
}

/// A native factory with the runtime its connections live on (a diesel-async
/// connection's driver task runs on the runtime that opened it).
pub struct NativeFactory<C: dbscope::AsyncPoolableConnection> {
    pub factory: AsyncSessionFactory<C>,
    runtime: tokio::runtime::Runtime,
}

impl<B: Native> Driver for NativeAsync<B> {
    type B = B;
    type Factory = Arc<NativeFactory<B::Async>>;
    const PANIC_CLOSES: bool = true;

    fn factory(ctx: &Ctx<B>, settings: Settings) -> Self::Factory {
        let mut builder = AsyncSessionFactory::builder(ctx.url())
            .max_size(settings.max_size)
            .hold_budget(settings.hold_budget);
        if settings.rollback_only {
            builder = builder.rollback_only();
        }
        Arc::new(NativeFactory {
            factory: builder.build().expect("native factory"),
            runtime: runtime(),
        })
    }

    fn run(
        factory: &Self::Factory,
        options: &UnitOptions,
        script: &Script,
    ) -> Result<i64, TestError> {
        factory
            .runtime
            .block_on(Self::unit(&factory.factory, options, script))
    }

    fn stats(factory: &Self::Factory) -> PoolStats {
        factory.factory.stats()
    }
}

fn options(name: &'static str) -> UnitOptions {
    UnitOptions::new(name)
}

fn exec(sql: String) -> Step {
    Step::Exec(sql)
}

/// The next unit on `factory` commits row `id`, on the connection the pool
/// started with: nothing was closed.
fn next_unit_keeps_the_connection<D: Driver>(ctx: &Ctx<D::B>, factory: &D::Factory, id: i64) {
    let next = Script::new(ctx, vec![exec(ctx.insert_sql(id, 1))]);
    D::run(factory, &options("after"), &next).expect("next unit");
    assert!(ctx.has_row(id));
    let stats = D::stats(factory);
    assert_eq!(
        (stats.closed_dirty, stats.connections_created),
        (0, 1),
        "{stats:?}"
    );
}

/// Commit on `Ok`: the rows are visible to another session, the connection
/// is back and clean.
pub fn commits<D: Driver>(ctx: &Ctx<D::B>) {
    let factory = D::factory(ctx, Settings::default());
    let script = Script::new(
        ctx,
        vec![exec(ctx.insert_sql(1, 1)), exec(ctx.insert_sql(2, 1))],
    );
    assert_eq!(
        D::run(&factory, &options("commits"), &script).expect("commits"),
        2
    );
    assert!(ctx.has_row(1) && ctx.has_row(2));
    let stats = D::stats(&factory);
    assert_eq!(
        (stats.in_use, stats.closed_dirty, stats.idle),
        (0, 0, 1),
        "{stats:?}"
    );
}

/// Roll back on `Err`: nothing persists and the connection is reused.
pub fn error_rolls_back<D: Driver>(ctx: &Ctx<D::B>) {
    let factory = D::factory(ctx, Settings::default());
    let script = Script::new(ctx, vec![exec(ctx.insert_sql(1, 1)), Step::Fail]);
    let result = D::run(&factory, &options("refuses"), &script);
    assert!(matches!(result, Err(TestError::Business(_))), "{result:?}");
    assert!(!ctx.has_row(1));
    next_unit_keeps_the_connection::<D>(ctx, &factory, 2);
}

/// A panicking body rolls back; the pool keeps working.
pub fn panic_rolls_back<D: Driver>(ctx: &Ctx<D::B>) {
    let factory = D::factory(ctx, Settings::default());
    let script = Script::new(ctx, vec![exec(ctx.insert_sql(1, 1)), Step::Panic]);
    let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
        D::run(&factory, &options("panics"), &script)
    }));
    assert!(caught.is_err(), "the panic reaches the caller");
    assert!(
        !ctx.has_row(1),
        "the panicking unit's insert was rolled back"
    );
    let stats = D::stats(&factory);
    assert_eq!(stats.in_use, 0, "{stats:?}");
    assert_eq!(
        stats.closed_dirty,
        usize::from(D::PANIC_CLOSES),
        "{stats:?}"
    );
    let ok = Script::new(ctx, vec![exec(ctx.insert_sql(2, 1))]);
    assert_eq!(
        D::run(&factory, &options("after"), &ok).expect("next unit"),
        1
    );
}

/// A unique violation is the body's error; the connection stays pooled.
pub fn unique_violation_keeps_connection<D: Driver>(ctx: &Ctx<D::B>) {
    let factory = D::factory(ctx, Settings::default());
    let first = Script::new(ctx, vec![exec(ctx.insert_sql(1, 1))]);
    D::run(&factory, &options("first"), &first).expect("first");
    let again = Script::new(
        ctx,
        vec![exec(ctx.insert_sql(2, 1)), exec(ctx.insert_sql(1, 1))],
    );
    let error = D::run(&factory, &options("duplicate"), &again).expect_err("unique violation");
    assert!(
        format!("{error:?}").to_lowercase().contains("unique")
            || format!("{error:?}").contains("Duplicate"),
        "{error:?}"
    );
    assert!(!ctx.has_row(2));
    next_unit_keeps_the_connection::<D>(ctx, &factory, 3);
    assert_eq!(D::stats(&factory).connections_closed, 0);
}

/// Parent and child tables for the foreign-key scenarios; `deferred` makes
/// the check run at COMMIT.
fn fk_tables<B: Backend>(ctx: &Ctx<B>, deferred: bool) -> (String, String) {
    let (parent, child) = (format!("{}_p", ctx.table), format!("{}_c", ctx.table));
    let deferrable = if deferred {
        " DEFERRABLE INITIALLY DEFERRED"
    } else {
        ""
    };
    ctx.plain()
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {child}; DROP TABLE IF EXISTS {parent}; \
             CREATE TABLE {parent} (id INTEGER PRIMARY KEY); \
             CREATE TABLE {child} (id INTEGER PRIMARY KEY, parent INTEGER NOT NULL \
             REFERENCES {parent}(id){deferrable})"
        ))
        .expect("foreign-key tables");
    (parent, child)
}

/// A foreign-key violation in the body: the body's error, connection kept.
pub fn fk_violation_keeps_connection<D: Driver>(ctx: &Ctx<D::B>) {
    let (_, child) = fk_tables(ctx, false);
    let factory = D::factory(ctx, Settings::default());
    let script = Script::new(
        ctx,
        vec![
            exec(ctx.insert_sql(1, 1)),
            exec(format!("INSERT INTO {child} (id, parent) VALUES (1, 42)")),
        ],
    );
    D::run(&factory, &options("orphan"), &script).expect_err("foreign-key violation");
    assert!(!ctx.has_row(1));
    next_unit_keeps_the_connection::<D>(ctx, &factory, 2);
}

/// A constraint checked at COMMIT (deferred foreign key): the commit is
/// refused, the unit is rolled back, and the connection stays pooled.
pub fn refused_commit_keeps_connection<D: Driver>(ctx: &Ctx<D::B>) {
    if D::B::NAME == "my" {
        return; // MySQL and MariaDB check foreign keys at once, never at COMMIT
    }
    let (_, child) = fk_tables(ctx, true);
    let factory = D::factory(ctx, Settings::default());
    let script = Script::new(
        ctx,
        vec![
            exec(ctx.insert_sql(1, 1)),
            exec(format!("INSERT INTO {child} (id, parent) VALUES (1, 42)")),
        ],
    );
    let error = D::run(&factory, &options("deferred"), &script).expect_err("refused at COMMIT");
    let TestError::Db(error) = error else {
        panic!("{error:?}")
    };
    assert_eq!(error.phase(), Phase::Commit, "{error}");
    assert!(!ctx.has_row(1));
    next_unit_keeps_the_connection::<D>(ctx, &factory, 2);
}

/// A body that ignores a failed statement and returns `Ok`. PostgreSQL aborted
/// the transaction at the failure, so its `COMMIT` would roll back and report
/// success: the unit says it was rolled back instead, and keeps the
/// connection. MariaDB and SQLite undo only the failed statement: the rest
/// commits.
pub fn swallowed_failure_is_not_reported_as_committed<D: Driver>(ctx: &Ctx<D::B>) {
    let factory = D::factory(ctx, Settings::default());
    let script = Script::new(
        ctx,
        vec![
            exec(ctx.insert_sql(1, 1)),
            Step::ExecIgnoringError(ctx.insert_sql(1, 1)),
            Step::ReturnEarly,
        ],
    );
    let result = D::run(&factory, &options("swallows"), &script);
    if D::B::NAME == "pg" {
        let Err(TestError::Db(error)) = result else {
            panic!("a unit whose transaction PostgreSQL aborted said {result:?}")
        };
        assert_eq!(error.phase(), Phase::Commit, "{error}");
        assert!(
            error.to_string().contains("nothing was committed"),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .contains(&format!("statement `{}`", ctx.insert_sql(1, 1))),
            "the error names the statement that failed first: {error}"
        );
        assert!(!ctx.has_row(1));
    } else {
        assert_eq!(result.expect("the other statements commit"), 0);
        assert!(ctx.has_row(1));
    }
    next_unit_keeps_the_connection::<D>(ctx, &factory, 2);
}

/// A statement that fails inside a savepoint the body rolled back (diesel's
/// `conn.transaction(..)` inside the unit) does not stop the unit from
/// committing, on every backend.
pub fn failure_inside_a_savepoint_still_commits<D: Driver>(ctx: &Ctx<D::B>) {
    let factory = D::factory(ctx, Settings::default());
    let script = Script::new(
        ctx,
        vec![
            exec(ctx.insert_sql(1, 1)),
            Step::ExecInSavepointIgnoringError(ctx.insert_sql(1, 1)),
            exec(ctx.insert_sql(2, 1)),
        ],
    );
    assert_eq!(
        D::run(&factory, &options("recovers"), &script).expect("commits"),
        2
    );
    assert!(ctx.has_row(1) && ctx.has_row(2));
    next_unit_keeps_the_connection::<D>(ctx, &factory, 3);
}

/// A body that leaves a nested transaction level open commits nothing: an
/// error, and the connection is closed instead of pooled with a transaction
/// open.
pub fn level_left_open_is_an_error<D: Driver>(ctx: &Ctx<D::B>) {
    let factory = D::factory(ctx, Settings::default());
    let script = Script::new(
        ctx,
        vec![
            exec(ctx.insert_sql(1, 1)),
            Step::OpenLevel,
            exec(ctx.insert_sql(2, 1)),
        ],
    );
    let error = D::run(&factory, &options("leaves_open"), &script).expect_err("levels left open");
    let TestError::Db(error) = error else {
        panic!("{error:?}")
    };
    assert_eq!(error.phase(), Phase::Commit, "{error}");
    assert!(
        error.to_string().contains("nested transaction level"),
        "{error}"
    );
    assert!(!ctx.has_row(1) && !ctx.has_row(2), "nothing was committed");
    let stats = D::stats(&factory);
    assert_eq!((stats.in_use, stats.closed_dirty), (0, 1), "{stats:?}");
    // The next unit gets a clean connection: its BEGIN works.
    D::run(
        &factory,
        &options("after"),
        &Script::new(ctx, vec![exec(ctx.insert_sql(3, 1))]),
    )
    .expect("next unit");
    assert!(ctx.has_row(3));
}

/// `run` honours the options' retry policy: a transient error on the first
/// attempt, a commit on the second.
pub fn run_retries_transient_errors<D: Driver>(ctx: &Ctx<D::B>)
where
    D::B: Native,
{
    if <D::B as Native>::transient_failure_sql().is_none() {
        return;
    }
    let factory = D::factory(ctx, Settings::default());
    let attempts = Arc::new(AtomicU32::new(0));
    let script = Script::new(
        ctx,
        vec![
            exec(format!("DELETE FROM {}", ctx.table)),
            exec(ctx.insert_sql(1, 1)),
            Step::TransientOnFirstAttempt(Arc::clone(&attempts)),
        ],
    );
    let options = UnitOptions::new("retried")
        .retry(RetryPolicy::attempts(3).backoff(Duration::ZERO, Duration::ZERO));
    assert_eq!(D::run(&factory, &options, &script).expect("retried"), 1);
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert!(ctx.has_row(1));
    let stats = D::stats(&factory);
    assert_eq!((stats.unit_retries, stats.in_use), (1, 0), "{stats:?}");
}

/// A unit held past its budget is named in a warning.
pub fn budget_warning<D: Driver>(ctx: &Ctx<D::B>)
where
    D::B: Native,
{
    let factory = D::factory(
        ctx,
        Settings {
            hold_budget: Some(Duration::from_millis(20)),
            ..Settings::default()
        },
    );
    let recorder = Recorder::default();
    let _guard = tracing::dispatcher::set_default(&recorder.dispatch());
    // Busy on the server (a PostgreSQL or MariaDB budget ends only a
    // transaction left idle); SQLite has no server to wait on.
    let wait = match D::B::NAME {
        "sqlite" => Step::Sleep(Duration::from_millis(60)),
        _ => exec(<D::B as Native>::sleep_sql(60)),
    };
    let script = Script::new(ctx, vec![wait]);
    D::run(&factory, &options("slow_unit"), &script).expect("slow unit");
    let warnings = recorder.budget_warnings("slow_unit");
    assert_eq!(warnings.len(), 1, "{:?}", recorder.events());
    assert!(warnings[0].number("held_ms").unwrap_or(0) >= 60);
}

/// MariaDB gets the factory's budget at connect time and a unit's own budget
/// for that unit only, in both flavours.
pub fn server_budget<D: Driver>(ctx: &Ctx<D::B>) {
    if D::B::NAME != "my" {
        return;
    }
    let factory = D::factory(
        ctx,
        Settings {
            hold_budget: Some(Duration::from_secs(7)),
            ..Settings::default()
        },
    );
    let seen = |options: &UnitOptions| {
        let script = Script {
            steps: vec![],
            result_sql: "SELECT CAST(@@session.idle_transaction_timeout AS SIGNED) AS n".to_owned(),
        };
        D::run(&factory, options, &script).expect("reads the budget")
    };
    assert_eq!(seen(&options("factory_budget")), 7);
    assert_eq!(
        seen(&options("own_budget").budget(Duration::from_secs(3))),
        3
    );
    assert_eq!(
        seen(&options("restored")),
        7,
        "the override did not outlive its unit"
    );
    assert_eq!(D::stats(&factory).connections_created, 1);
}

/// A unit inside a unit on the same factory fails fast instead of waiting for
/// a second connection from a pool of one.
pub fn nested_unit_fails_fast<D: Driver>(ctx: &Ctx<D::B>) {
    let factory = D::factory(ctx, Settings::default());
    let script = Script::new(ctx, vec![exec(ctx.insert_sql(1, 1)), Step::Nest]);
    let error = D::run(&factory, &options("outer"), &script).expect_err("nested");
    let TestError::Db(error) = error else {
        panic!("{error:?}")
    };
    assert_eq!(error.phase(), Phase::Nesting, "{error}");
    assert!(!ctx.has_row(1));
    let stats = D::stats(&factory);
    assert_eq!((stats.in_use, stats.checkout_timeouts), (0, 0), "{stats:?}");
}

/// A rollback-only factory: units commit as savepoints inside one outer
/// transaction; nothing reaches the database.
pub fn rollback_only_persists_nothing<D: Driver>(ctx: &Ctx<D::B>) {
    let factory = D::factory(
        ctx,
        Settings {
            rollback_only: true,
            ..Settings::default()
        },
    );
    let first = Script::new(ctx, vec![exec(ctx.insert_sql(1, 1))]);
    assert_eq!(
        D::run(&factory, &options("first"), &first).expect("first"),
        1
    );
    let refused = Script::new(ctx, vec![exec(ctx.insert_sql(2, 1)), Step::Fail]);
    D::run(&factory, &options("refused"), &refused).expect_err("refused");
    let count = Script::new(ctx, vec![]);
    assert_eq!(
        D::run(&factory, &options("count"), &count).expect("count"),
        1,
        "the first unit's row, inside the outer transaction"
    );
    let stats = D::stats(&factory);
    assert_eq!(
        (stats.closed_dirty, stats.connections_created),
        (0, 1),
        "{stats:?}"
    );
    drop(factory);
    assert!(
        crate::support::wait_until(Duration::from_secs(5), || ctx.count() == 0),
        "nothing persisted"
    );
}

/// Dropping a native unit's future at a chosen await point (after BEGIN,
/// between statements, before COMMIT) leaves no transaction open on the
/// server and no half-done unit in the data; a unit that is not dropped
/// commits. No deadline decides where the drop lands.
pub fn cancelled_at_await_points<B: Native>(ctx: &Ctx<B>) {
    let native = NativeAsync::<B>::factory(
        ctx,
        Settings {
            max_size: 2,
            ..Settings::default()
        },
    );
    let (factory, runtime) = (&native.factory, &native.runtime);
    let points = 4;
    for point in 0..=points {
        let reached = Arc::new(tokio::sync::Notify::new());
        let id = i64::from(point);
        let mut steps = vec![
            exec(ctx.insert_sql(id, 1)),
            exec(ctx.count_sql()),
            exec(ctx.insert_sql(id + 1_000_000, 2)),
        ];
        if point < points {
            steps.insert(point as usize, Step::Pause(Arc::clone(&reached)));
        }
        let script = Script {
            steps,
            result_sql: ctx.count_sql(),
        };
        let outcome = runtime.block_on(async {
            let options = options("pair");
            let unit = NativeAsync::<B>::unit(factory, &options, &script);
            tokio::pin!(unit);
            tokio::select! {
                result = &mut unit => Some(result),
                () = reached.notified() => None,
            }
            // `unit` is dropped here, paused at its chosen await point.
        });
        match outcome {
            Some(result) => {
                assert_eq!(point, points, "only the unit without a pause completes");
                assert_eq!(
                    result.expect("the unpaused unit commits"),
                    2,
                    "its own two rows"
                );
            }
            None => assert!(point < points),
        }
    }
    let stats = factory.stats();
    assert_eq!(stats.in_use, 0, "{stats:?}");
    assert_eq!(
        stats.closed_dirty, points as usize,
        "every dropped unit's connection was closed: {stats:?}"
    );
    let firsts = B::scalar(
        &mut ctx.plain(),
        &format!("SELECT COUNT(*) AS n FROM {} WHERE id < 1000000", ctx.table),
    )
    .expect("count");
    let seconds = B::scalar(
        &mut ctx.plain(),
        &format!(
            "SELECT COUNT(*) AS n FROM {} WHERE id >= 1000000",
            ctx.table
        ),
    )
    .expect("count");
    assert_eq!(
        (firsts, seconds),
        (1, 1),
        "only the completed unit's rows, both of them"
    );
    assert!(ctx.has_row(i64::from(points)));
    // The pool still works.
    runtime
        .block_on(NativeAsync::<B>::unit(
            factory,
            &options("after"),
            &Script::new(ctx, vec![exec(ctx.insert_sql(5_000_000, 1))]),
        ))
        .expect("after cancellations");
}

/// A factory's connections are all closed mid-transaction by the dropped
/// units above; the server must see no transaction left open on any of them.
pub fn cancelled_units_leave_no_server_transaction<B: Native>(ctx: &Ctx<B>) {
    if B::NAME == "sqlite" {
        return; // no server
    }
    let native = NativeAsync::<B>::factory(ctx, Settings::default());
    let reached = Arc::new(tokio::sync::Notify::new());
    let script = Script {
        steps: vec![
            exec(ctx.insert_sql(1, 1)),
            Step::Pause(Arc::clone(&reached)),
        ],
        result_sql: ctx.count_sql(),
    };
    let id_script = Script {
        steps: vec![],
        result_sql: B::CONNECTION_ID_SQL.to_owned(),
    };
    let id = NativeAsync::<B>::run(&native, &options("id"), &id_script).expect("connection id");
    native.runtime.block_on(async {
        let options = options("paused");
        let unit = NativeAsync::<B>::unit(&native.factory, &options, &script);
        tokio::pin!(unit);
        tokio::select! {
            _ = &mut unit => panic!("the paused unit completed"),
            () = reached.notified() => {}
        }
    });
    assert!(
        crate::support::wait_until(Duration::from_secs(5), || B::open_transactions(ctx, &[id])
            == 0),
        "transaction left open on the server"
    );
    assert!(!ctx.has_row(1));
}

/// The async builder has every setting of the blocking one: `min_idle`
/// connections are opened in the background, `on_connect` runs on each new
/// connection, `no_default_setup` drops the backend's defaults, and SQLite
/// in-memory detection is the blocking flavour's (a `cache=shared` database
/// is shared by many connections; a private one lives in its one connection).
pub fn native_builder_settings<B: Native>(ctx: &Ctx<B>) {
    let connected = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&connected);
    let factory = AsyncSessionFactory::<B::Async>::builder(ctx.url())
        .max_size(3)
        .min_idle(2)
        .no_default_setup()
        .on_connect(move |_conn| {
            seen.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        })
        .build()
        .expect("factory");
    let native = Arc::new(NativeFactory {
        factory,
        runtime: runtime(),
    });
    // SQLite's default setup sets `synchronous = NORMAL` (1) on file
    // databases; without it the connection keeps SQLite's own default.
    let synchronous = Script {
        steps: vec![],
        result_sql: match B::NAME {
            "sqlite" => "SELECT synchronous AS n FROM pragma_synchronous()".to_owned(),
            _ => ctx.count_sql(),
        },
    };
    let plain = NativeAsync::<B>::run(&native, &options("settings"), &synchronous).expect("unit");
    if B::NAME == "sqlite" {
        let defaults = NativeAsync::<B>::factory(ctx, Settings::default());
        let with_defaults =
            NativeAsync::<B>::run(&defaults, &options("defaults"), &synchronous).expect("unit");
        assert_eq!(with_defaults, 1, "the default setup ran");
        assert_ne!(plain, with_defaults, "`no_default_setup` dropped it");
    }
    assert!(
        crate::support::wait_until(Duration::from_secs(10), || native.factory.stats().open >= 2),
        "min_idle connections opened: {:?}",
        native.factory.stats()
    );
    let stats = native.factory.stats();
    assert_eq!(
        connected.load(Ordering::SeqCst) as usize,
        stats.connections_created,
        "on_connect ran once per connection: {stats:?}"
    );
    if B::NAME == "sqlite" {
        type Wrapper =
            diesel_async::sync_connection_wrapper::SyncConnectionWrapper<diesel::SqliteConnection>;
        let private = AsyncSessionFactory::<Wrapper>::new(":memory:").expect("private");
        let shared =
            AsyncSessionFactory::<Wrapper>::new("file:scenarios-shared?mode=memory&cache=shared")
                .expect("shared");
        assert_eq!((private.stats().max_size, shared.stats().max_size), (1, 10));
    }
}

/// Instantiates the scenarios for every backend and both flavours.
macro_rules! scenario_tests {
    ([$($name:ident),* $(,)?], native_only: [$($native:ident),* $(,)?]) => {
        mod sqlite {
            scenario_tests!(@flavours crate::support::Sqlite, [$($name),*], [$($native),*]);
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            scenario_tests!(@flavours crate::support::Postgres, [$($name),*], [$($native),*]);
        }
        #[cfg(feature = "mysql")]
        mod mysql {
            scenario_tests!(@flavours crate::support::Mysql, [$($name),*], [$($native),*]);
        }
    };
    (@flavours $backend:ty, [$($name:ident),*], [$($native:ident),*]) => {
        mod blocking {
            $(
                #[test]
                fn $name() {
                    crate::support::run::<$backend>(
                        concat!("s_", stringify!($name), "_b"),
                        crate::scenarios::$name::<crate::scenarios::Blocking<$backend>>,
                    );
                }
            )*
        }
        mod native {
            $(
                #[test]
                fn $name() {
                    crate::support::run::<$backend>(
                        concat!("s_", stringify!($name), "_n"),
                        crate::scenarios::$name::<crate::scenarios::NativeAsync<$backend>>,
                    );
                }
            )*
            $(
                #[test]
                fn $native() {
                    crate::support::run::<$backend>(
                        concat!("s_", stringify!($native), "_n"),
                        crate::scenarios::$native::<$backend>,
                    );
                }
            )*
        }
    };
}

scenario_tests!(
    [
        commits,
        error_rolls_back,
        panic_rolls_back,
        unique_violation_keeps_connection,
        fk_violation_keeps_connection,
        refused_commit_keeps_connection,
        level_left_open_is_an_error,
        swallowed_failure_is_not_reported_as_committed,
        failure_inside_a_savepoint_still_commits,
        run_retries_transient_errors,
        budget_warning,
        server_budget,
        nested_unit_fails_fast,
        rollback_only_persists_nothing,
    ],
    native_only: [
        cancelled_at_await_points,
        cancelled_units_leave_no_server_transaction,
        native_builder_settings,
    ]
);
