//! Units that compose (issue 15): a `joinable` unit's `name_in` twin joins
//! its caller's transaction as a savepoint; a `requires_new` unit runs in a
//! transaction of its own on a second connection, failing fast when none is
//! free. On SQLite, PostgreSQL and MariaDB, in the blocking, async
//! (`block_in_place`) and native flavours, on a pool of one.

use std::sync::{Arc, Mutex};

use dbscope::{after_commit, unit_of_work, AsyncSessionFactory, Error, Phase, SessionFactory};
use diesel_async::SimpleAsyncConnection;

use crate::support::{Backend, Ctx};
use crate::uow_native::Native;

crate::all_backends!([
    joined_unit_commits_with_its_caller,
    joined_unit_error_rolls_back_only_its_own_work,
    caller_error_rolls_back_the_joined_unit_too,
    joined_unit_panic_rolls_back_its_savepoint,
    joined_units_in_async_fns,
    joined_units_native,
    native_after_commit_waits_for_the_outermost_commit,
    requires_new_fails_fast_on_a_pool_of_one,
    requires_new_commits_on_its_own,
]);

/// After-commit work records its name here.
type Log = Arc<Mutex<Vec<&'static str>>>;

fn record(log: &Log, name: &'static str) -> Result<(), Error> {
    let log = Arc::clone(log);
    after_commit(move || log.lock().expect("log").push(name))
}

fn insert(table: &str, id: i64) -> String {
    format!("INSERT INTO {table} (id, v) VALUES ({id}, 1)")
}

/// Inserts row `id`; fails after the insert when `fail`. Registers `inner`
/// as after-commit work before it decides.
#[unit_of_work(factory = db, joinable)]
fn add<B: Backend>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
    id: i64,
    fail: bool,
    log: &Log,
) -> Result<(), Error> {
    B::execute(conn, &insert(table, id))?;
    record(log, "inner")?;
    if fail {
        return Err(Error::user("the inner unit refused"));
    }
    Ok(())
}

/// Rows 1 and 3 around a joined `add` of row 2; says whether the inner unit
/// succeeded.
#[unit_of_work(factory = db)]
fn outer<B: Backend>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
    inner_fails: bool,
    outer_fails: bool,
    log: &Log,
) -> Result<bool, Error> {
    B::execute(conn, &insert(table, 1))?;
    record(log, "outer before")?;
    let inner = add_in::<B>(db, conn, table, 2, inner_fails, log);
    if !inner_fails {
        inner.as_ref().expect("the joined unit");
    }
    B::execute(conn, &insert(table, 3))?;
    record(log, "outer after")?;
    if outer_fails {
        return Err(Error::user("the outer unit refused"));
    }
    Ok(inner.is_ok())
}

fn pool_of_one<B: Backend>(ctx: &Ctx<B>) -> SessionFactory<B::Conn> {
    ctx.builder().max_size(1).build().expect("factory")
}

fn rows<B: Backend>(ctx: &Ctx<B>) -> [bool; 3] {
    [ctx.has_row(1), ctx.has_row(2), ctx.has_row(3)]
}

fn joined_unit_commits_with_its_caller<B: Backend>(ctx: &Ctx<B>) {
    let db = pool_of_one(ctx);
    let log = Log::default();
    assert!(outer::<B>(&db, &ctx.table, false, false, &log).expect("commits"));
    assert_eq!(rows(ctx), [true, true, true]);
    // The joined unit's work waited for the outermost commit, in order.
    assert_eq!(
        *log.lock().unwrap(),
        ["outer before", "inner", "outer after"]
    );
    let stats = db.stats();
    assert_eq!((stats.checkouts, stats.closed_dirty), (1, 0), "{stats:?}");
}

fn joined_unit_error_rolls_back_only_its_own_work<B: Backend>(ctx: &Ctx<B>) {
    let db = pool_of_one(ctx);
    let log = Log::default();
    let inner_ok = outer::<B>(&db, &ctx.table, true, false, &log).expect("the outer commits");
    assert!(!inner_ok);
    assert_eq!(rows(ctx), [true, false, true]);
    // The rolled-back savepoint's after-commit work was dropped.
    assert_eq!(*log.lock().unwrap(), ["outer before", "outer after"]);
    assert_eq!(db.stats().closed_dirty, 0);
}

fn caller_error_rolls_back_the_joined_unit_too<B: Backend>(ctx: &Ctx<B>) {
    let db = pool_of_one(ctx);
    let log = Log::default();
    let error = outer::<B>(&db, &ctx.table, false, true, &log).expect_err("the outer refuses");
    assert_eq!(error.phase(), Phase::Unit, "{error}");
    assert_eq!(rows(ctx), [false, false, false]);
    assert!(
        log.lock().unwrap().is_empty(),
        "nothing ran after a rollback"
    );
}

/// Inserts row `id`, registers after-commit work, then panics.
#[unit_of_work(factory = db, joinable)]
fn add_then_panic<B: Backend>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
    id: i64,
    log: &Log,
) -> Result<(), Error> {
    B::execute(conn, &insert(table, id))?;
    record(log, "panicked")?;
    panic!("the inner unit panicked");
}

/// Rows 1 and 3 around a joined unit of row 2 that panics, caught.
#[unit_of_work(factory = db)]
fn outer_catching<B: Backend>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
    log: &Log,
) -> Result<(), Error> {
    B::execute(conn, &insert(table, 1))?;
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        add_then_panic_in::<B>(db, &mut *conn, table, 2, log)
    }));
    assert!(caught.is_err(), "the panic reached the caller");
    B::execute(conn, &insert(table, 3))?;
    record(log, "outer")?;
    Ok(())
}

fn joined_unit_panic_rolls_back_its_savepoint<B: Backend>(ctx: &Ctx<B>) {
    let db = pool_of_one(ctx);
    let log = Log::default();
    outer_catching::<B>(&db, &ctx.table, &log).expect("the outer commits");
    assert_eq!(rows(ctx), [true, false, true]);
    assert_eq!(*log.lock().unwrap(), ["outer"]);
    assert_eq!(db.stats().closed_dirty, 0);
}

/// The async (`block_in_place`) flavour: the twin of an `async fn` is a plain
/// `fn`, callable from the caller's synchronous body.
#[unit_of_work(factory = db, joinable)]
async fn add_async<B: Backend>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
    id: i64,
    fail: bool,
) -> Result<(), Error> {
    B::execute(conn, &insert(table, id))?;
    if fail {
        return Err(Error::user("the inner unit refused"));
    }
    Ok(())
}

#[unit_of_work(factory = db)]
async fn outer_async<B: Backend>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
) -> Result<(), Error> {
    B::execute(conn, &insert(table, 1))?;
    add_async_in::<B>(db, conn, table, 2, false)?;
    let refused = add_async_in::<B>(db, conn, table, 3, true);
    assert!(refused.is_err());
    Ok(())
}

fn joined_units_in_async_fns<B: Backend>(ctx: &Ctx<B>) {
    let db = pool_of_one(ctx);
    crate::support::tokio_runtime()
        .block_on(outer_async::<B>(&db, &ctx.table))
        .expect("commits");
    assert_eq!(rows(ctx), [true, true, false]);
    // The standalone unit still works on its own.
    crate::support::tokio_runtime()
        .block_on(add_async::<B>(&db, &ctx.table, 4, false))
        .expect("on its own");
    assert!(ctx.has_row(4));
}

#[unit_of_work(factory = db, joinable)]
async fn add_native<B: Native>(
    db: &AsyncSessionFactory<B::Async>,
    #[session(async)] conn: &mut B::Async,
    table: &str,
    id: i64,
    fail: bool,
) -> Result<(), Error> {
    conn.batch_execute(&insert(table, id)).await?;
    if fail {
        return Err(Error::user("the inner unit refused"));
    }
    Ok(())
}

#[unit_of_work(factory = db)]
async fn outer_native<B: Native>(
    db: &AsyncSessionFactory<B::Async>,
    #[session(async)] conn: &mut B::Async,
    table: &str,
) -> Result<(), Error> {
    conn.batch_execute(&insert(table, 1)).await?;
    add_native_in::<B>(db, conn, table, 2, false).await?;
    let refused = add_native_in::<B>(db, conn, table, 3, true).await;
    assert!(refused.is_err());
    Ok(())
}

fn joined_units_native<B: Native>(ctx: &Ctx<B>) {
    let db = AsyncSessionFactory::<B::Async>::builder(ctx.url())
        .max_size(1)
        .build()
        .expect("factory");
    let runtime = crate::scenarios::runtime();
    runtime
        .block_on(outer_native::<B>(&db, &ctx.table))
        .expect("commits");
    assert_eq!(rows(ctx), [true, true, false]);
    runtime
        .block_on(add_native::<B>(&db, &ctx.table, 4, false))
        .expect("on its own");
    assert!(ctx.has_row(4));
    assert_eq!(db.stats().closed_dirty, 0);
}

/// Registers `name` with `spawn_after_commit`, then inserts row `id` and
/// fails after it when `fail`.
#[unit_of_work(factory = db, joinable)]
async fn add_native_announcing<B: Native>(
    db: &AsyncSessionFactory<B::Async>,
    #[session(async)] conn: &mut B::Async,
    table: &str,
    id: i64,
    fail: bool,
    done: &tokio::sync::mpsc::UnboundedSender<&'static str>,
    name: &'static str,
) -> Result<(), Error> {
    let done = done.clone();
    dbscope::spawn_after_commit(async move {
        let _ = done.send(name);
    })?;
    conn.batch_execute(&insert(table, id)).await?;
    if fail {
        return Err(Error::user("the inner unit refused"));
    }
    Ok(())
}

#[unit_of_work(factory = db)]
async fn outer_native_announcing<B: Native>(
    db: &AsyncSessionFactory<B::Async>,
    #[session(async)] conn: &mut B::Async,
    table: &str,
    done: &tokio::sync::mpsc::UnboundedSender<&'static str>,
    outer_fails: bool,
) -> Result<(), Error> {
    let outer_done = done.clone();
    dbscope::spawn_after_commit(async move {
        let _ = outer_done.send("outer");
    })?;
    add_native_announcing_in::<B>(db, conn, table, 1, false, done, "joined").await?;
    let refused = add_native_announcing_in::<B>(db, conn, table, 2, true, done, "refused").await;
    assert!(refused.is_err());
    if outer_fails {
        return Err(Error::user("the outer unit refused"));
    }
    Ok(())
}

/// Native units: after-commit work of a joined unit waits for the outermost
/// commit and goes with its savepoint or the outer rollback. On a
/// current-thread runtime, spawned tasks run, in order, at the next yield.
fn native_after_commit_waits_for_the_outermost_commit<B: Native>(ctx: &Ctx<B>) {
    let db = AsyncSessionFactory::<B::Async>::builder(ctx.url())
        .max_size(1)
        .build()
        .expect("factory");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let announced = runtime.block_on(async {
        let (done, mut announced) = tokio::sync::mpsc::unbounded_channel();
        outer_native_announcing::<B>(&db, &ctx.table, &done, true)
            .await
            .expect_err("the outer refuses");
        tokio::task::yield_now().await;
        assert!(
            announced.try_recv().is_err(),
            "nothing runs after a rollback"
        );
        outer_native_announcing::<B>(&db, &ctx.table, &done, false)
            .await
            .expect("commits");
        tokio::task::yield_now().await;
        let mut names = Vec::new();
        while let Ok(name) = announced.try_recv() {
            names.push(name);
        }
        names
    });
    assert_eq!(announced, ["outer", "joined"]);
    assert_eq!(rows(ctx), [true, false, false]);
}

/// Row `id`, committed in a transaction of its own.
#[unit_of_work(factory = db, requires_new)]
fn audit<B: Backend>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
    id: i64,
) -> Result<(), Error> {
    B::execute(conn, &insert(table, id))?;
    Ok(())
}

/// Row 1, then an independent `audit` of row 2, then refuses.
#[unit_of_work(factory = db)]
fn refuse_after_audit<B: Backend>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
) -> Result<(), Error> {
    B::execute(conn, &insert(table, 1))?;
    audit::<B>(db, table, 2)?;
    Err(Error::user("the outer unit refused"))
}

fn requires_new_fails_fast_on_a_pool_of_one<B: Backend>(ctx: &Ctx<B>) {
    // A long checkout timeout: the unit must not wait for it.
    let db = ctx
        .builder()
        .max_size(1)
        .checkout_timeout(std::time::Duration::from_secs(3600))
        .build()
        .expect("factory");
    let error = refuse_after_audit::<B>(&db, &ctx.table).expect_err("no second connection");
    assert_eq!(error.phase(), Phase::Nesting, "{error}");
    assert!(
        error.to_string().contains("requires_new") && error.to_string().contains("max_size"),
        "{error}"
    );
    assert_eq!(rows(ctx), [false, false, false]);
    assert_eq!(db.stats().in_use, 0);
}

fn requires_new_commits_on_its_own<B: Backend>(ctx: &Ctx<B>) {
    if B::NAME == "sqlite" {
        // One writer at a time: the outer unit's write lock would make the
        // independent unit wait for the outer one (see the README).
        return;
    }
    let db = ctx.builder().max_size(2).build().expect("factory");
    let error = refuse_after_audit::<B>(&db, &ctx.table).expect_err("the outer refuses");
    assert_eq!(error.phase(), Phase::Unit, "{error}");
    assert_eq!(
        rows(ctx),
        [false, true, false],
        "the independent unit committed, the outer one rolled back"
    );
    // Outside any unit it is an ordinary unit.
    audit::<B>(&db, &ctx.table, 3).expect("on its own");
    assert!(ctx.has_row(3));
}

/// The run-time check that remains: a unit called inside another on the same
/// factory without `_in` or `requires_new` names both ways out.
#[test]
fn nesting_error_names_the_twin_and_requires_new() {
    #[unit_of_work(factory = db)]
    fn inner(
        db: &SessionFactory<diesel::SqliteConnection>,
        _conn: &mut diesel::SqliteConnection,
    ) -> Result<(), Error> {
        Ok(())
    }
    #[unit_of_work(factory = db)]
    fn outer(
        db: &SessionFactory<diesel::SqliteConnection>,
        _conn: &mut diesel::SqliteConnection,
    ) -> Result<(), Error> {
        inner(db)
    }
    let db = SessionFactory::<diesel::SqliteConnection>::new(":memory:").expect("factory");
    let error = outer(&db).expect_err("nested");
    let text = error.to_string();
    assert!(
        text.contains("`inner_in(conn, ..)`") && text.contains("`requires_new`"),
        "{text}"
    );
}
