//! Retry of units of work: transient errors are retried in a fresh
//! transaction, other errors are returned at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dbscope::{Error, RetryPolicy, UnitOptions};
use diesel::connection::SimpleConnection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::support::{Backend, Ctx};

crate::all_backends!([unique_violation_is_not_retried]);

fn unique_violation_is_not_retried<B: Backend>(ctx: &Ctx<B>) {
    let factory = ctx.builder().max_size(2).build().expect("factory");
    ctx.plain()
        .batch_execute(&ctx.insert_sql(1, 10))
        .expect("seed");
    let options = UnitOptions::new("it::duplicate").retry(RetryPolicy::attempts(5));
    let runs = AtomicUsize::new(0);
    let error = factory
        .run(&options, |s| {
            runs.fetch_add(1, Ordering::SeqCst);
            s.batch_execute(&ctx.insert_sql(2, 20))?;
            B::execute(s, &ctx.insert_sql(1, 11))?;
            Ok::<_, Error>(())
        })
        .expect_err("duplicate key");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "a non-transient error was retried"
    );
    assert!(!error.is_transient());
    assert!(
        matches!(
            error.diesel_error(),
            Some(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        ),
        "{error:?}"
    );
    let stats = factory.stats();
    assert_eq!((stats.unit_retries, stats.in_use), (0, 0), "{stats:?}");
    assert!(!ctx.has_row(2), "the failed unit was rolled back");
}

/// Two SERIALIZABLE units read both rows, meet at a barrier, then each updates
/// one row: a write skew PostgreSQL must refuse for one of them (40001). With
/// retry, both succeed and each update is applied exactly once.
#[cfg(feature = "postgres")]
#[test]
fn serialization_failure_is_retried_until_success() {
    use std::sync::Barrier;

    use dbscope::Isolation;

    use crate::support::Postgres;

    crate::support::run::<Postgres>("serialization_retry", |ctx| {
        let mut admin = ctx.plain();
        admin
            .batch_execute(&format!(
                "{}; {}",
                ctx.insert_sql(1, 0),
                ctx.insert_sql(2, 0)
            ))
            .unwrap();
        let factory = ctx.builder().max_size(4).build().expect("factory");
        const OPTIONS: UnitOptions = UnitOptions::new("it::write_skew")
            .isolation(Isolation::Serializable)
            .retry(RetryPolicy::attempts(5));
        let barrier = Arc::new(Barrier::new(2));
        let attempts = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = [1, 2]
            .into_iter()
            .map(|row| {
                let (factory, barrier, attempts, table) = (
                    factory.clone(),
                    Arc::clone(&barrier),
                    Arc::clone(&attempts),
                    ctx.table.clone(),
                );
                std::thread::spawn(move || {
                    let mut first = true;
                    factory.run(&OPTIONS, |s| {
                        attempts.fetch_add(1, Ordering::SeqCst);
                        let total = Postgres::scalar(
                            s,
                            &format!("SELECT CAST(SUM(v) AS BIGINT) AS n FROM {table}"),
                        )?;
                        if std::mem::take(&mut first) {
                            barrier.wait();
                        }
                        s.batch_execute(&format!("UPDATE {table} SET v = v + 1 WHERE id = {row}"))?;
                        Ok::<_, Error>(total)
                    })
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .expect("worker thread")
                .expect("unit succeeds after retrying");
        }
        let stats = factory.stats();
        eprintln!("serialization retry: {stats:?}");
        assert!(
            stats.unit_retries >= 1,
            "no serialization failure was retried: {stats:?}"
        );
        assert!(attempts.load(Ordering::SeqCst) >= 3);
        assert_eq!(stats.in_use, 0);
        let sum = Postgres::scalar(
            &mut admin,
            &format!("SELECT CAST(SUM(v) AS BIGINT) AS n FROM {}", ctx.table),
        );
        assert_eq!(sum.unwrap(), 2, "each update applied exactly once");
        for row in [1, 2] {
            let v = Postgres::scalar(
                &mut admin,
                &format!(
                    "SELECT CAST(v AS BIGINT) AS n FROM {} WHERE id = {row}",
                    ctx.table
                ),
            );
            assert_eq!(v.unwrap(), 1);
        }
    });
}

/// A serialization failure at COMMIT ends the transaction (the server rolled it
/// back); the connection itself is healthy and goes back to the pool.
#[cfg(feature = "postgres")]
#[test]
fn serialization_failure_at_commit_keeps_connection() {
    use dbscope::{Isolation, Phase, TransientKind};

    use crate::support::Postgres;

    crate::support::run::<Postgres>("commit_serialization", |ctx| {
        let mut other = ctx.plain();
        other
            .batch_execute(&format!(
                "{}; {}",
                ctx.insert_sql(1, 0),
                ctx.insert_sql(2, 0)
            ))
            .unwrap();
        let factory = ctx.builder().max_size(1).build().expect("factory");
        let sum = format!("SELECT CAST(SUM(v) AS BIGINT) AS n FROM {}", ctx.table);
        let update = |id: i64| format!("UPDATE {} SET v = v + 1 WHERE id = {id}", ctx.table);

        const OPTIONS: UnitOptions =
            UnitOptions::new("it::skew").isolation(Isolation::Serializable);
        let mut session = factory.session_with(&OPTIONS).expect("session");
        let pid = Postgres::connection_id(&mut session);
        other
            .batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
            .unwrap();
        Postgres::scalar(&mut other, &sum).unwrap();
        Postgres::scalar(&mut session, &sum).unwrap();
        other.batch_execute(&update(1)).unwrap();
        session.batch_execute(&update(2)).unwrap();
        other.batch_execute("COMMIT").unwrap();
        let error = session
            .commit()
            .expect_err("write skew must fail at commit");
        assert_eq!(error.phase(), Phase::Commit, "{error}");
        assert!(error.is_transient(), "{error}");
        assert_eq!(
            error.diesel_error().and_then(dbscope::classify),
            Some(TransientKind::SerializationFailure)
        );

        let stats = factory.stats();
        assert_eq!(stats.in_use, 0);
        assert_eq!(
            (stats.connections_closed, stats.closed_dirty, stats.idle),
            (0, 0, 1),
            "a healthy connection was closed after a failed commit: {stats:?}"
        );
        let again = factory
            .run(&UnitOptions::new("it::after"), |s| {
                Ok::<_, Error>(Postgres::connection_id(s))
            })
            .expect("next unit");
        assert_eq!(pid, again, "the connection should have been reused");
        assert!(!ctx.has_row(3));
        let v2 = Postgres::scalar(
            &mut other,
            &format!(
                "SELECT CAST(v AS BIGINT) AS n FROM {} WHERE id = 2",
                ctx.table
            ),
        );
        assert_eq!(v2.unwrap(), 0, "the failed commit must not have applied");
    });
}
