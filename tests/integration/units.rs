//! Units of work end their transaction and give their connection back:
//! commit, rollback on error and panic, after-commit work, dirty connections,
//! rollback-only factories, nesting.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dbscope::{run_unit, run_unit_retrying, Error, Phase, UnitOptions};
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};

use crate::support::{Backend, Ctx, TestError};

const UNIT: UnitOptions = UnitOptions::new("it::unit");

#[test]
fn sqlite_memory_rollback_only_units_see_each_others_rows() {
    use crate::support::Sqlite;

    let factory = Sqlite::builder(":memory:")
        .rollback_only()
        .build()
        .expect("factory");
    factory
        .run(&UNIT, |s| {
            s.batch_execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")?;
            s.batch_execute("INSERT INTO notes VALUES (1, 10)")
                .map_err(Error::from)
        })
        .expect("first unit");
    let count = "SELECT COUNT(*) AS n FROM notes";
    for id in 2..=3 {
        let seen = factory
            .run(&UNIT, |s| {
                let before = Sqlite::scalar(s, count)?;
                s.batch_execute(&format!("INSERT INTO notes VALUES ({id}, 0)"))?;
                Ok::<_, Error>(before)
            })
            .expect("unit");
        assert_eq!(seen, id - 1, "units must see earlier units' rows");
    }
    let mut session = factory.session().expect("session");
    assert_eq!(Sqlite::scalar(&mut session, count).unwrap(), 3);
    drop(session);
    let stats = factory.stats();
    assert_eq!(
        (stats.open, stats.in_use, stats.closed_dirty),
        (1, 0, 0),
        "{stats:?}"
    );
}

crate::all_backends!([
    commit_on_success_is_visible_to_other_sessions,
    rollback_on_error_leaves_no_row,
    rollback_on_panic_returns_connection,
    after_commit_runs_once_after_connection_returned,
    free_after_commit_runs_once_after_commit,
    after_commit_work_may_run_units_of_work,
    after_commit_never_runs_after_rollback_or_error,
    dirty_connection_after_commit_is_not_reused,
    dirty_connection_after_drop_is_not_reused,
    rollback_only_factory_leaves_no_rows,
    rollback_only_factory_survives_idle_between_units,
    nested_unit_fails_fast_with_nesting_error,
]);

fn commit_on_success_is_visible_to_other_sessions<B: Backend>(ctx: &Ctx<B>) {
    let factory = ctx.builder().max_size(2).build().expect("factory");
    let inserted: usize = factory
        .run(&UNIT, |s| {
            s.batch_execute(&ctx.insert_sql(1, 10))
                .map(|()| 1)
                .map_err(Error::from)
        })
        .expect("unit commits");
    assert_eq!(inserted, 1);
    assert!(
        ctx.has_row(1),
        "committed row must be visible to another session"
    );
    let stats = factory.stats();
    assert_eq!(stats.in_use, 0);
    assert_eq!(stats.checkouts, 1);

    // The hand-written flavour: an explicit session and commit.
    let mut session = factory.session().expect("session");
    session
        .batch_execute(&ctx.insert_sql(2, 20))
        .expect("insert");
    assert!(
        !ctx.has_row(2),
        "uncommitted row must not be visible to another session"
    );
    session.commit().expect("commit");
    assert!(ctx.has_row(2));
    assert_eq!(factory.stats().in_use, 0);
}

fn rollback_on_error_leaves_no_row<B: Backend>(ctx: &Ctx<B>) {
    let factory = ctx.builder().max_size(1).build().expect("factory");
    let result: Result<(), TestError> = factory.run(&UNIT, |s| {
        s.batch_execute(&ctx.insert_sql(1, 10))?;
        Err(TestError::Business("refused after the insert"))
    });
    assert!(matches!(result, Err(TestError::Business(_))), "{result:?}");
    assert!(!ctx.has_row(1), "a failed unit must leave no row");

    // Same through `run_unit` and a database error from the body.
    let result: Result<(), Error> = run_unit(&factory, &UNIT, |s| {
        s.batch_execute(&ctx.insert_sql(2, 20))?;
        s.batch_execute("SELECT * FROM no_such_table_anywhere")?;
        Ok(())
    });
    assert_eq!(result.expect_err("body error").phase(), Phase::User);
    assert!(!ctx.has_row(2));
    assert_eq!(ctx.count(), 0);
    assert_eq!(factory.stats().in_use, 0);
    // The connection was rolled back, not left dirty: it went back to the pool.
    assert_eq!(factory.stats().closed_dirty, 0);
    assert_eq!(factory.stats().idle, 1);
}

fn rollback_on_panic_returns_connection<B: Backend>(ctx: &Ctx<B>) {
    let factory = ctx
        .builder()
        .max_size(1)
        .checkout_timeout(Duration::from_secs(2))
        .build()
        .expect("factory");
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let _: Result<(), Error> = factory.run(&UNIT, |s| {
            s.batch_execute(&ctx.insert_sql(1, 10))?;
            panic!("the body panics after inserting");
        });
    }));
    assert!(outcome.is_err(), "the panic must reach the caller");
    assert!(!ctx.has_row(1), "a panicking unit must leave no row");
    assert_eq!(factory.stats().in_use, 0);

    // With max_size(1), the next checkout only works if the connection came back.
    let count = factory
        .run(&UNIT, |s| {
            s.batch_execute(&ctx.insert_sql(2, 20))?;
            B::scalar(s, &ctx.count_sql()).map_err(Error::from)
        })
        .expect("next unit after the panic");
    assert_eq!(count, 1);
    assert!(ctx.has_row(2));
    assert_eq!(factory.stats().in_use, 0);
    assert_eq!(factory.stats().checkout_timeouts, 0);
}

/// What the after-commit closure saw: runs, in-use gauge, rows read in a new session.
type Seen = Arc<Mutex<Vec<(usize, Result<i64, String>)>>>;

fn after_commit_runs_once_after_connection_returned<B: Backend>(ctx: &Ctx<B>) {
    let factory = ctx
        .builder()
        .max_size(1)
        .checkout_timeout(Duration::from_secs(2))
        .build()
        .expect("factory");
    let seen: Seen = Arc::default();
    factory
        .run(&UNIT, |s| {
            s.batch_execute(&ctx.insert_sql(1, 10))?;
            let (pool, record, count_sql) = (factory.clone(), Arc::clone(&seen), ctx.count_sql());
            s.after_commit(move || {
                let in_use = pool.stats().in_use;
                // A pool of one: this only works if the unit's connection is back.
                let rows = pool
                    .session()
                    .and_then(|mut s| {
                        let n = B::scalar(&mut s, &count_sql)?;
                        s.commit()?;
                        Ok(n)
                    })
                    .map_err(|e| e.to_string());
                record.lock().unwrap().push((in_use, rows));
            });
            assert!(
                seen.lock().unwrap().is_empty(),
                "after-commit work ran before commit"
            );
            Ok::<_, Error>(())
        })
        .expect("unit commits");
    let runs = seen.lock().unwrap().clone();
    assert_eq!(
        runs.len(),
        1,
        "after-commit work must run exactly once: {runs:?}"
    );
    assert_eq!(
        runs[0].0, 0,
        "the connection must be back in the pool before after-commit work"
    );
    assert_eq!(
        runs[0].1,
        Ok(1),
        "after-commit work must see the committed row in a new session"
    );

    // Later units do not run it again.
    factory
        .run(&UNIT, |s| {
            s.batch_execute(&ctx.insert_sql(2, 20)).map_err(Error::from)
        })
        .unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(factory.stats().in_use, 0);
}

/// After-commit work runs once the unit is over: it may run a unit of work of
/// its own on the same factory (a follow-up job), which is not nesting.
fn after_commit_work_may_run_units_of_work<B: Backend>(ctx: &Ctx<B>) {
    let factory = ctx
        .builder()
        .max_size(1)
        .checkout_timeout(Duration::from_secs(2))
        .build()
        .expect("factory");
    let outcomes: Arc<Mutex<Vec<Result<(), Phase>>>> = Arc::default();
    let follow_up = |id: i64| {
        let (pool, outcomes, insert) = (
            factory.clone(),
            Arc::clone(&outcomes),
            ctx.insert_sql(id, 0),
        );
        move || {
            let result = run_unit(&pool, &UnitOptions::new("it::follow_up"), |s| {
                s.batch_execute(&insert).map_err(Error::from)
            });
            outcomes.lock().unwrap().push(result.map_err(|e| e.phase()));
        }
    };
    // The plain flavour, registered on the session.
    run_unit(&factory, &UNIT, |s| {
        s.batch_execute(&ctx.insert_sql(1, 10))?;
        s.after_commit(follow_up(101));
        Ok::<_, Error>(())
    })
    .expect("unit");
    // The retrying flavour, registered through the free function.
    factory
        .run(&UNIT, |s| {
            s.batch_execute(&ctx.insert_sql(2, 20))?;
            dbscope::after_commit(follow_up(102))
        })
        .expect("unit");
    assert_eq!(*outcomes.lock().unwrap(), vec![Ok(()), Ok(())]);
    assert!(
        ctx.has_row(101) && ctx.has_row(102),
        "follow-up units committed"
    );
    let stats = factory.stats();
    assert_eq!((stats.in_use, stats.checkout_timeouts), (0, 0), "{stats:?}");
}

fn free_after_commit_runs_once_after_commit<B: Backend>(ctx: &Ctx<B>) {
    // No session open on this thread: an error, not a silent no-op.
    let error = dbscope::after_commit(|| {}).expect_err("no session open");
    assert_eq!(error.phase(), Phase::Nesting);

    let factory = ctx.builder().max_size(1).build().expect("factory");
    let runs = Arc::new(AtomicUsize::new(0));
    let (url, id) = (ctx.url().to_owned(), 7);
    let visible = Arc::new(Mutex::new(None));
    run_unit(&factory, &UNIT, |s| {
        s.batch_execute(&ctx.insert_sql(id, 70))?;
        let (counter, seen, table, url) = (
            Arc::clone(&runs),
            Arc::clone(&visible),
            ctx.table.clone(),
            url.clone(),
        );
        // Registered through the free function, as code given only `&mut Conn` does.
        dbscope::after_commit(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE id = {id}");
            *seen.lock().unwrap() = Some(B::scalar(&mut B::plain(&url), &sql).unwrap());
        })?;
        assert_eq!(runs.load(Ordering::SeqCst), 0, "ran before commit");
        Ok::<_, Error>(())
    })
    .expect("unit commits");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(
        *visible.lock().unwrap(),
        Some(1),
        "after-commit work must see committed data"
    );
    run_unit(&factory, &UNIT, |_| Ok::<_, Error>(())).unwrap();
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "after-commit work ran twice"
    );
}

fn after_commit_never_runs_after_rollback_or_error<B: Backend>(ctx: &Ctx<B>) {
    let factory = ctx.builder().max_size(1).build().expect("factory");
    let runs = Arc::new(AtomicUsize::new(0));
    let register = |runs: &Arc<AtomicUsize>| {
        let runs = Arc::clone(runs);
        move || {
            runs.fetch_add(1, Ordering::SeqCst);
        }
    };

    // The body fails.
    let result: Result<(), TestError> = factory.run(&UNIT, |s| {
        s.batch_execute(&ctx.insert_sql(1, 10))?;
        s.after_commit(register(&runs));
        dbscope::after_commit(register(&runs))?;
        Err(TestError::Business("no"))
    });
    assert!(result.is_err());
    // An explicit rollback.
    let mut session = factory.session().expect("session");
    session.after_commit(register(&runs));
    session.rollback().expect("rollback");
    // A session dropped without commit.
    let mut session = factory.session().expect("session");
    session.after_commit(register(&runs));
    drop(session);
    // A panic.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let _: Result<(), Error> = factory.run(&UNIT, |s| {
            s.after_commit(register(&runs));
            panic!("boom");
        });
    }));
    // A database error in the body.
    let result: Result<(), Error> = factory.run(&UNIT, |s| {
        s.after_commit(register(&runs));
        s.batch_execute(&ctx.insert_sql(1, 10))?;
        s.batch_execute(&ctx.insert_sql(1, 10))?;
        Ok(())
    });
    assert!(result.is_err());

    // A later commit does not pick up work registered by rolled-back sessions.
    factory.run(&UNIT, |_| Ok::<_, Error>(())).unwrap();
    assert_eq!(
        runs.load(Ordering::SeqCst),
        0,
        "after-commit work ran without a commit"
    );
    assert_eq!(ctx.count(), 0);
    assert_eq!(factory.stats().in_use, 0);
}

/// Opens an extra nested level (a savepoint), so the connection's transaction
/// manager is not back at depth 0 when the session ends.
fn leave_transaction_open<B: Backend>(session: &mut dbscope::Session<B::Conn>) {
    <AnsiTransactionManager as TransactionManager<B::Conn>>::begin_transaction(&mut **session)
        .expect("begin a nested level");
}

fn dirty_connection_after_commit_is_not_reused<B: Backend>(ctx: &Ctx<B>) {
    let factory = ctx.builder().max_size(1).build().expect("factory");
    let mut session = factory.session().expect("session");
    let first = B::connection_id(&mut session);
    leave_transaction_open::<B>(&mut session);
    let error = session
        .commit()
        .expect_err("a commit with a nested level left open must not report success");
    assert_eq!(error.phase(), Phase::Commit, "{error}");
    assert!(
        error.to_string().contains("nested transaction level"),
        "{error}"
    );
    let stats = factory.stats();
    assert_eq!(stats.closed_dirty, 1, "{stats:?}");
    assert_eq!(stats.in_use, 0);
    assert_eq!(
        stats.open, 0,
        "the dirty connection must be closed: {stats:?}"
    );

    let mut session = factory.session().expect("next session");
    let second = B::connection_id(&mut session);
    session.commit().expect("commit");
    assert_ne!(first, second, "a dirty connection was handed out again");
    assert_eq!(factory.stats().closed_dirty, 1);
}

fn dirty_connection_after_drop_is_not_reused<B: Backend>(ctx: &Ctx<B>) {
    let factory = ctx.builder().max_size(1).build().expect("factory");
    let first = {
        let mut session = factory.session().expect("session");
        let id = B::connection_id(&mut session);
        session
            .batch_execute(&ctx.insert_sql(1, 10))
            .expect("insert");
        leave_transaction_open::<B>(&mut session);
        id
        // dropped: rolls back the nested level only
    };
    assert_eq!(factory.stats().closed_dirty, 1);
    assert_eq!(factory.stats().in_use, 0);
    assert!(!ctx.has_row(1), "nothing was committed");

    let second = factory
        .run(&UNIT, |s| Ok::<_, Error>(B::connection_id(s)))
        .expect("next unit");
    assert_ne!(first, second, "a dirty connection was handed out again");
}

fn rollback_only_factory_leaves_no_rows<B: Backend>(ctx: &Ctx<B>) {
    {
        let factory = ctx
            .builder()
            .rollback_only()
            .build()
            .expect("rollback-only factory");
        for id in 1..=3 {
            let seen = factory
                .run(&UNIT, |s| {
                    let before = B::scalar(s, &ctx.count_sql())?;
                    s.batch_execute(&ctx.insert_sql(id, id * 10))?;
                    Ok::<_, Error>(before)
                })
                .expect("unit commits inside the outer transaction");
            assert_eq!(seen, id - 1, "a unit must see the rows of earlier units");
        }
        // A failing unit rolls back its own work only.
        let result: Result<(), TestError> = factory.run(&UNIT, |s| {
            s.batch_execute(&ctx.insert_sql(99, 990))?;
            Err(TestError::Business("undo me"))
        });
        assert!(result.is_err());
        // So does a failing statement (on PostgreSQL it aborts the transaction
        // until the savepoint is rolled back; the outer transaction survives).
        let result: Result<(), Error> = factory.run(&UNIT, |s| {
            s.batch_execute(&ctx.insert_sql(98, 980))?;
            s.batch_execute(&ctx.insert_sql(1, 11))?;
            Ok(())
        });
        assert!(result.is_err(), "duplicate key");
        let mut session = factory.session().expect("session");
        assert_eq!(B::scalar(&mut session, &ctx.count_sql()).unwrap(), 3);
        session.commit().expect("commit");
        let stats = factory.stats();
        assert_eq!(
            (stats.in_use, stats.open, stats.closed_dirty),
            (0, 1, 0),
            "{stats:?}"
        );
    }
    // The factory is gone: nothing persisted.
    assert_eq!(ctx.count(), 0, "a rollback-only factory left rows behind");
    let normal = ctx.builder().build().expect("normal factory");
    let rows = normal
        .run(&UNIT, |s| {
            B::scalar(s, &ctx.count_sql()).map_err(Error::from)
        })
        .expect("count");
    assert_eq!(rows, 0);
}

/// The outer transaction of a rollback-only factory stays open, idle, between
/// units for as long as the factory lives: the server must not end it for
/// idling past the hold budget (PostgreSQL `idle_in_transaction_session_timeout`,
/// MariaDB `idle_transaction_timeout`), or earlier units' rows vanish.
fn rollback_only_factory_survives_idle_between_units<B: Backend>(ctx: &Ctx<B>) {
    let budget = Duration::from_secs(1);
    let factory = ctx
        .builder()
        .hold_budget(Some(budget))
        .rollback_only()
        .build()
        .expect("rollback-only factory");
    factory
        .run(&UNIT, |s| {
            s.batch_execute(&ctx.insert_sql(1, 10)).map_err(Error::from)
        })
        .expect("first unit");
    // A unit overriding the budget (MariaDB sets it per session, then restores it).
    let longer = UnitOptions::new("it::longer").budget(Duration::from_secs(2));
    factory
        .run(&longer, |s| {
            s.batch_execute(&ctx.insert_sql(2, 20)).map_err(Error::from)
        })
        .expect("second unit");
    std::thread::sleep(budget * 2 + Duration::from_millis(500));
    let rows = factory
        .run(&UNIT, |s| {
            B::scalar(s, &ctx.count_sql()).map_err(Error::from)
        })
        .expect("a unit after idling");
    assert_eq!(
        rows,
        2,
        "the outer transaction was lost: {:?}",
        factory.stats()
    );
    let stats = factory.stats();
    assert_eq!(stats.connections_created, 1, "{stats:?}");
    drop(factory);
    assert_eq!(ctx.count(), 0);
}

fn nested_unit_fails_fast_with_nesting_error<B: Backend>(ctx: &Ctx<B>) {
    let factory = ctx
        .builder()
        .max_size(1)
        .checkout_timeout(Duration::from_secs(10))
        .build()
        .expect("factory");
    let started = Instant::now();
    let (plain, retrying) = factory
        .run(&UNIT, |s| {
            s.batch_execute(&ctx.insert_sql(1, 10))?;
            let plain = run_unit(&factory, &UnitOptions::new("it::inner"), |_| {
                Ok::<_, Error>(())
            });
            let retrying = run_unit_retrying(&factory, &UnitOptions::new("it::inner2"), |_| {
                Ok::<_, Error>(())
            });
            Ok::<_, Error>((
                plain.map_err(|e| e.phase()),
                retrying.map_err(|e| e.phase()),
            ))
        })
        .expect("outer unit");
    assert_eq!(plain, Err(Phase::Nesting));
    assert_eq!(retrying, Err(Phase::Nesting));
    // Bound check, not a timing assertion: it failed fast instead of waiting for
    // the 10 s checkout timeout.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "nested unit waited {:?}",
        started.elapsed()
    );
    assert!(ctx.has_row(1), "the outer unit still commits");
    let stats = factory.stats();
    assert_eq!((stats.in_use, stats.checkout_timeouts), (0, 0), "{stats:?}");

    // Another factory inside a unit is not nesting.
    let other = ctx.builder().max_size(1).build().expect("other factory");
    // (Read-only inside: on SQLite two writers of one file take turns.)
    let reader = UnitOptions::new("reader").read_only(true);
    factory
        .run(&UNIT, |_| run_unit(&other, &reader, |_| Ok::<_, Error>(())))
        .expect("units on different factories may nest");
}
