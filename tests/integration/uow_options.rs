//! The transaction options of `#[unit_of_work]` reach the server
//! (PROBLEMS.md section 5): the server's own view inside the unit matches the
//! isolation level and read-only flag asked for, the level changes what the
//! unit reads, and nothing leaks into the next unit on the same connection.

use std::cell::Cell;

use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::connection::SimpleConnection;

use crate::support::{Backend, Ctx};
use crate::uow_support::{Dialect, Queries};

crate::all_backends!([uow_read_only_refuses_writes_and_does_not_leak]);

/// Tries to write in a read-only unit; records what the server said about
/// the transaction and which connection it ran on.
#[unit_of_work(factory = db, read_only)]
fn write_in_read_only<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
    seen: &Cell<Option<(bool, i64)>>,
) -> Result<(), Error> {
    seen.set(Some((
        B::read_only_view(conn, table)?,
        B::connection_id(conn),
    )));
    conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES (1, 1)"))?;
    Ok(())
}

/// A read-only unit that only reads, and so commits.
#[unit_of_work(factory = db, read_only)]
fn count_read_only<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
) -> Result<(bool, i64), Error> {
    let view = B::read_only_view(conn, table)?;
    Ok((
        view,
        conn.query_i64(&format!("SELECT COUNT(*) AS n FROM {table}"))?,
    ))
}

/// A read-write unit: the server's read-only view, the connection, and a write.
#[unit_of_work(factory = db)]
fn write<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
    id: i64,
) -> Result<(bool, i64), Error> {
    let view = B::read_only_view(conn, table)?;
    conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES ({id}, 1)"))?;
    Ok((view, B::connection_id(conn)))
}

fn uow_read_only_refuses_writes_and_does_not_leak<B: Dialect>(ctx: &Ctx<B>) {
    // One connection, so every unit below runs on the same one.
    let factory = ctx.builder().max_size(1).build().expect("factory");
    let seen = Cell::new(None);
    let error = write_in_read_only::<B>(&factory, &ctx.table, &seen).expect_err("write refused");
    assert_eq!(error.phase(), dbscope::Phase::User, "{error}");
    let (read_only, connection) = seen.get().expect("the body ran");
    assert!(read_only, "the server did not see a read-only transaction");
    assert!(!ctx.has_row(1), "a read-only unit wrote a row");

    // The next unit on the same connection is read-write again.
    let (read_only, again) = write::<B>(&factory, &ctx.table, 2).expect("read-write unit");
    assert!(!read_only, "read-only leaked into the next unit");
    assert_eq!(connection, again, "not the same pooled connection");
    assert!(ctx.has_row(2));

    // A read-only unit that succeeds (commits) does not leak either.
    let (read_only, rows) = count_read_only::<B>(&factory, &ctx.table).expect("read-only read");
    assert!(read_only);
    assert_eq!(rows, 1);
    let (read_only, again) = write::<B>(&factory, &ctx.table, 3).expect("read-write unit");
    assert!(
        !read_only,
        "read-only leaked after a committed read-only unit"
    );
    assert_eq!(connection, again);
    assert!(ctx.has_row(3));

    let stats = factory.stats();
    assert_eq!(
        (stats.connections_created, stats.closed_dirty, stats.in_use),
        (1, 0, 0),
        "{stats:?}"
    );
}

/// PostgreSQL's view of the open transaction's isolation level.
#[cfg(feature = "postgres")]
fn pg_isolation(conn: &mut diesel::PgConnection, _table: &str) -> diesel::QueryResult<String> {
    conn.query_text("SELECT current_setting('transaction_isolation') AS t")
}

/// MariaDB's view: `SET TRANSACTION ISOLATION LEVEL` (what the runtime sends
/// before `START TRANSACTION`) applies to the next transaction only and does
/// not show in `@@tx_isolation`, which stays the session default; InnoDB's
/// row for the transaction has the level it runs at.
#[cfg(feature = "mysql")]
fn mysql_isolation(conn: &mut diesel::MysqlConnection, table: &str) -> diesel::QueryResult<String> {
    crate::uow_support::innodb_trx(conn, table, "trx_isolation_level").map(|l| l.to_lowercase())
}

/// Stamps out, for one backend, units at every isolation level and the tests
/// that read the server's view from inside them.
macro_rules! isolation_tests {
    ($module:ident, $backend:ident, $conn:ident, $view:path, default = $default:literal) => {
        mod $module {
            use std::cell::Cell;
            use std::time::Duration;

            use dbscope::{unit_of_work, Error, SessionFactory};
            use diesel::connection::SimpleConnection;
            use diesel::$conn;

            use crate::support::{$backend, Ctx};
            use crate::uow_support::{Dialect, Queries};

            #[unit_of_work(factory = db, isolation = read_uncommitted)]
            fn read_uncommitted(
                db: &SessionFactory<$conn>,
                conn: &mut $conn,
                table: &str,
            ) -> Result<String, Error> {
                Ok($view(conn, table)?)
            }

            #[unit_of_work(factory = db, isolation = read_committed)]
            fn read_committed(
                db: &SessionFactory<$conn>,
                conn: &mut $conn,
                table: &str,
            ) -> Result<String, Error> {
                Ok($view(conn, table)?)
            }

            #[unit_of_work(factory = db, isolation = repeatable_read)]
            fn repeatable_read(
                db: &SessionFactory<$conn>,
                conn: &mut $conn,
                table: &str,
            ) -> Result<String, Error> {
                Ok($view(conn, table)?)
            }

            #[unit_of_work(factory = db, isolation = serializable)]
            fn serializable(
                db: &SessionFactory<$conn>,
                conn: &mut $conn,
                table: &str,
            ) -> Result<String, Error> {
                Ok($view(conn, table)?)
            }

            #[unit_of_work(factory = db, isolation = serializable, read_only)]
            fn serializable_read_only(
                db: &SessionFactory<$conn>,
                conn: &mut $conn,
                table: &str,
            ) -> Result<(String, bool), Error> {
                let level = $view(conn, table)?;
                Ok((level, <$backend as Dialect>::read_only_view(conn, table)?))
            }

            /// No option: the server's default level.
            #[unit_of_work(factory = db)]
            fn default_level(
                db: &SessionFactory<$conn>,
                conn: &mut $conn,
                table: &str,
            ) -> Result<String, Error> {
                Ok($view(conn, table)?)
            }

            /// Reads row 1 twice; `between` commits a change to it on another
            /// connection in the meantime.
            #[unit_of_work(factory = db, isolation = read_committed)]
            fn read_twice_read_committed(
                db: &SessionFactory<$conn>,
                conn: &mut $conn,
                table: &str,
                between: &mut dyn FnMut(),
            ) -> Result<(i64, i64), Error> {
                let read = format!(
                    "SELECT {} AS n FROM {table} WHERE id = 1",
                    <$backend as Dialect>::bigint_sql("v")
                );
                let first = conn.query_i64(&read)?;
                between();
                Ok((first, conn.query_i64(&read)?))
            }

            #[unit_of_work(factory = db, isolation = repeatable_read)]
            fn read_twice_repeatable_read(
                db: &SessionFactory<$conn>,
                conn: &mut $conn,
                table: &str,
                between: &mut dyn FnMut(),
            ) -> Result<(i64, i64), Error> {
                let read = format!(
                    "SELECT {} AS n FROM {table} WHERE id = 1",
                    <$backend as Dialect>::bigint_sql("v")
                );
                let first = conn.query_i64(&read)?;
                between();
                Ok((first, conn.query_i64(&read)?))
            }

            #[test]
            fn uow_isolation_is_what_the_server_sees() {
                crate::support::run::<$backend>(
                    concat!("uow_isolation_", stringify!($module)),
                    scenario,
                );
                fn scenario(ctx: &Ctx<$backend>) {
                    let factory = ctx.builder().max_size(1).build().expect("factory");
                    let table = ctx.table.as_str();
                    let seen = [
                        read_uncommitted(&factory, table).expect("read_uncommitted"),
                        default_level(&factory, table).expect("default"),
                        read_committed(&factory, table).expect("read_committed"),
                        default_level(&factory, table).expect("default"),
                        repeatable_read(&factory, table).expect("repeatable_read"),
                        default_level(&factory, table).expect("default"),
                        serializable(&factory, table).expect("serializable"),
                        default_level(&factory, table).expect("default"),
                    ];
                    assert_eq!(
                        seen,
                        [
                            "read uncommitted",
                            $default,
                            "read committed",
                            $default,
                            "repeatable read",
                            $default,
                            "serializable",
                            $default,
                        ],
                        "levels seen by the server, each unit then a unit without the option"
                    );
                    let (level, read_only) =
                        serializable_read_only(&factory, table).expect("serializable read-only");
                    assert_eq!((level.as_str(), read_only), ("serializable", true));
                    assert_eq!(default_level(&factory, table).expect("default"), $default);
                    let stats = factory.stats();
                    assert_eq!(
                        (stats.connections_created, stats.closed_dirty),
                        (1, 0),
                        "every unit ran on the one pooled connection: {stats:?}"
                    );
                }
            }

            #[test]
            fn uow_isolation_changes_what_a_unit_reads() {
                crate::support::run::<$backend>(
                    concat!("uow_isolation_reads_", stringify!($module)),
                    scenario,
                );
                fn scenario(ctx: &Ctx<$backend>) {
                    ctx.plain()
                        .batch_execute(&ctx.insert_sql(1, 0))
                        .expect("seed");
                    let factory = ctx
                        .builder()
                        .max_size(1)
                        .checkout_timeout(Duration::from_secs(5))
                        .build()
                        .expect("factory");
                    let mut other = ctx.plain();
                    let commits = Cell::new(0);
                    let mut bump = || {
                        other
                            .batch_execute(&format!(
                                "UPDATE {} SET v = v + 1 WHERE id = 1",
                                ctx.table
                            ))
                            .expect("concurrent update commits");
                        commits.set(commits.get() + 1);
                    };
                    let (first, second) =
                        read_twice_read_committed(&factory, &ctx.table, &mut bump)
                            .expect("read committed");
                    assert_eq!(
                        second,
                        first + 1,
                        "read committed sees a change committed during the unit"
                    );
                    let (first, second) =
                        read_twice_repeatable_read(&factory, &ctx.table, &mut bump)
                            .expect("repeatable read");
                    assert_eq!(
                        second, first,
                        "repeatable read saw a change committed during the unit"
                    );
                    assert_eq!(first, 1, "the snapshot is the committed value");
                    assert_eq!(commits.get(), 2);
                    assert_eq!(
                        <$backend as crate::support::Backend>::scalar(
                            &mut ctx.plain(),
                            &format!(
                                "SELECT {} AS n FROM {} WHERE id = 1",
                                <$backend as Dialect>::bigint_sql("v"),
                                ctx.table
                            )
                        )
                        .unwrap(),
                        2
                    );
                }
            }
        }
    };
}

#[cfg(feature = "postgres")]
isolation_tests!(
    pg_levels,
    Postgres,
    PgConnection,
    super::pg_isolation,
    default = "read committed"
);

#[cfg(feature = "mysql")]
isolation_tests!(
    mariadb_levels,
    Mysql,
    MysqlConnection,
    super::mysql_isolation,
    default = "repeatable read"
);

/// MariaDB: `SET TRANSACTION ISOLATION LEVEL` (no `SESSION`) touched only the
/// unit's own transaction; the session default is what it was.
#[cfg(feature = "mysql")]
#[test]
fn uow_isolation_leaves_mysql_session_default() {
    use crate::support::Mysql;

    #[unit_of_work(factory = db, isolation = serializable)]
    fn session_default_inside(
        db: &SessionFactory<diesel::MysqlConnection>,
        conn: &mut diesel::MysqlConnection,
    ) -> Result<String, Error> {
        Ok(conn.query_text("SELECT @@tx_isolation AS t")?)
    }

    crate::support::run::<Mysql>("uow_isolation_my_session", |ctx| {
        let factory = ctx.builder().max_size(1).build().expect("factory");
        let before = Mysql::plain(ctx.url())
            .query_text("SELECT @@tx_isolation AS t")
            .unwrap();
        assert_eq!(session_default_inside(&factory).unwrap(), before);
        let mut conn = factory.checkout().expect("the same pooled connection");
        assert_eq!(
            conn.query_text("SELECT @@tx_isolation AS t").unwrap(),
            before,
            "the unit's level leaked into the session"
        );
    });
}
