//! The async flavour on a multi-thread tokio runtime: commit, rollback, a
//! bounded wait for a slot, and cancellation at random points.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dbscope::{run_unit_async, run_unit_async_retrying, Error, Phase, UnitOptions};
use diesel::connection::SimpleConnection;

use crate::support::{tokio_runtime, wait_until, Backend, Ctx, TestError};

const UNIT: UnitOptions = UnitOptions::new("it::async");

crate::all_backends!([
    async_unit_commits_on_success,
    async_unit_rolls_back_on_error,
    async_checkout_times_out_when_pool_is_exhausted,
]);

fn async_unit_commits_on_success<B: Backend>(ctx: &Ctx<B>) {
    let factory = ctx.builder().max_size(2).build().expect("factory");
    let runtime = tokio_runtime();
    let (f, insert) = (factory.clone(), ctx.insert_sql(1, 10));
    let id = runtime
        .block_on(runtime.spawn(async move {
            run_unit_async(&f, &UNIT, move |s| {
                s.batch_execute(&insert)?;
                Ok::<_, Error>(B::connection_id(s))
            })
            .await
        }))
        .expect("task")
        .expect("async unit commits");
    assert!(
        ctx.has_row(1),
        "committed row must be visible to another session"
    );

    let (f, insert) = (factory.clone(), ctx.insert_sql(2, 20));
    let again = runtime
        .block_on(runtime.spawn(async move {
            run_unit_async_retrying(&f, &UNIT, move |s| {
                s.batch_execute(&insert)?;
                Ok::<_, Error>(B::connection_id(s))
            })
            .await
        }))
        .expect("task")
        .expect("async retrying unit commits");
    assert!(ctx.has_row(2));
    assert_eq!(
        id, again,
        "the connection went back to the pool and was reused"
    );
    assert_eq!(factory.stats().in_use, 0);
}

fn async_unit_rolls_back_on_error<B: Backend>(ctx: &Ctx<B>) {
    let factory = ctx.builder().max_size(1).build().expect("factory");
    let runtime = tokio_runtime();
    let (f, insert) = (factory.clone(), ctx.insert_sql(1, 10));
    let result = runtime
        .block_on(runtime.spawn(async move {
            run_unit_async(&f, &UNIT, move |s| {
                s.batch_execute(&insert)?;
                Err::<(), _>(TestError::Business("refused"))
            })
            .await
        }))
        .expect("task");
    assert!(matches!(result, Err(TestError::Business(_))), "{result:?}");
    assert!(!ctx.has_row(1), "a failed async unit must leave no row");
    let stats = factory.stats();
    assert_eq!(
        (stats.in_use, stats.idle, stats.closed_dirty),
        (0, 1, 0),
        "{stats:?}"
    );
}

fn async_checkout_times_out_when_pool_is_exhausted<B: Backend>(ctx: &Ctx<B>) {
    let timeout = Duration::from_millis(300);
    let factory = ctx
        .builder()
        .max_size(2)
        .checkout_timeout(timeout)
        .build()
        .expect("factory");
    let runtime = tokio_runtime();
    let first = crate::support::hold(&factory);
    let second = crate::support::hold(&factory);

    let f = factory.clone();
    let (error, waited) = runtime
        .block_on(runtime.spawn(async move {
            let started = Instant::now();
            let result = run_unit_async(&f, &UNIT, |_| Ok::<_, Error>(())).await;
            (result.expect_err("must time out"), started.elapsed())
        }))
        .expect("task");
    assert_eq!(error.phase(), Phase::CheckoutTimeout, "{error}");
    assert!(waited >= timeout, "gave up early, after {waited:?}");
    assert!(
        waited < Duration::from_secs(3),
        "async checkout hung for {waited:?}"
    );

    // A task waiting (asynchronously) for a slot gets one as soon as it is returned.
    let slow = ctx
        .builder()
        .max_size(1)
        .checkout_timeout(Duration::from_secs(10))
        .build()
        .expect("factory");
    let held = slow.session().expect("held");
    let (f, insert) = (slow.clone(), ctx.insert_sql(1, 10));
    let task = runtime.spawn(async move {
        run_unit_async(&f, &UNIT, move |s| {
            s.batch_execute(&insert)?;
            Ok::<_, Error>(Instant::now())
        })
        .await
    });
    assert!(
        wait_until(Duration::from_secs(5), || slow.stats().waiting == 1),
        "{:?}",
        slow.stats()
    );
    let released = Instant::now();
    drop(held);
    let got = runtime.block_on(task).expect("task").expect("waiting unit");
    assert!(
        got.duration_since(released) < Duration::from_secs(3),
        "waiter was not woken"
    );
    assert!(ctx.has_row(1));
    drop((first, second));
    assert_eq!(factory.stats().in_use, 0);
    assert_eq!(slow.stats().in_use, 0);
}

/// Drops futures of `run_unit_async` at random points, many times, on a pool
/// of 2 shared by 4 tasks; then no transaction is left open, every unit either
/// fully committed or left nothing, and every connection came back.
#[cfg(feature = "postgres")]
#[test]
fn async_cancellation_leaves_no_open_transaction() {
    use rand::Rng;

    use crate::support::Postgres;

    crate::support::run::<Postgres>("async_cancellation", |ctx| {
        const APP: &str = "dbscope_it_async_cancellation";
        let factory = ctx
            .builder()
            .max_size(2)
            .checkout_timeout(Duration::from_secs(10))
            .setup_sql(format!("SET application_name = '{APP}'"))
            .build()
            .expect("factory");
        let runtime = tokio_runtime();
        let next_id = Arc::new(AtomicI64::new(1));
        let (completed, cancelled) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (factory, table) = (factory.clone(), ctx.table.clone());
                let (next_id, completed, cancelled) = (
                    Arc::clone(&next_id),
                    Arc::clone(&completed),
                    Arc::clone(&cancelled),
                );
                runtime.spawn(async move {
                    for _ in 0..100 {
                        let limit = Duration::from_micros(rand::rng().random_range(0..3_000));
                        let table = table.clone();
                        let next_id = Arc::clone(&next_id);
                        let unit = run_unit_async(&factory, &UNIT, move |s| {
                            let id = next_id.fetch_add(2, Ordering::SeqCst);
                            s.batch_execute(&format!(
                                "INSERT INTO {table} (id, v) VALUES ({id}, 1)"
                            ))?;
                            s.batch_execute(&format!(
                                "INSERT INTO {table} (id, v) VALUES ({}, 2)",
                                id + 1
                            ))?;
                            Ok::<_, Error>(())
                        });
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
        assert_eq!(completed + cancelled, 400);
        assert!(
            cancelled > 0,
            "no future was dropped: the test proves nothing"
        );

        let mut admin = ctx.plain();
        let open_transactions = Postgres::scalar(
            &mut admin,
            &format!(
                "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
                 AND application_name = '{APP}' AND state LIKE 'idle in transaction%'"
            ),
        )
        .unwrap();
        assert_eq!(
            open_transactions, 0,
            "a cancelled unit left a transaction open"
        );
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
        assert!(stats.open <= 2);
        eprintln!("async cancellation: {completed} completed, {cancelled} cancelled, {stats:?}");
    });
}
