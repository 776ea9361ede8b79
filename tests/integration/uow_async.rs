//! `#[unit_of_work]` on `async fn`s over blocking diesel connections, on a
//! multi-thread tokio runtime: commit and rollback, many units sharing a small
//! pool, nesting, and futures dropped at random points.

use std::sync::Arc;
use std::time::Duration;

use dbscope::{unit_of_work, Error, Phase, SessionFactory};
use diesel::connection::SimpleConnection;

use crate::support::{tokio_runtime, Ctx, TestError};
use crate::uow_support::{Dialect, Queries};

crate::all_backends!([
    uow_async_commits_and_rolls_back,
    uow_async_fifty_units_share_a_pool_of_two,
    uow_async_unit_calling_a_unit_fails_fast,
    uow_async_panic_rolls_back_and_returns_connection,
]);

#[unit_of_work(factory = db)]
async fn insert_async<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
    id: i64,
) -> Result<i64, Error> {
    conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES ({id}, 1)"))?;
    Ok(B::connection_id(conn))
}

#[unit_of_work(factory = db)]
async fn insert_then_refuse_async<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
    id: i64,
) -> Result<i64, TestError> {
    conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES ({id}, 1)"))?;
    Err(TestError::Business("refused after the insert"))
}

#[unit_of_work(factory = db, read_only)]
async fn count_async<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
) -> Result<i64, Error> {
    Ok(conn.query_i64(&format!("SELECT COUNT(*) AS n FROM {table}"))?)
}

fn uow_async_commits_and_rolls_back<B: Dialect>(ctx: &Ctx<B>) {
    let factory = ctx.builder().max_size(1).build().expect("factory");
    let runtime = tokio_runtime();
    let (f, table) = (factory.clone(), ctx.table.clone());
    let (committed, refused, rows) = runtime
        .block_on(runtime.spawn(async move {
            let committed = insert_async::<B>(&f, &table, 1).await;
            let refused = insert_then_refuse_async::<B>(&f, &table, 2).await;
            let rows = count_async::<B>(&f, &table).await;
            (committed, refused, rows)
        }))
        .expect("task");
    committed.expect("the async unit commits");
    assert!(
        matches!(refused, Err(TestError::Business(_))),
        "{refused:?}"
    );
    assert_eq!(rows.expect("count"), 1);
    assert!(ctx.has_row(1), "committed: visible to another session");
    assert!(!ctx.has_row(2), "a refused async unit left its row");
    let stats = factory.stats();
    assert_eq!(
        (stats.in_use, stats.idle, stats.closed_dirty),
        (0, 1, 0),
        "{stats:?}"
    );
}

fn uow_async_fifty_units_share_a_pool_of_two<B: Dialect>(ctx: &Ctx<B>) {
    let factory = ctx
        .builder()
        .max_size(2)
        .checkout_timeout(Duration::from_secs(30))
        .build()
        .expect("factory");
    let runtime = tokio_runtime();
    let tasks: Vec<_> = (1..=50)
        .map(|id| {
            let (f, table) = (factory.clone(), ctx.table.clone());
            runtime.spawn(async move { insert_async::<B>(&f, &table, id).await })
        })
        .collect();
    let mut connections = Vec::new();
    for task in tasks {
        connections.push(runtime.block_on(task).expect("task").expect("unit"));
    }
    connections.sort_unstable();
    connections.dedup();
    assert!(
        connections.len() <= 2,
        "more than 2 connections: {connections:?}"
    );
    assert_eq!(ctx.count(), 50);
    let stats = factory.stats();
    assert_eq!(
        (
            stats.in_use,
            stats.waiting,
            stats.checkout_timeouts,
            stats.closed_dirty
        ),
        (0, 0, 0, 0),
        "{stats:?}"
    );
    assert!(
        stats.max_in_use <= 2 && stats.connections_created <= 2,
        "{stats:?}"
    );
    assert_eq!(stats.checkouts, 50, "{stats:?}");
}

#[unit_of_work(factory = db)]
async fn insert_then_panic_async<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
    id: i64,
) -> Result<(), Error> {
    conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES ({id}, 1)"))?;
    panic!("the async unit panics after inserting row {id}");
}

/// A panic in an async unit's body fails its task; the transaction is rolled
/// back and the connection of a pool of one is back for the next unit.
fn uow_async_panic_rolls_back_and_returns_connection<B: Dialect>(ctx: &Ctx<B>) {
    let factory = ctx
        .builder()
        .max_size(1)
        .checkout_timeout(Duration::from_secs(2))
        .build()
        .expect("factory");
    let runtime = tokio_runtime();
    let (f, table) = (factory.clone(), ctx.table.clone());
    let joined = runtime
        .block_on(runtime.spawn(async move { insert_then_panic_async::<B>(&f, &table, 1).await }));
    assert!(joined.expect_err("the task panicked").is_panic());
    assert!(!ctx.has_row(1), "a panicking async unit left its row");
    let stats = factory.stats();
    assert_eq!(
        (stats.in_use, stats.idle, stats.closed_dirty),
        (0, 1, 0),
        "rolled back and pooled: {stats:?}"
    );
    let (f, table) = (factory.clone(), ctx.table.clone());
    runtime
        .block_on(runtime.spawn(async move { insert_async::<B>(&f, &table, 2).await }))
        .expect("task")
        .expect("the next unit gets the connection");
    assert!(ctx.has_row(2));
    assert_eq!(factory.stats().checkout_timeouts, 0);
}

#[unit_of_work(factory = db)]
fn insert_sync<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
    id: i64,
) -> Result<(), Error> {
    conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES ({id}, 2)"))?;
    Ok(())
}

/// An async unit whose body calls a (blocking) unit on the same factory.
#[unit_of_work(factory = db)]
async fn outer_async<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
) -> Result<Result<(), Phase>, Error> {
    conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES (1, 1)"))?;
    Ok(insert_sync::<B>(db, table, 2).map_err(|e| e.phase()))
}

fn uow_async_unit_calling_a_unit_fails_fast<B: Dialect>(ctx: &Ctx<B>) {
    let factory = ctx
        .builder()
        .max_size(1)
        .checkout_timeout(Duration::from_secs(10))
        .build()
        .expect("factory");
    let runtime = tokio_runtime();
    let (f, table) = (factory.clone(), ctx.table.clone());
    let started = std::time::Instant::now();
    let inner = runtime
        .block_on(runtime.spawn(async move { outer_async::<B>(&f, &table).await }))
        .expect("task")
        .expect("the outer unit commits");
    assert_eq!(inner, Err(Phase::Nesting));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the nested unit waited {:?}",
        started.elapsed()
    );
    assert!(ctx.has_row(1) && !ctx.has_row(2));
    let stats = factory.stats();
    assert_eq!((stats.in_use, stats.checkout_timeouts), (0, 0), "{stats:?}");
}

/// Inserts rows `id` and `id + 1` in one unit.
#[cfg(feature = "postgres")]
#[unit_of_work(factory = db)]
async fn insert_pair_async(
    db: &SessionFactory<diesel::PgConnection>,
    conn: &mut diesel::PgConnection,
    table: &str,
    id: i64,
) -> Result<(), Error> {
    conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES ({id}, 1)"))?;
    conn.batch_execute(&format!(
        "INSERT INTO {table} (id, v) VALUES ({}, 2)",
        id + 1
    ))?;
    Ok(())
}

/// Drops futures of an annotated async unit at random points, a few hundred
/// times, 4 tasks on a pool of 2: no transaction is left open on the server,
/// every unit applied both its rows or none, and every connection came back.
#[cfg(feature = "postgres")]
#[test]
fn uow_async_cancellation_leaves_nothing_open() {
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

    use rand::Rng;

    use crate::support::{Backend, Postgres};

    crate::support::run::<Postgres>("uow_async_cancellation", |ctx| {
        const APP: &str = "dbscope_it_uow_async_cancellation";
        let factory = ctx
            .builder()
            .max_size(2)
            .checkout_timeout(Duration::from_secs(10))
            .setup_sql(format!("SET application_name = '{APP}'"))
            .build()
            .expect("factory");
        let runtime = tokio_runtime();
        let next_id = Arc::new(AtomicI64::new(1));
        let completed = Arc::new(AtomicUsize::new(0));
        let cancelled = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (factory, table) = (factory.clone(), ctx.table.clone());
                let (next_id, completed, cancelled) = (
                    Arc::clone(&next_id),
                    Arc::clone(&completed),
                    Arc::clone(&cancelled),
                );
                runtime.spawn(async move {
                    for _ in 0..75 {
                        let limit = Duration::from_micros(rand::rng().random_range(0..3_000));
                        let id = next_id.fetch_add(2, Ordering::SeqCst);
                        let unit = insert_pair_async(&factory, &table, id);
                        match tokio::time::timeout(limit, unit).await {
                            Ok(result) => {
                                result.expect("a unit that ran must commit");
                                completed.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(_) => {
                                cancelled.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            runtime.block_on(task).expect("task");
        }
        let (completed, cancelled) = (
            completed.load(Ordering::SeqCst),
            cancelled.load(Ordering::SeqCst),
        );
        assert_eq!(completed + cancelled, 300);
        assert!(
            cancelled > 0,
            "no future was dropped: the test proves nothing"
        );
        assert!(completed > 0, "no unit completed: the test proves nothing");

        let open = Postgres::scalar(
            &mut ctx.plain(),
            &format!(
                "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
                 AND application_name = '{APP}' AND state LIKE 'idle in transaction%'"
            ),
        )
        .unwrap();
        assert_eq!(open, 0, "a dropped unit left a transaction open");
        let rows = ctx.count();
        assert_eq!(rows % 2, 0, "a unit was half-applied: {rows} rows");
        assert_eq!(
            rows as usize,
            2 * completed,
            "rows of {completed} completed units"
        );
        let stats = factory.stats();
        assert_eq!(
            (stats.in_use, stats.waiting, stats.closed_dirty),
            (0, 0, 0),
            "{stats:?}"
        );
        assert!(stats.open <= 2, "{stats:?}");
        eprintln!("uow async cancellation: {completed} completed, {cancelled} cancelled");
    });
}
