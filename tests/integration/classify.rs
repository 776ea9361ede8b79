//! `classify` on real errors provoked on the real servers.

use std::time::Duration;

use dbscope::{classify, Error, TransientKind, UnitOptions};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::Error as DieselError;

use crate::support::{Backend, Ctx};

crate::all_backends!([constraint_violations_are_not_transient]);

fn constraint_violations_are_not_transient<B: Backend>(ctx: &Ctx<B>) {
    let mut conn = ctx.plain();
    conn.batch_execute(&ctx.insert_sql(1, 10)).unwrap();
    let unique = B::execute(&mut conn, &ctx.insert_sql(1, 11));
    let not_null = conn.batch_execute(&format!(
        "INSERT INTO {} (id, v) VALUES (2, NULL)",
        ctx.table
    ));
    for (what, error) in [
        ("unique violation", unique.map(drop)),
        ("not-null violation", not_null),
    ] {
        let error = error.expect_err(what);
        assert_eq!(
            classify(&error),
            None,
            "{what} classified transient: {error:?}"
        );
    }
    // The same through a unit of work: the error is not transient.
    let factory = ctx.builder().max_size(1).build().expect("factory");
    let error = factory
        .run(&UnitOptions::new("it::dup"), |s| {
            s.batch_execute(&ctx.insert_sql(1, 12)).map_err(Error::from)
        })
        .expect_err("duplicate");
    assert!(!error.is_transient(), "{error}");
}

/// Runs `a` and `b` at once on two threads, returning both results.
fn concurrently<C: Send + 'static>(
    mut first: C,
    mut second: C,
    a: impl FnOnce(&mut C) -> QueryResult<()> + Send + 'static,
    b: impl FnOnce(&mut C) -> QueryResult<()> + Send,
) -> (QueryResult<()>, QueryResult<()>, C, C) {
    let thread = std::thread::spawn(move || {
        let result = a(&mut first);
        (result, first)
    });
    // Let `a` block on its lock first, so `b` closes the cycle.
    std::thread::sleep(Duration::from_millis(100));
    let b_result = b(&mut second);
    let (a_result, first) = thread.join().expect("thread");
    (a_result, b_result, first, second)
}

/// Two connections lock two rows in opposite order; returns the victim's error.
fn provoke_deadlock<B: Backend>(ctx: &Ctx<B>, begin: &str, setup: &str) -> DieselError {
    let mut seed = ctx.plain();
    seed.batch_execute(&format!(
        "{}; {}",
        ctx.insert_sql(1, 0),
        ctx.insert_sql(2, 0)
    ))
    .unwrap();
    let update = |id: i64| format!("UPDATE {} SET v = v + 1 WHERE id = {id}", ctx.table);
    let (mut a, mut b) = (ctx.plain(), ctx.plain());
    for conn in [&mut a, &mut b] {
        conn.batch_execute(setup).unwrap();
        conn.batch_execute(begin).unwrap();
    }
    a.batch_execute(&update(1)).unwrap();
    b.batch_execute(&update(2)).unwrap();
    let (a_update, b_update) = (update(2), update(1));
    let (ra, rb, mut a, mut b) = concurrently(
        a,
        b,
        move |a| B::execute(a, &a_update).map(drop),
        move |b| B::execute(b, &b_update).map(drop),
    );
    let _ = a.batch_execute("ROLLBACK");
    let _ = b.batch_execute("ROLLBACK");
    match (ra, rb) {
        (Err(error), Ok(())) | (Ok(()), Err(error)) => error,
        other => panic!("expected exactly one deadlock victim, got {other:?}"),
    }
}

/// One connection holds a row lock; the other waits past its lock timeout.
fn provoke_lock_timeout<B: Backend>(ctx: &Ctx<B>, begin: &str, timeout_sql: &str) -> DieselError {
    ctx.plain().batch_execute(&ctx.insert_sql(1, 0)).unwrap();
    let update = format!("UPDATE {} SET v = v + 1 WHERE id = 1", ctx.table);
    let (mut holder, mut waiter) = (ctx.plain(), ctx.plain());
    holder.batch_execute(begin).unwrap();
    holder.batch_execute(&update).unwrap();
    waiter.batch_execute(timeout_sql).unwrap();
    waiter.batch_execute(begin).unwrap();
    let error = B::execute(&mut waiter, &update).expect_err("lock timeout");
    let _ = waiter.batch_execute("ROLLBACK");
    holder.batch_execute("ROLLBACK").unwrap();
    error
}

/// Kills the server side of a connection with `kill` (given its id), then uses it.
fn provoke_lost_connection<B: Backend>(
    ctx: &Ctx<B>,
    kill: impl FnOnce(i64) -> String,
) -> DieselError {
    let mut victim = ctx.plain();
    let id = B::connection_id(&mut victim);
    ctx.plain()
        .batch_execute(&kill(id))
        .expect("kill the connection");
    B::execute(&mut victim, "SELECT 1").expect_err("use of a killed connection")
}

#[test]
fn sqlite_busy_database_is_transient() {
    use crate::support::Sqlite;

    crate::support::run::<Sqlite>("sqlite_busy", |ctx| {
        let mut holder = ctx.plain();
        holder.batch_execute("BEGIN IMMEDIATE").unwrap();
        holder.batch_execute(&ctx.insert_sql(1, 10)).unwrap();
        let mut writer = ctx.plain();
        writer.batch_execute("PRAGMA busy_timeout = 0").unwrap();
        let error = diesel::sql_query(ctx.insert_sql(2, 20))
            .execute(&mut writer)
            .expect_err("database is locked");
        assert!(error.to_string().contains("database is locked"), "{error}");
        assert_eq!(
            classify(&error),
            Some(TransientKind::DatabaseBusy),
            "{error:?}"
        );
        holder.batch_execute("ROLLBACK").unwrap();
    });
}

#[cfg(feature = "postgres")]
mod pg_errors {
    use super::*;
    use crate::support::{run, Postgres};

    #[test]
    fn pg_serialization_failure_is_transient() {
        run::<Postgres>("pg_serialization", |ctx| {
            let mut seed = ctx.plain();
            seed.batch_execute(&format!(
                "{}; {}",
                ctx.insert_sql(1, 0),
                ctx.insert_sql(2, 0)
            ))
            .unwrap();
            let (mut a, mut b) = (ctx.plain(), ctx.plain());
            let sum = format!("SELECT CAST(SUM(v) AS BIGINT) AS n FROM {}", ctx.table);
            for conn in [&mut a, &mut b] {
                conn.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
                    .unwrap();
                Postgres::scalar(conn, &sum).unwrap();
            }
            let update = |id: i64| format!("UPDATE {} SET v = v + 1 WHERE id = {id}", ctx.table);
            a.batch_execute(&update(1)).unwrap();
            b.batch_execute(&update(2)).unwrap();
            a.batch_execute("COMMIT").unwrap();
            let error = diesel::sql_query("COMMIT")
                .execute(&mut b)
                .expect_err("write skew must fail");
            let _ = b.batch_execute("ROLLBACK");
            assert_eq!(
                classify(&error),
                Some(TransientKind::SerializationFailure),
                "{error:?}"
            );
        });
    }

    #[test]
    fn pg_deadlock_is_transient() {
        run::<Postgres>("pg_deadlock", |ctx| {
            let error = provoke_deadlock(ctx, "BEGIN", "SET deadlock_timeout = '100ms'");
            assert_eq!(classify(&error), Some(TransientKind::Deadlock), "{error:?}");
        });
    }

    #[test]
    fn pg_lock_timeout_is_transient() {
        run::<Postgres>("pg_lock_timeout", |ctx| {
            let error = provoke_lock_timeout(ctx, "BEGIN", "SET lock_timeout = '100ms'");
            assert_eq!(
                classify(&error),
                Some(TransientKind::LockTimeout),
                "{error:?}"
            );
        });
    }

    #[test]
    fn pg_terminated_connection_is_transient() {
        run::<Postgres>("pg_terminated", |ctx| {
            // The 5 s form waits until the backend has exited.
            let error = provoke_lost_connection(ctx, |pid| {
                format!("SELECT pg_terminate_backend({pid}, 5000)")
            });
            assert_eq!(
                classify(&error),
                Some(TransientKind::ConnectionLost),
                "{error:?}"
            );
        });
    }
}

#[cfg(feature = "mysql")]
mod mysql_errors {
    use super::*;
    use crate::support::{run, Mysql};

    #[test]
    fn mysql_deadlock_is_transient() {
        run::<Mysql>("my_deadlock", |ctx| {
            let error = provoke_deadlock(
                ctx,
                "START TRANSACTION",
                "SET innodb_lock_wait_timeout = 20",
            );
            assert_eq!(classify(&error), Some(TransientKind::Deadlock), "{error:?}");
        });
    }

    #[test]
    fn mysql_lock_wait_timeout_is_transient() {
        run::<Mysql>("my_lock_wait_timeout", |ctx| {
            let error =
                provoke_lock_timeout(ctx, "START TRANSACTION", "SET innodb_lock_wait_timeout = 1");
            assert_eq!(
                classify(&error),
                Some(TransientKind::LockTimeout),
                "{error:?}"
            );
        });
    }

    #[test]
    fn mysql_killed_connection_is_transient() {
        run::<Mysql>("my_killed", |ctx| {
            let error = provoke_lost_connection(ctx, |id| format!("KILL {id}"));
            assert_eq!(
                classify(&error),
                Some(TransientKind::ConnectionLost),
                "{error:?}"
            );
            // Used again: the client now reports the connection as gone.
            let mut victim = ctx.plain();
            let id = Mysql::connection_id(&mut victim);
            ctx.plain().batch_execute(&format!("KILL {id}")).unwrap();
            let first = victim.batch_execute("SELECT 1").expect_err("killed");
            let second = victim.batch_execute("SELECT 1").expect_err("still killed");
            for error in [first, second] {
                assert_eq!(
                    classify(&error),
                    Some(TransientKind::ConnectionLost),
                    "{error:?}"
                );
            }
        });
    }
}
