//! The hold-time budget (`budget_ms`, the factory's `hold_budget`): a unit
//! held longer logs a `tracing` warning naming it; on PostgreSQL and MariaDB
//! the budget is also given to the server, which ends a transaction left idle
//! past it, and the pool then closes that connection instead of reusing it.

use std::time::Duration;

use dbscope::{unit_of_work, Error, SessionFactory};

use crate::support::{tokio_runtime, Backend, Ctx};
use crate::uow_support::{Dialect, Recorder};

crate::all_backends!([
    uow_unit_held_past_budget_logs_a_warning,
    uow_async_unit_held_past_budget_logs_a_warning,
]);

/// Holds its session for `hold`, doing nothing with it.
#[unit_of_work(factory = db, budget_ms = 100)]
fn held_past_budget<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    hold: Duration,
) -> Result<i64, Error> {
    std::thread::sleep(hold);
    Ok(B::connection_id(conn))
}

/// Within a generous budget.
#[unit_of_work(factory = db, budget_ms = 60000)]
fn within_budget<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
) -> Result<i64, Error> {
    Ok(B::connection_id(conn))
}

#[unit_of_work(factory = db, budget_ms = 100)]
async fn held_past_budget_async<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    hold: Duration,
) -> Result<i64, Error> {
    std::thread::sleep(hold);
    Ok(B::connection_id(conn))
}

/// A factory whose budget only warns: the server is not told, so a unit may
/// sit idle past it (on PostgreSQL and MariaDB the server would end it).
fn warning_only_factory<B: Backend>(ctx: &Ctx<B>) -> SessionFactory<B::Conn> {
    ctx.builder()
        .max_size(1)
        .server_enforced_budget(false)
        .build()
        .expect("factory")
}

fn uow_unit_held_past_budget_logs_a_warning<B: Dialect>(ctx: &Ctx<B>) {
    let factory = warning_only_factory(ctx);
    let recorder = Recorder::default();
    tracing::dispatcher::with_default(&recorder.dispatch(), || {
        held_past_budget::<B>(&factory, Duration::from_millis(250)).expect("slow unit");
        within_budget::<B>(&factory).expect("quick unit");
    });
    let warnings = recorder.budget_warnings("held_past_budget");
    assert_eq!(
        warnings.len(),
        1,
        "one warning for the slow unit: {:?}",
        recorder.events()
    );
    let warning = &warnings[0];
    let unit = warning.field("unit").unwrap();
    assert!(
        unit.starts_with(module_path!()),
        "the warning names the function by its path: {unit}"
    );
    let held = warning.number("held_ms").expect("held_ms field");
    assert!(held >= 250, "held_ms {held} is less than the time held");
    assert_eq!(warning.number("budget_ms"), Some(100), "{warning:?}");
    assert!(
        warning
            .field("message")
            .is_some_and(|m| m.contains("longer than its budget")),
        "{warning:?}"
    );
    assert!(
        recorder.budget_warnings("within_budget").is_empty(),
        "a unit within its budget was warned about: {:?}",
        recorder.events()
    );
    assert_eq!(factory.stats().in_use, 0);
}

/// The async flavour warns too: the warning is emitted where the unit ran,
/// inside the future, so a subscriber attached to the future sees it.
fn uow_async_unit_held_past_budget_logs_a_warning<B: Dialect>(ctx: &Ctx<B>) {
    use tracing::instrument::WithSubscriber;

    let factory = warning_only_factory(ctx);
    let recorder = Recorder::default();
    let runtime = tokio_runtime();
    let (f, dispatch) = (factory.clone(), recorder.dispatch());
    runtime
        .block_on(
            runtime.spawn(
                async move { held_past_budget_async::<B>(&f, Duration::from_millis(250)).await }
                    .with_subscriber(dispatch),
            ),
        )
        .expect("task")
        .expect("slow async unit");
    let warnings = recorder.budget_warnings("held_past_budget_async");
    assert_eq!(warnings.len(), 1, "{:?}", recorder.events());
    assert!(warnings[0].number("held_ms").unwrap() >= 250);
    assert_eq!(warnings[0].number("budget_ms"), Some(100));
    assert_eq!(factory.stats().in_use, 0);
}

#[cfg(feature = "postgres")]
mod pg_server {
    use std::time::Duration;

    use dbscope::{classify, unit_of_work, Error, SessionFactory, TransientKind};
    use diesel::PgConnection;

    use crate::support::{Backend, Postgres};
    use crate::uow_support::{Queries, Recorder};

    const TIMEOUT: &str = "SELECT current_setting('idle_in_transaction_session_timeout') AS t";

    #[unit_of_work(factory = db, budget_ms = 300)]
    fn server_budget_inside(
        db: &SessionFactory<PgConnection>,
        conn: &mut PgConnection,
    ) -> Result<(String, i64), Error> {
        Ok((conn.query_text(TIMEOUT)?, Postgres::connection_id(conn)))
    }

    #[unit_of_work(factory = db)]
    fn factory_budget_inside(
        db: &SessionFactory<PgConnection>,
        conn: &mut PgConnection,
    ) -> Result<(String, i64), Error> {
        Ok((conn.query_text(TIMEOUT)?, Postgres::connection_id(conn)))
    }

    /// Idles inside its transaction for longer than its budget, then queries.
    #[unit_of_work(factory = db, budget_ms = 300)]
    fn idle_past_budget(
        db: &SessionFactory<PgConnection>,
        conn: &mut PgConnection,
        table: &str,
    ) -> Result<i64, Error> {
        conn.query_i64(&format!("SELECT COUNT(*) AS n FROM {table}"))?;
        std::thread::sleep(Duration::from_secs(1));
        Ok(conn.query_i64(&format!("SELECT COUNT(*) AS n FROM {table}"))?)
    }

    #[test]
    fn uow_budget_reaches_the_server() {
        crate::support::run::<Postgres>("uow_budget_server_pg", |ctx| {
            let factory = ctx.builder().max_size(1).build().expect("factory");
            let (inside, pid) = server_budget_inside(&factory).expect("unit");
            assert_eq!(inside, "300ms", "the unit's budget_ms on the server");
            // `SET LOCAL`: back to the factory's budget (default 5 s) after it.
            let (after, same) = factory_budget_inside(&factory).expect("unit");
            assert_eq!(after, "5s");
            assert_eq!(pid, same, "the same pooled connection");
            let mut conn = factory.checkout().expect("checkout");
            assert_eq!(conn.query_text(TIMEOUT).unwrap(), "5s", "between units");
        });
    }

    /// Longer than the longest timeout PostgreSQL takes (2^31 - 1 ms, about
    /// 24.8 days).
    #[unit_of_work(factory = db, budget_ms = 3000000000)]
    fn beyond_server_maximum(
        db: &SessionFactory<PgConnection>,
        conn: &mut PgConnection,
    ) -> Result<String, Error> {
        Ok(conn.query_text(TIMEOUT)?)
    }

    /// A budget longer than the server can enforce is given to it as the
    /// longest it takes, instead of failing every `BEGIN` (or every connect,
    /// for a factory budget).
    #[test]
    fn uow_budget_beyond_the_server_maximum_is_clamped() {
        crate::support::run::<Postgres>("uow_budget_clamped_pg", |ctx| {
            let factory = ctx.builder().max_size(1).build().expect("factory");
            let inside = beyond_server_maximum(&factory).expect("unit with a 34-day budget");
            assert_eq!(inside, "2147483647ms");
            let factory = ctx
                .builder()
                .max_size(1)
                .hold_budget(Some(Duration::from_secs(40 * 24 * 3600)))
                .build()
                .expect("factory with a 40-day budget");
            let (inside, _) = factory_budget_inside(&factory).expect("unit");
            assert_eq!(inside, "2147483647ms");
        });
    }

    /// A session opened by hand on a factory with a 300 ms budget, then left
    /// idle for a second: the server ends it, the next statement fails as a
    /// lost connection, and the pool closes the connection.
    #[test]
    fn uow_idle_transaction_is_ended_by_the_server() {
        crate::support::run::<Postgres>("uow_budget_idle_pg", |ctx| {
            let factory = ctx
                .builder()
                .max_size(1)
                .hold_budget(Some(Duration::from_millis(300)))
                .build()
                .expect("factory");
            let recorder = Recorder::default();
            let (pid, error) = tracing::dispatcher::with_default(&recorder.dispatch(), || {
                let mut session = factory.session().expect("session");
                let pid = Postgres::connection_id(&mut session);
                std::thread::sleep(Duration::from_secs(1));
                let error = session
                    .query_i64("SELECT 1 AS n")
                    .expect_err("the server ended the idle transaction");
                drop(session);
                (pid, error)
            });
            assert_eq!(
                classify(&error),
                Some(TransientKind::ConnectionLost),
                "{error}"
            );
            let gone = Postgres::scalar(
                &mut ctx.plain(),
                &format!("SELECT COUNT(*) AS n FROM pg_stat_activity WHERE pid = {pid}"),
            );
            assert_eq!(gone.unwrap(), 0, "the backend still exists");
            let stats = factory.stats();
            assert_eq!(
                (
                    stats.in_use,
                    stats.open,
                    stats.idle,
                    stats.connections_closed
                ),
                (0, 0, 0, 1),
                "the dead connection was pooled: {stats:?}"
            );
            let warnings = recorder.budget_warnings("session");
            assert_eq!(warnings.len(), 1, "{:?}", recorder.events());
            assert!(warnings[0].number("held_ms").unwrap() >= 1000);
            assert_eq!(warnings[0].number("budget_ms"), Some(300));

            // The next unit gets a new, healthy connection.
            let (_, next) = factory_budget_inside(&factory).expect("next unit");
            assert_ne!(next, pid);
            assert_eq!(factory.stats().connections_created, 2);
        });
    }

    /// The same through `#[unit_of_work(budget_ms = 300)]`: the unit fails
    /// with the lost connection, nothing it did persists, and the connection
    /// is not reused.
    #[test]
    fn uow_unit_idle_past_budget_is_ended_by_the_server() {
        crate::support::run::<Postgres>("uow_budget_unit_idle_pg", |ctx| {
            let factory = ctx.builder().max_size(1).build().expect("factory");
            let (_, pid) = factory_budget_inside(&factory).expect("unit");
            let error = idle_past_budget(&factory, &ctx.table).expect_err("ended by the server");
            assert!(error.is_transient(), "{error}");
            assert_eq!(
                error.diesel_error().and_then(classify),
                Some(TransientKind::ConnectionLost),
                "{error}"
            );
            let stats = factory.stats();
            assert_eq!((stats.in_use, stats.open), (0, 0), "{stats:?}");
            let (_, next) = factory_budget_inside(&factory).expect("next unit");
            assert_ne!(next, pid, "the ended connection was reused");
        });
    }
}

#[cfg(feature = "mysql")]
mod mariadb_server {
    use dbscope::{unit_of_work, Error, SessionFactory};
    use diesel::connection::SimpleConnection;
    use diesel::MysqlConnection;

    use crate::support::{Backend, Mysql};
    use crate::uow_support::Queries;

    const TIMEOUT: &str = "SELECT CAST(@@idle_transaction_timeout AS SIGNED) AS n";

    #[unit_of_work(factory = db, budget_ms = 2000)]
    fn server_budget_inside(
        db: &SessionFactory<MysqlConnection>,
        conn: &mut MysqlConnection,
    ) -> Result<(i64, i64), Error> {
        Ok((conn.query_i64(TIMEOUT)?, Mysql::connection_id(conn)))
    }

    #[unit_of_work(factory = db, budget_ms = 2000)]
    fn server_budget_then_fail(
        db: &SessionFactory<MysqlConnection>,
        conn: &mut MysqlConnection,
    ) -> Result<(), Error> {
        conn.query_i64("SELECT 1 AS n FROM no_such_table_here")?;
        Ok(())
    }

    #[unit_of_work(factory = db)]
    fn factory_budget_inside(
        db: &SessionFactory<MysqlConnection>,
        conn: &mut MysqlConnection,
    ) -> Result<(i64, i64), Error> {
        Ok((conn.query_i64(TIMEOUT)?, Mysql::connection_id(conn)))
    }

    /// MariaDB sets the budget for the session (whole seconds), so the
    /// runtime must put the factory's back after the unit, on the same
    /// connection, whether the unit committed or failed.
    #[test]
    fn uow_budget_reaches_the_server_and_is_restored() {
        crate::support::run::<Mysql>("uow_budget_server_my", |ctx| {
            let factory = ctx.builder().max_size(1).build().expect("factory");
            let mut probe = Mysql::plain(ctx.url());
            if probe
                .query_i64("SELECT CAST(@@idle_transaction_timeout AS SIGNED) AS n")
                .is_err()
            {
                eprintln!(
                    "skipping: the server is MySQL, not MariaDB (no idle_transaction_timeout)"
                );
                return;
            }
            let (before, pid) = factory_budget_inside(&factory).expect("unit");
            assert_eq!(before, 5, "the factory's default budget (5 s) at connect");
            let (inside, same) = server_budget_inside(&factory).expect("unit");
            assert_eq!(inside, 2, "the unit's budget_ms = 2000 on the server");
            assert_eq!(pid, same);
            let (after, same) = factory_budget_inside(&factory).expect("unit");
            assert_eq!((after, same), (5, pid), "restored on the same connection");
            let mut conn = factory.checkout().expect("checkout");
            assert_eq!(conn.query_i64(TIMEOUT).unwrap(), 5, "between units");
            drop(conn);

            server_budget_then_fail(&factory).expect_err("no such table");
            let (after, same) = factory_budget_inside(&factory).expect("unit");
            assert_eq!((after, same), (5, pid), "restored after a failed unit");
            let stats = factory.stats();
            assert_eq!(
                (stats.connections_created, stats.closed_dirty),
                (1, 0),
                "{stats:?}"
            );
        });
    }

    /// A factory that gives the server no budget of its own: after a unit
    /// with `budget_ms`, the session is back to the server's default, so
    /// later units without a budget are not ended by the server after 2 s.
    #[test]
    fn uow_budget_restored_without_a_factory_budget() {
        crate::support::run::<Mysql>("uow_budget_no_default_my", |ctx| {
            let factory = ctx
                .builder()
                .max_size(1)
                .hold_budget(None)
                .build()
                .expect("factory");
            let server_default = Mysql::plain(ctx.url())
                .query_i64("SELECT CAST(@@global.idle_transaction_timeout AS SIGNED) AS n")
                .expect("MariaDB");
            let (before, pid) = factory_budget_inside(&factory).expect("unit");
            assert_eq!(before, server_default);
            let (inside, same) = server_budget_inside(&factory).expect("unit");
            assert_eq!((inside, same), (2, pid));
            let (after, same) = factory_budget_inside(&factory).expect("unit");
            assert_eq!(same, pid);
            assert_eq!(
                after, server_default,
                "the unit's budget stayed on the connection"
            );
        });
    }

    /// A factory budget of `Duration::MAX` ("never"): whole seconds without
    /// overflow, clamped by MariaDB to its maximum (one year).
    #[test]
    fn uow_budget_beyond_the_server_maximum_is_clamped() {
        crate::support::run::<Mysql>("uow_budget_clamped_my", |ctx| {
            let factory = ctx
                .builder()
                .max_size(1)
                .hold_budget(Some(std::time::Duration::MAX))
                .build()
                .expect("factory with an endless budget");
            let (inside, _) = factory_budget_inside(&factory).expect("unit");
            assert_eq!(inside, 31_536_000);
        });
    }

    /// Idles inside its transaction for longer than its budget, then queries.
    #[unit_of_work(factory = db, budget_ms = 1000)]
    fn idle_past_budget(
        db: &SessionFactory<MysqlConnection>,
        conn: &mut MysqlConnection,
        table: &str,
    ) -> Result<i64, Error> {
        conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES (1, 1)"))?;
        std::thread::sleep(std::time::Duration::from_millis(2500));
        Ok(conn.query_i64(&format!("SELECT COUNT(*) AS n FROM {table}"))?)
    }

    /// MariaDB ends a transaction left idle past the unit's budget: the unit
    /// fails with a lost connection, its insert is gone, and the pool opens a
    /// new connection for the next unit (with the factory's budget).
    #[test]
    fn uow_unit_idle_past_budget_is_ended_by_the_server() {
        use dbscope::{classify, TransientKind};

        crate::support::run::<Mysql>("uow_budget_unit_idle_my", |ctx| {
            let factory = ctx.builder().max_size(1).build().expect("factory");
            let (_, pid) = factory_budget_inside(&factory).expect("unit");
            let error = idle_past_budget(&factory, &ctx.table).expect_err("ended by the server");
            assert_eq!(
                error.diesel_error().and_then(classify),
                Some(TransientKind::ConnectionLost),
                "{error}"
            );
            assert!(!ctx.has_row(1), "the ended transaction's insert persisted");
            let stats = factory.stats();
            assert_eq!((stats.in_use, stats.open), (0, 0), "{stats:?}");
            let (budget, next) = factory_budget_inside(&factory).expect("next unit");
            assert_ne!(next, pid, "the ended connection was reused");
            assert_eq!(budget, 5);
        });
    }
}
