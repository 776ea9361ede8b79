//! Finds the test servers and gives each scenario its own database objects.
//!
//! Servers come from `PG_DATABASE_URL` / `MYSQL_DATABASE_URL` (fault tests:
//! `PG_FAULTS_DATABASE_URL` / `MYSQL_FAULTS_DATABASE_URL`, falling back to the
//! main URLs). A missing URL panics when `CI` is set and skips the test
//! otherwise. SQLite needs no server: each test gets its own file in a fresh
//! temporary directory.

use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dbscope::{PoolableConnection, SessionFactory, SessionFactoryBuilder};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::query_builder::SqlQuery;
use diesel::query_dsl::methods::{ExecuteDsl, LoadQuery};
use diesel::sql_types::BigInt;

/// One `BIGINT` column named `n`: every scalar the tests read.
#[derive(QueryableByName, Debug)]
pub struct Scalar {
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

fn load_scalar<C>(conn: &mut C, sql: &str) -> QueryResult<i64>
where
    C: Connection,
    for<'a> SqlQuery: LoadQuery<'a, C, Scalar>,
{
    diesel::sql_query(sql)
        .get_result::<Scalar>(conn)
        .map(|s| s.n)
}

fn execute_prepared<C>(conn: &mut C, sql: &str) -> QueryResult<usize>
where
    C: Connection,
    SqlQuery: ExecuteDsl<C>,
{
    diesel::sql_query(sql).execute(conn)
}

/// The URL in `var`, or `fallback`'s; `None` (skip) when neither is set, a
/// panic when `CI` is set.
pub fn server_url(var: &str, fallback: Option<&str>, test: &str) -> Option<String> {
    let read = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(url) = read(var).or_else(|| fallback.and_then(read)) {
        return Some(url);
    }
    let wanted = match fallback {
        Some(fallback) => format!("{var} (or {fallback})"),
        None => var.to_owned(),
    };
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {wanted} is not set, and CI is set: integration tests must run against a real server in CI");
    }
    eprintln!("skipping {test}: {wanted} is not set");
    None
}

/// A database backend the scenarios run on.
pub trait Backend: Sized + 'static {
    /// The diesel connection type.
    type Conn: PoolableConnection;
    /// Short name used in table names.
    const NAME: &'static str;

    /// The main test database for `test`, or `None` to skip.
    fn database(test: &str) -> Option<Database>;

    /// The faults database for `test`, or `None` to skip.
    fn faults_database(test: &str) -> Option<Database> {
        Self::database(test)
    }

    /// Reads one `BIGINT` column named `n`.
    fn scalar(conn: &mut Self::Conn, sql: &str) -> QueryResult<i64>;

    /// Runs one statement as a (prepared) query, the way user code does.
    fn execute(conn: &mut Self::Conn, sql: &str) -> QueryResult<usize>;

    /// A query returning the identity of the connection as `n`.
    const CONNECTION_ID_SQL: &'static str;

    /// DDL of a test table: `id` primary key, `v` integer not null.
    fn create_table_sql(table: &str) -> String {
        format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
    }

    /// A factory builder for `url`, with what the tests need to tell
    /// connections apart.
    fn builder(url: &str) -> SessionFactoryBuilder<Self::Conn> {
        SessionFactory::builder(url)
    }

    /// A plain diesel connection, outside any pool.
    fn plain(url: &str) -> Self::Conn {
        Self::Conn::establish(url).unwrap_or_else(|e| panic!("plain connection to {url}: {e}"))
    }

    /// The identity of the connection under `conn`.
    fn connection_id(conn: &mut Self::Conn) -> i64 {
        Self::scalar(conn, Self::CONNECTION_ID_SQL).expect("connection id")
    }
}

/// A database a test may use; deletes its temporary directory when dropped.
pub struct Database {
    pub url: String,
    temp_dir: Option<PathBuf>,
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some(dir) = &self.temp_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A fresh, empty temporary directory.
pub fn temp_dir(test: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "dbscope-it-{}-{}-{}-{nanos}",
        std::process::id(),
        test,
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

pub struct Sqlite;

impl Backend for Sqlite {
    type Conn = diesel::SqliteConnection;
    const NAME: &'static str = "sqlite";
    const CONNECTION_ID_SQL: &'static str = "SELECT n FROM temp.dbscope_connection_id";

    fn database(test: &str) -> Option<Database> {
        let dir = temp_dir(test);
        Some(Database {
            url: dir.join("test.db").to_string_lossy().into_owned(),
            temp_dir: Some(dir),
        })
    }

    fn scalar(conn: &mut Self::Conn, sql: &str) -> QueryResult<i64> {
        load_scalar(conn, sql)
    }

    fn execute(conn: &mut Self::Conn, sql: &str) -> QueryResult<usize> {
        execute_prepared(conn, sql)
    }

    /// SQLite has no server-side connection id: every pooled connection gets
    /// a unique number in a connection-local temporary table when it opens.
    fn builder(url: &str) -> SessionFactoryBuilder<Self::Conn> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        SessionFactory::builder(url).on_connect(|conn: &mut diesel::SqliteConnection| {
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            conn.batch_execute(&format!(
                "CREATE TEMP TABLE dbscope_connection_id (n INTEGER NOT NULL); \
                 INSERT INTO dbscope_connection_id VALUES ({id})"
            ))
        })
    }

    fn plain(url: &str) -> Self::Conn {
        let mut conn = Self::Conn::establish(url).unwrap_or_else(|e| panic!("sqlite {url}: {e}"));
        conn.batch_execute("PRAGMA busy_timeout = 5000")
            .expect("busy_timeout");
        conn
    }
}

#[cfg(feature = "postgres")]
pub struct Postgres;

#[cfg(feature = "postgres")]
impl Backend for Postgres {
    type Conn = diesel::PgConnection;
    const NAME: &'static str = "pg";
    const CONNECTION_ID_SQL: &'static str = "SELECT CAST(pg_backend_pid() AS BIGINT) AS n";

    fn database(test: &str) -> Option<Database> {
        server_url("PG_DATABASE_URL", None, test).map(|url| Database {
            url,
            temp_dir: None,
        })
    }

    fn faults_database(test: &str) -> Option<Database> {
        server_url("PG_FAULTS_DATABASE_URL", Some("PG_DATABASE_URL"), test).map(|url| Database {
            url,
            temp_dir: None,
        })
    }

    fn scalar(conn: &mut Self::Conn, sql: &str) -> QueryResult<i64> {
        load_scalar(conn, sql)
    }

    fn execute(conn: &mut Self::Conn, sql: &str) -> QueryResult<usize> {
        execute_prepared(conn, sql)
    }
}

#[cfg(feature = "mysql")]
pub struct Mysql;

#[cfg(feature = "mysql")]
impl Backend for Mysql {
    type Conn = diesel::MysqlConnection;
    const NAME: &'static str = "my";
    const CONNECTION_ID_SQL: &'static str = "SELECT CAST(CONNECTION_ID() AS SIGNED) AS n";

    fn database(test: &str) -> Option<Database> {
        server_url("MYSQL_DATABASE_URL", None, test).map(|url| Database {
            url,
            temp_dir: None,
        })
    }

    fn faults_database(test: &str) -> Option<Database> {
        server_url(
            "MYSQL_FAULTS_DATABASE_URL",
            Some("MYSQL_DATABASE_URL"),
            test,
        )
        .map(|url| Database {
            url,
            temp_dir: None,
        })
    }

    fn scalar(conn: &mut Self::Conn, sql: &str) -> QueryResult<i64> {
        load_scalar(conn, sql)
    }

    fn execute(conn: &mut Self::Conn, sql: &str) -> QueryResult<usize> {
        execute_prepared(conn, sql)
    }

    fn create_table_sql(table: &str) -> String {
        format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY, v INTEGER NOT NULL) ENGINE = InnoDB")
    }
}

/// What a scenario gets: its database and its own freshly created table.
pub struct Ctx<B: Backend> {
    pub db: Database,
    pub table: String,
    _backend: PhantomData<B>,
}

impl<B: Backend> Ctx<B> {
    fn new(db: Database, test: &str) -> Self {
        let table = format!("it_{}_{}", B::NAME, test);
        assert!(table.len() <= 63, "table name too long: {table}");
        let ctx: Self = Ctx {
            db,
            table,
            _backend: PhantomData,
        };
        let mut conn = ctx.plain();
        conn.batch_execute(&format!("DROP TABLE IF EXISTS {}", ctx.table))
            .expect("drop test table");
        conn.batch_execute(&B::create_table_sql(&ctx.table))
            .expect("create test table");
        ctx
    }

    pub fn url(&self) -> &str {
        &self.db.url
    }

    /// A factory builder for this test's database.
    pub fn builder(&self) -> SessionFactoryBuilder<B::Conn> {
        B::builder(self.url())
    }

    /// A plain connection outside any pool ("another session").
    pub fn plain(&self) -> B::Conn {
        B::plain(self.url())
    }

    pub fn insert_sql(&self, id: i64, v: i64) -> String {
        format!("INSERT INTO {} (id, v) VALUES ({id}, {v})", self.table)
    }

    /// Rows in the table, read on a new plain connection.
    pub fn count(&self) -> i64 {
        B::scalar(&mut self.plain(), &self.count_sql()).expect("count rows")
    }

    pub fn count_sql(&self) -> String {
        format!("SELECT COUNT(*) AS n FROM {}", self.table)
    }

    /// Whether the row with `id` exists, read on a new plain connection.
    pub fn has_row(&self, id: i64) -> bool {
        let sql = format!("SELECT COUNT(*) AS n FROM {} WHERE id = {id}", self.table);
        B::scalar(&mut self.plain(), &sql).expect("count row") == 1
    }
}

/// Runs `scenario` on the main database of `B`, with a table of its own.
pub fn run<B: Backend>(test: &str, scenario: fn(&Ctx<B>)) {
    let Some(db) = B::database(test) else { return };
    scenario(&Ctx::new(db, test));
}

/// Runs `scenario` on the faults database of `B`, with a table of its own.
pub fn run_faults<B: Backend>(test: &str, scenario: fn(&Ctx<B>)) {
    let Some(db) = B::faults_database(test) else {
        return;
    };
    scenario(&Ctx::new(db, test));
}

/// Polls `condition` every 10 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if started.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The error type of test bodies: the runtime's, or a business failure.
#[allow(dead_code)] // the fields are read through `Debug` in assertion messages
#[derive(Debug)]
pub enum TestError {
    Db(dbscope::Error),
    Business(&'static str),
}

impl From<dbscope::Error> for TestError {
    fn from(error: dbscope::Error) -> Self {
        TestError::Db(error)
    }
}

impl From<diesel::result::Error> for TestError {
    fn from(error: diesel::result::Error) -> Self {
        TestError::Db(error.into())
    }
}

/// A multi-thread tokio runtime with the time driver.
#[cfg(feature = "tokio")]
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("tokio runtime")
}

/// Instantiates scenarios (generic fns `fn(&Ctx<B>)` in the parent module) as
/// `#[test]`s for one backend; `$runner` is `run` or `run_faults`.
#[macro_export]
macro_rules! backend_tests {
    ($runner:ident, $backend:ty, [$($name:ident),* $(,)?]) => {
        $(
            #[test]
            fn $name() {
                $crate::support::$runner::<$backend>(stringify!($name), super::$name::<$backend>);
            }
        )*
    };
}

/// Instantiates the scenarios of the calling module for SQLite, PostgreSQL and
/// MariaDB, each in a submodule named for the backend.
#[macro_export]
macro_rules! all_backends {
    ([$($name:ident),* $(,)?]) => {
        mod sqlite {
            $crate::backend_tests!(run, $crate::support::Sqlite, [$($name),*]);
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $crate::backend_tests!(run, $crate::support::Postgres, [$($name),*]);
        }
        #[cfg(feature = "mysql")]
        mod mysql {
            $crate::backend_tests!(run, $crate::support::Mysql, [$($name),*]);
        }
    };
}

/// A session held open only to keep a connection checked out: read-only, so
/// several can be open at once on SQLite, where sessions that may write
/// begin `IMMEDIATE` and take turns.
pub fn hold<C: dbscope::PoolableConnection>(factory: &SessionFactory<C>) -> dbscope::Session<C> {
    factory
        .session_with(&dbscope::UnitOptions::new("hold").read_only(true))
        .expect("a held session")
}
