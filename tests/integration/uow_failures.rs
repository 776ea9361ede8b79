//! How `#[unit_of_work]` functions end when things go wrong: a panic rolls
//! back and returns the connection; a unit called inside another on the same
//! factory fails fast with `Phase::Nesting` instead of waiting forever for a
//! second connection from a pool of one.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use dbscope::{unit_of_work, Error, Phase, SessionFactory};
use diesel::connection::SimpleConnection;

use crate::support::Ctx;
use crate::uow_support::{Dialect, Queries};

crate::all_backends!([
    uow_panic_rolls_back_and_returns_connection,
    uow_nested_unit_fails_fast_on_pool_of_one,
    uow_helper_taking_conn_is_the_alternative,
]);

#[unit_of_work(factory = db)]
fn insert_then_panic<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
    id: i64,
) -> Result<(), Error> {
    conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES ({id}, 1)"))?;
    panic!("the unit panics after inserting row {id}");
}

/// Inserts a row and returns (rows seen, connection id).
#[unit_of_work(factory = db)]
fn insert_and_count<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
    id: i64,
) -> Result<(i64, i64), Error> {
    conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES ({id}, 1)"))?;
    let rows = conn.query_i64(&format!("SELECT COUNT(*) AS n FROM {table}"))?;
    Ok((rows, B::connection_id(conn)))
}

fn uow_panic_rolls_back_and_returns_connection<B: Dialect>(ctx: &Ctx<B>) {
    let factory = ctx
        .builder()
        .max_size(1)
        .checkout_timeout(Duration::from_secs(2))
        .build()
        .expect("factory");
    let (_, before) = insert_and_count::<B>(&factory, &ctx.table, 1).expect("first unit");
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        insert_then_panic::<B>(&factory, &ctx.table, 2)
    }));
    let payload = outcome.expect_err("the panic reaches the caller");
    assert!(
        payload
            .downcast_ref::<String>()
            .is_some_and(|m| m.contains("row 2")),
        "the caller gets the body's own panic"
    );
    assert!(!ctx.has_row(2), "a panicking unit left its row");
    let stats = factory.stats();
    assert_eq!(
        (stats.in_use, stats.idle, stats.closed_dirty),
        (0, 1, 0),
        "rolled back and pooled: {stats:?}"
    );

    // With a pool of one, the next unit only works if the connection came back.
    let (rows, after) = insert_and_count::<B>(&factory, &ctx.table, 3).expect("next unit");
    assert_eq!(rows, 2, "rows 1 and 3, not the panicking unit's");
    assert_eq!(before, after, "the same connection, rolled back and reused");
    assert!(ctx.has_row(3));
    let stats = factory.stats();
    assert_eq!((stats.in_use, stats.checkout_timeouts), (0, 0), "{stats:?}");
}

#[unit_of_work(factory = db)]
fn inner_unit<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
    id: i64,
) -> Result<(), Error> {
    conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES ({id}, 2)"))?;
    Ok(())
}

/// Calls `inner_unit` on its own factory and reports what it returned.
#[unit_of_work(factory = db)]
fn outer_unit<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
) -> Result<Result<(), Phase>, Error> {
    conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES (1, 1)"))?;
    Ok(inner_unit::<B>(db, table, 2).map_err(|e| e.phase()))
}

/// Propagates `inner_unit`'s error with `?`, so the outer unit rolls back too.
#[unit_of_work(factory = db)]
fn outer_unit_propagating<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
) -> Result<(), Error> {
    conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES (3, 1)"))?;
    inner_unit::<B>(db, table, 4)
}

fn uow_nested_unit_fails_fast_on_pool_of_one<B: Dialect>(ctx: &Ctx<B>) {
    // A nested unit that waited for a second connection would wait for the
    // whole checkout timeout (10 s) and then fail; it must fail at once.
    let factory = ctx
        .builder()
        .max_size(1)
        .checkout_timeout(Duration::from_secs(10))
        .build()
        .expect("factory");
    let started = Instant::now();
    let inner = outer_unit::<B>(&factory, &ctx.table).expect("the outer unit commits");
    assert_eq!(inner, Err(Phase::Nesting));
    assert!(ctx.has_row(1), "the outer unit's own work committed");
    assert!(!ctx.has_row(2), "the nested unit ran");

    let error = outer_unit_propagating::<B>(&factory, &ctx.table).expect_err("nesting");
    assert_eq!(error.phase(), Phase::Nesting, "{error}");
    assert!(
        error.to_string().contains("inner_unit"),
        "the error names the nested unit: {error}"
    );
    assert!(
        !ctx.has_row(3) && !ctx.has_row(4),
        "the outer unit rolled back"
    );
    // A bound, not a timing assertion: both failed long before the 10 s timeout.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "nested units waited {:?}",
        started.elapsed()
    );
    let stats = factory.stats();
    assert_eq!(
        (stats.in_use, stats.checkout_timeouts, stats.closed_dirty),
        (0, 0, 0),
        "{stats:?}"
    );
    // Outside any unit, the inner unit works.
    inner_unit::<B>(&factory, &ctx.table, 2).expect("not nested now");
    assert!(ctx.has_row(2));
}

/// The documented alternative to nesting: a plain function taking the unit's
/// connection.
fn insert_row<C: Queries>(conn: &mut C, table: &str, id: i64) -> diesel::QueryResult<()> {
    conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES ({id}, 3)"))
}

#[unit_of_work(factory = db)]
fn insert_pair<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
    first: i64,
    second: i64,
) -> Result<i64, Error> {
    insert_row(conn, table, first)?;
    insert_row(conn, table, second)?;
    Ok(conn.query_i64(&format!("SELECT COUNT(*) AS n FROM {table}"))?)
}

fn uow_helper_taking_conn_is_the_alternative<B: Dialect>(ctx: &Ctx<B>) {
    let factory = ctx
        .builder()
        .max_size(1)
        .checkout_timeout(Duration::from_secs(10))
        .build()
        .expect("factory");
    let seen = insert_pair::<B>(&factory, &ctx.table, 1, 2).expect("both rows, one unit");
    assert_eq!(seen, 2);
    assert!(ctx.has_row(1) && ctx.has_row(2));
    // One transaction: a failure in the second insert undoes the first.
    let error = insert_pair::<B>(&factory, &ctx.table, 3, 1).expect_err("duplicate id 1");
    assert_eq!(error.phase(), Phase::User, "{error}");
    assert!(!ctx.has_row(3), "the first helper call was not rolled back");
    assert_eq!(ctx.count(), 2);
    let stats = factory.stats();
    assert_eq!((stats.in_use, stats.checkouts), (0, 2), "{stats:?}");
}
