//! What the `#[unit_of_work]` scenarios need beyond `support`: reads of text
//! and integers on any connection, the few SQL texts that differ between
//! backends, and a `tracing` layer that records events.

use std::sync::{Arc, Mutex};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::query_builder::SqlQuery;
use diesel::query_dsl::methods::LoadQuery;
use diesel::sql_types::Text;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer};

use crate::support::{Backend, Ctx, Scalar};

/// One text column named `t`.
#[derive(QueryableByName, Debug)]
pub struct TextRow {
    #[diesel(sql_type = Text)]
    pub t: String,
}

/// Reads on any of the three connection types, as user code would write them.
pub trait Queries: Connection + Sized {
    /// One `BIGINT` column named `n` of the first row.
    fn query_i64(&mut self, sql: &str) -> QueryResult<i64>;
    /// One text column named `t` of the first row.
    fn query_text(&mut self, sql: &str) -> QueryResult<String>;
}

impl<C> Queries for C
where
    C: Connection,
    for<'a> SqlQuery: LoadQuery<'a, C, Scalar> + LoadQuery<'a, C, TextRow>,
{
    fn query_i64(&mut self, sql: &str) -> QueryResult<i64> {
        diesel::sql_query(sql)
            .get_result::<Scalar>(self)
            .map(|row| row.n)
    }

    fn query_text(&mut self, sql: &str) -> QueryResult<String> {
        diesel::sql_query(sql)
            .get_result::<TextRow>(self)
            .map(|row| row.t)
    }
}

/// The SQL that differs between backends.
pub trait Dialect: Backend<Conn: Queries> {
    /// An `items` table: generated `id`, unique `name`, integer `v`, and
    /// `created_at` filled in by the server.
    fn items_ddl(table: &str) -> String;

    /// `column` (a timestamp) as seconds since the epoch, a `BIGINT`.
    fn epoch_sql(column: &str) -> String;

    /// `expr` cast to the type a `BIGINT` column reads as.
    fn bigint_sql(expr: &str) -> String;

    /// Whether the server sees the open transaction as read-only.
    fn read_only_view(conn: &mut Self::Conn, table: &str) -> QueryResult<bool>;
}

impl Dialect for crate::support::Sqlite {
    fn items_ddl(table: &str) -> String {
        format!(
            "CREATE TABLE {table} (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, \
             v INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )
    }

    fn epoch_sql(column: &str) -> String {
        format!("CAST(strftime('%s', {column}) AS INTEGER)")
    }

    fn bigint_sql(expr: &str) -> String {
        format!("CAST({expr} AS INTEGER)")
    }

    fn read_only_view(conn: &mut Self::Conn, _table: &str) -> QueryResult<bool> {
        conn.query_i64("SELECT query_only AS n FROM pragma_query_only()")
            .map(|n| n == 1)
    }
}

#[cfg(feature = "postgres")]
impl Dialect for crate::support::Postgres {
    fn items_ddl(table: &str) -> String {
        format!(
            "CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, \
             v BIGINT NOT NULL DEFAULT 0, created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )
    }

    fn epoch_sql(column: &str) -> String {
        format!("CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)")
    }

    fn bigint_sql(expr: &str) -> String {
        format!("CAST({expr} AS BIGINT)")
    }

    fn read_only_view(conn: &mut Self::Conn, _table: &str) -> QueryResult<bool> {
        conn.query_text("SELECT current_setting('transaction_read_only') AS t")
            .map(|t| t == "on")
    }
}

#[cfg(feature = "mysql")]
impl Dialect for crate::support::Mysql {
    fn items_ddl(table: &str) -> String {
        format!(
            "CREATE TABLE {table} (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(190) NOT NULL UNIQUE, \
             v BIGINT NOT NULL DEFAULT 0, created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) \
             ENGINE = InnoDB"
        )
    }

    fn epoch_sql(column: &str) -> String {
        format!("CAST(UNIX_TIMESTAMP({column}) AS SIGNED)")
    }

    fn bigint_sql(expr: &str) -> String {
        format!("CAST({expr} AS SIGNED)")
    }

    /// MariaDB's `@@tx_read_only` is the session default, not the open
    /// transaction's mode: InnoDB's own view is `information_schema.INNODB_TRX`.
    fn read_only_view(conn: &mut Self::Conn, table: &str) -> QueryResult<bool> {
        innodb_trx(conn, table, "CAST(trx_is_read_only AS SIGNED)")
            .map(|n| n.parse::<i64>().ok() == Some(1))
    }
}

/// A column of this connection's row in `information_schema.INNODB_TRX`, as text.
///
/// InnoDB lists a transaction once it touched an InnoDB table (so `table` is
/// read first). It serves that view from a cache it refreshes only when the
/// cache was last *read* more than 100 ms ago, so concurrent readers keep it
/// stale: readers in this process take turns, and each waits 150 ms before
/// reading, which makes its own read refresh the cache.
#[cfg(feature = "mysql")]
pub fn innodb_trx(
    conn: &mut diesel::MysqlConnection,
    table: &str,
    column: &str,
) -> QueryResult<String> {
    static READERS: Mutex<()> = Mutex::new(());
    let _turn = READERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    conn.query_i64(&format!("SELECT COUNT(*) AS n FROM {table}"))?;
    conn.batch_execute("DO SLEEP(0.15)")?;
    conn.query_text(&format!(
        "SELECT CAST({column} AS CHAR) AS t FROM information_schema.INNODB_TRX \
         WHERE trx_mysql_thread_id = CONNECTION_ID()"
    ))
}

/// A table of items of this test, `<test table>_<suffix>`, created empty.
pub fn items_table<B: Dialect>(ctx: &Ctx<B>, suffix: &str) -> String {
    let table = format!("{}_{suffix}", ctx.table);
    assert!(table.len() <= 63, "table name too long: {table}");
    let mut conn = ctx.plain();
    conn.batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
        .expect("drop items table");
    conn.batch_execute(&B::items_ddl(&table))
        .expect("create items table");
    table
}

/// One recorded `tracing` event: its level and fields (strings as written,
/// numbers in decimal).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub level: tracing::Level,
    pub fields: Vec<(String, String)>,
}

impl Recorded {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn number(&self, name: &str) -> Option<u64> {
        self.field(name).and_then(|v| v.parse().ok())
    }
}

/// A layer that records every event it sees.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<Recorded>>>);

impl Recorder {
    /// A subscriber that sends every event to this recorder.
    pub fn dispatch(&self) -> tracing::Dispatch {
        use tracing_subscriber::layer::SubscriberExt;
        tracing::Dispatch::new(tracing_subscriber::registry().with(self.clone()))
    }

    pub fn events(&self) -> Vec<Recorded> {
        self.0.lock().unwrap().clone()
    }

    /// Warnings whose `unit` field is `unit` or a path ending in `::unit`.
    pub fn budget_warnings(&self, unit: &str) -> Vec<Recorded> {
        let suffix = format!("::{unit}");
        self.events()
            .into_iter()
            .filter(|e| e.level == tracing::Level::WARN)
            .filter(|e| {
                e.field("unit")
                    .is_some_and(|u| u == unit || u.ends_with(&suffix))
            })
            .collect()
    }
}

struct FieldVisitor<'a>(&'a mut Vec<(String, String)>);

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.push((field.name().to_owned(), value.to_string()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.push((field.name().to_owned(), value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Recorder {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Vec::new();
        event.record(&mut FieldVisitor(&mut fields));
        self.0.lock().unwrap().push(Recorded {
            level: *event.metadata().level(),
            fields,
        });
    }
}
