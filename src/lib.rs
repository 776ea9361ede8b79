// The front page is the README, so the guide and its examples are the same
// text on GitHub, crates.io and docs.rs, and its examples run as doctests.
// Some examples need the server backends and native async sessions, so the
// whole guide is the front page when every feature is on (docs.rs builds with
// all of them, and so does the test command); a build with fewer features
// gets a pointer instead. `dbscope_all_features` comes from build.rs.
#![cfg_attr(dbscope_all_features, doc = include_str!("../README.md"))]
#![cfg_attr(
    not(dbscope_all_features),
    doc = "Database sessions that live exactly as long as the work that needs them.\n\n\
           The guide (the README) is this page when the docs are built with every feature: \
           `cargo doc --all-features --open`."
)]
/// Your first service with dbscope: handler, repository, units of work, an
/// error type, tests with a database of their own, and what the compile-time
/// checks do not see. (The text is `docs/first-service.md`; its examples run
/// as doctests.)
#[cfg(dbscope_all_features)]
#[doc = include_str!("../docs/first-service.md")]
pub mod guide {}

#[cfg(any(feature = "tokio", feature = "async"))]
pub use dbscope_runtime::spawn_after_commit;
pub use dbscope_runtime::{
    after_commit, classify, is_transient, load_by_id, BackendKind, Detached, Error, Id, Isolation,
    LoadById, Phase, PoolStats, PoolableConnection, PooledConnection, RedactedUrl, RetryPolicy,
    ServerTraits, Session, SessionFactory, SessionFactoryBuilder, SessionSource, SqliteLock,
    TestDatabase, TransientKind, UnitOptions, Validation,
};
#[cfg(feature = "async")]
pub use dbscope_runtime::{
    AsyncPoolableConnection, AsyncPooledConnection, AsyncSessionFactory,
    AsyncSessionFactoryBuilder, AsyncSessionSource,
};
// Named in the compiler's error when a session is held across an `.await` or
// moved to another thread: re-exported so the error names it under `dbscope`.
#[doc(hidden)]
pub use dbscope_runtime::SessionIsOpen_EndItBeforeAwaitOrSpawn;
/// The compile-time checks of `#[detach_ids]` and `#[derive(Detached)]`: the
/// traits their errors name ("the trait `dbscope::detach::ConnectionParam` is
/// not implemented for .."). Not an API to call.
#[doc(hidden)]
pub mod detach {
    pub use dbscope_runtime::__private::detach::*;
}
// What expansions use, and the runner functions they call: not public API.
#[doc(hidden)]
pub use dbscope_runtime::{__private, run_unit, run_unit_retrying};
#[cfg(any(feature = "tokio", feature = "async"))]
#[doc(hidden)]
pub use dbscope_runtime::{run_unit_async, run_unit_async_retrying};
#[cfg(feature = "async")]
#[doc(hidden)]
pub use dbscope_runtime::{
    run_unit_native, run_unit_native_retrying, AsyncUnitBody, AsyncUnitBodyMut,
};

/// Runs a function's body as one unit of work: a connection is checked out of
/// a session factory, a transaction begins, the body runs, the transaction
/// commits on `Ok` and rolls back on `Err` or panic, and the connection goes
/// back to the pool before the function returns.
///
/// The function declares the session as a parameter, `conn: &mut SqliteConnection`
/// (any type whose name ends in `Connection`, or `&mut Session<..>`, or any
/// parameter marked `#[session]`). The attribute removes that parameter:
/// callers pass everything else, and cannot keep the session past the call.
///
/// ```
/// use dbscope::{unit_of_work, Error, SessionFactory};
/// use diesel::prelude::*;
///
/// #[unit_of_work(factory = db)]
/// fn create_note(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection, body: &str) -> Result<usize, Error> {
///     diesel::sql_query("CREATE TABLE IF NOT EXISTS notes (body TEXT NOT NULL)").execute(conn)?;
///     Ok(diesel::sql_query("INSERT INTO notes (body) VALUES (?)")
///         .bind::<diesel::sql_types::Text, _>(body)
///         .execute(conn)?)
/// }
///
/// let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
/// assert_eq!(create_note(&factory, "hello")?, 1); // no connection argument
/// assert_eq!(factory.stats().in_use, 0);          // already back in the pool
/// # Ok::<(), Error>(())
/// ```
///
/// The function must return `Result<T, E>` (any alias of it) where
/// `E: From<dbscope::Error>`, so checkout, begin and commit failures reach the
/// caller through the same error type.
///
/// # Options
///
/// ## `factory = <expr>` (required)
/// Where sessions come from: a parameter, a field (`self.db`) or any
/// expression whose type implements [`SessionSource`]: a [`SessionFactory`], a
/// reference, an `Arc` or a `Box` of one. There is no global session.
///
/// ```
/// use std::sync::Arc;
/// use dbscope::{unit_of_work, Error, SessionFactory, SessionSource};
/// use diesel::connection::SimpleConnection;
/// use diesel::prelude::*;
///
/// struct Notes<F> { db: F }
///
/// impl<F: SessionSource<Connection = SqliteConnection>> Notes<F> {
///     #[unit_of_work(factory = self.db)]
///     fn init(&self, conn: &mut SqliteConnection) -> Result<(), Error> {
///         conn.batch_execute("CREATE TABLE notes (body TEXT NOT NULL)")?;
///         Ok(())
///     }
/// }
///
/// let notes = Notes { db: Arc::new(SessionFactory::<SqliteConnection>::new(":memory:")?) };
/// notes.init()?;
/// # Ok::<(), Error>(())
/// ```
///
/// ## `isolation = read_uncommitted | read_committed | repeatable_read | serializable`
/// The transaction's isolation level. PostgreSQL and MySQL honour all four;
/// SQLite transactions are always serializable, so any other level on a
/// SQLite factory is a compile error, not a silent downgrade.
///
/// ```
/// # use dbscope::{unit_of_work, Error, SessionFactory};
/// # use diesel::prelude::*;
/// #[unit_of_work(factory = db, isolation = serializable)]
/// fn audit(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<usize, Error> {
///     Ok(diesel::sql_query("SELECT 1").execute(conn)?)
/// }
/// # let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
/// # audit(&factory)?;
/// # Ok::<(), Error>(())
/// ```
///
/// ```compile_fail
/// # use dbscope::{unit_of_work, Error, SessionFactory};
/// # use diesel::prelude::*;
/// #[unit_of_work(factory = db, isolation = read_committed)] // error: SQLite is always serializable
/// fn report(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
///     Ok(())
/// }
/// ```
///
/// ## `read_only`
/// A read-only transaction: writes in it fail (`READ ONLY` on PostgreSQL and
/// MySQL, `PRAGMA query_only` on SQLite).
///
/// ```
/// # use dbscope::{unit_of_work, Error, SessionFactory};
/// # use diesel::prelude::*;
/// #[unit_of_work(factory = db, read_only)]
/// fn try_write(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<usize, Error> {
///     Ok(diesel::sql_query("CREATE TABLE t (x INTEGER)").execute(conn)?)
/// }
/// # let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
/// assert!(try_write(&factory).is_err());
/// # Ok::<(), Error>(())
/// ```
///
/// ## `retry = N`, `retry(attempts = N, backoff_ms = A, max_backoff_ms = B)`
/// Retries the whole unit, in a fresh transaction, on transient errors
/// (serialization failures, deadlocks, lock timeouts, lost connections, a busy
/// SQLite database), at most `N` attempts in all. The wait before retry `n` is
/// `backoff_ms * 2^(n-1)` capped at `max_backoff_ms` (defaults: 10 ms and
/// 1000 ms). **A retried body may run more than once**: it is an `FnMut`, so it
/// cannot move its arguments out (clone them), and side effects outside the
/// database should wait for [`after_commit`].
///
/// ```
/// # use dbscope::{unit_of_work, Error, SessionFactory};
/// # use diesel::prelude::*;
/// #[unit_of_work(factory = db, retry = 3)]
/// fn bump(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<usize, Error> {
///     Ok(diesel::sql_query("SELECT 1").execute(conn)?)
/// }
///
/// #[unit_of_work(factory = db, retry(attempts = 5, backoff_ms = 2, max_backoff_ms = 50))]
/// fn bump_patiently(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection, label: String) -> Result<String, Error> {
///     diesel::sql_query("SELECT 1").execute(conn)?;
///     Ok(label.clone()) // `label` itself stays for the next attempt
/// }
/// # let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
/// # bump(&factory)?;
/// # assert_eq!(bump_patiently(&factory, "x".into())?, "x");
/// # Ok::<(), Error>(())
/// ```
///
/// ## `immediate`, `exclusive`, `deferred`
/// SQLite lock modes. A unit that is not `read_only` begins with
/// `BEGIN IMMEDIATE` by default: it takes the write lock at once, so a writer
/// waits at `BEGIN` (under the busy timeout) instead of failing at its first
/// write with `database is locked`, which is what a deferred transaction that
/// reads and then writes does when another writer holds the lock. Read-only
/// units begin deferred, so readers run beside a writer. `exclusive`
/// (`BEGIN EXCLUSIVE`) also keeps readers out; `deferred` asks for SQLite's
/// own default for a unit that knows it needs no lock up front. At most one of
/// them; on a PostgreSQL or MySQL factory any of them is a compile error.
///
/// ```
/// # use dbscope::{unit_of_work, Error, SessionFactory};
/// # use diesel::prelude::*;
/// #[unit_of_work(factory = db, immediate)]
/// fn enqueue(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<usize, Error> {
///     Ok(diesel::sql_query("SELECT 1").execute(conn)?)
/// }
/// # let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
/// # enqueue(&factory)?;
/// # Ok::<(), Error>(())
/// ```
///
/// ## `budget_ms = N`
/// How long this unit may hold its connection before a `tracing` warning
/// names it and the time held. Overrides the factory's `hold_budget`.
/// The server enforces the budget too, ending a transaction left idle that
/// long: PostgreSQL through `idle_in_transaction_session_timeout` (set once
/// per connection for the factory's budget, `SET LOCAL` for a unit that
/// overrides it, in the same round trip as `BEGIN`), MariaDB through
/// `idle_transaction_timeout` (whole seconds, restored after an overriding
/// unit). MySQL has no per-transaction idle limit (its `wait_timeout` would
/// also close idle pooled connections), so there the budget is the warning
/// alone; SQLite has no server.
///
/// ```
/// # use dbscope::{unit_of_work, Error, SessionFactory};
/// # use diesel::prelude::*;
/// #[unit_of_work(factory = db, budget_ms = 250)]
/// fn quick(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<usize, Error> {
///     Ok(diesel::sql_query("SELECT 1").execute(conn)?)
/// }
/// # let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
/// # quick(&factory)?;
/// # Ok::<(), Error>(())
/// ```
///
/// ## `joinable`
/// Also generates `name_in`, a twin that takes the caller's connection where
/// the unit takes its session, and runs the same body inside a savepoint of
/// the caller's transaction (Django's nested `atomic`, Spring's `REQUIRED`).
/// The method written once is a unit on its own and a step of a bigger one.
/// The twin's `Err` rolls back only its own work; its `Ok` commits with the
/// caller's transaction or not at all; after-commit work it registers waits
/// for the outermost commit and is dropped if its savepoint rolls back. The
/// compiler checks the composition: the twin needs a connection, which only
/// code inside a unit (or holding a session) has. The unit's own options
/// (isolation, read-only, retry) belong to the outermost unit: a savepoint
/// takes its transaction's. On an `async fn` over a blocking connection the
/// twin is a plain `fn`, callable from another unit's body; on a diesel-async
/// connection it is an `async fn`. Opt-in, because the twin is a second copy
/// of the body to compile.
///
/// ```
/// use dbscope::{unit_of_work, Error, SessionFactory, SessionSource};
/// use diesel::prelude::*;
///
/// struct Orders<F> { db: F }
///
/// impl<F: SessionSource<Connection = SqliteConnection>> Orders<F> {
///     #[unit_of_work(factory = self.db, joinable)]
///     fn add_line(&self, conn: &mut SqliteConnection, order: i64, item: &str) -> Result<(), Error> {
///         if item.is_empty() {
///             return Err(Error::user("an order line needs an item"));
///         }
///         diesel::sql_query("INSERT INTO lines (order_id, item) VALUES (?, ?)")
///             .bind::<diesel::sql_types::BigInt, _>(order)
///             .bind::<diesel::sql_types::Text, _>(item)
///             .execute(conn)?;
///         Ok(())
///     }
///
///     /// Every line in one transaction; a refused line is skipped alone.
///     #[unit_of_work(factory = self.db)]
///     fn place(&self, conn: &mut SqliteConnection, order: i64, items: &[&str]) -> Result<usize, Error> {
///         let mut added = 0;
///         for item in items {
///             if self.add_line_in(conn, order, item).is_ok() {
///                 added += 1;
///             }
///         }
///         Ok(added)
///     }
/// }
///
/// let orders = Orders { db: SessionFactory::<SqliteConnection>::new(":memory:")? };
/// # orders.db.run(&dbscope::UnitOptions::new("schema"), |s| diesel::sql_query("CREATE TABLE lines (order_id INTEGER, item TEXT NOT NULL)").execute(&mut **s).map_err(Error::from))?;
/// orders.add_line(1, "tea")?;                            // a unit on its own
/// assert_eq!(orders.place(2, &["milk", "", "bread"])?, 2); // one transaction
/// # Ok::<(), Error>(())
/// ```
///
/// ## `requires_new`
/// Runs the unit in a transaction of its own even when it is called inside
/// another unit on the same factory (Spring's `REQUIRES_NEW`): it takes a
/// second connection and commits or rolls back on its own, whatever the outer
/// unit does afterwards. It never waits for that connection while the outer
/// unit holds one: with none free it fails at once with `Phase::Nesting`
/// instead of deadlocking a small pool. Outside another unit it is an
/// ordinary unit. (Native diesel-async units do not take it yet.)
///
/// ```
/// # use dbscope::{unit_of_work, Error, Phase, SessionFactory};
/// # use diesel::prelude::*;
/// #[unit_of_work(factory = db, requires_new)]
/// fn audit(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<usize, Error> {
///     Ok(diesel::sql_query("SELECT 1").execute(conn)?)
/// }
///
/// #[unit_of_work(factory = db)]
/// fn work(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<usize, Error> {
///     audit(db) // a second connection, or an error at once
/// }
/// let one = SessionFactory::<SqliteConnection>::new(":memory:")?; // a pool of one
/// assert_eq!(work(&one).unwrap_err().phase(), Phase::Nesting);
/// # Ok::<(), Error>(())
/// ```
///
/// ## `crate = path`
/// Where the expansion finds this crate, for crates that re-export it under
/// another path (default `::dbscope`). A quoted path (`crate = "my::db"`) works too.
///
/// ```
/// mod storage {
///     pub use dbscope::*;
/// }
/// use storage::{unit_of_work, Error, SessionFactory};
/// use diesel::prelude::*;
///
/// #[unit_of_work(factory = db, crate = storage)]
/// fn ping(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<usize, Error> {
///     Ok(diesel::sql_query("SELECT 1").execute(conn)?)
/// }
/// # let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
/// # ping(&factory)?;
/// # Ok::<(), Error>(())
/// ```
///
/// # Async
/// On an `async fn`, waiting for a free connection is asynchronous; once one
/// is reserved, `BEGIN`, the body and `COMMIT` run in one synchronous stretch
/// (off the executor's core on a multi-thread tokio runtime). The connection
/// is blocking, so **any `.await` in the body is a compile error**, including
/// awaits inside async blocks, closures and macro arguments, and `join!`-like
/// macros: await before or after the unit of work and pass ids between the
/// pieces. Dropping the future can then only happen while no connection is held.
///
/// ```
/// # use dbscope::{unit_of_work, Error, SessionFactory};
/// # use diesel::prelude::*;
/// #[unit_of_work(factory = db)]
/// async fn load_prompt(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection, id: i32) -> Result<String, Error> {
///     Ok(format!("prompt {id}")) // database work only
/// }
///
/// async fn call_llm(prompt: &str) -> String { prompt.to_uppercase() }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// # let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
/// let prompt = load_prompt(&factory, 7).await?; // connection returned here
/// let answer = call_llm(&prompt).await;         // slow, and no connection held
/// # assert_eq!(answer, "PROMPT 7");
/// # Ok(())
/// # }
/// ```
///
/// ```compile_fail
/// # use dbscope::{unit_of_work, Error, SessionFactory};
/// # use diesel::prelude::*;
/// # async fn call_llm(prompt: &str) -> String { prompt.to_owned() }
/// #[unit_of_work(factory = db)]
/// async fn answer(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<String, Error> {
///     Ok(call_llm("hi").await) // error: `.await` while session `conn` is open
/// }
/// ```
///
/// # Native async sessions (feature `async`)
/// When the session parameter is a diesel-async connection
/// (`AsyncPgConnection`, `AsyncMysqlConnection`,
/// `SyncConnectionWrapper<SqliteConnection>`, or any type marked
/// `#[session(async)]`, such as an alias or a generic parameter), the `async
/// fn` runs natively: sessions come from an [`AsyncSessionFactory`] (anything
/// implementing [`AsyncSessionSource`]) and the body **awaits its queries
/// inside the transaction**. The macro writes the plumbing (an async closure
/// the runtime lends the connection to).
///
/// The rule, checked at compile time: every `.await` in the body must await an
/// expression that uses the session: a query run on it, or a call it is
/// passed to (possibly wrapped, as in `timeout(d, q.execute(conn))`). Any
/// other `.await` (a sleep, an HTTP or model call, a channel receive, another
/// unit of work) is an error on that `.await`, naming the session. `join!`
/// and `try_join!` must use the session in every future they join; `select!`
/// is rejected; other macros are parsed as expressions and analysed, or
/// rejected when they cannot be and contain an `.await`. A future held in a
/// variable and awaited later is rejected too: await queries where they are
/// built. One limit: a call passed the session counts as session work, so
/// `sleep(timeout_of(conn))` would pass.
///
/// Semantics match the blocking flavour: commit on `Ok`, rollback on `Err`,
/// options (isolation, read-only, retry with a fresh transaction per attempt,
/// budget warning; PostgreSQL also gets the budget as
/// `idle_in_transaction_session_timeout`), validation only of connections idle
/// past the window, recycling by age, a checkout timeout. A panic, or a future
/// dropped at any `.await`, never leaves a transaction on a pooled connection:
/// no rollback can run in `Drop`, so the connection is taken out of the pool
/// and closed, and the server rolls back. A unit of work cannot be awaited
/// inside another (it does not use the outer session), so nesting cannot
/// deadlock a small pool.
///
/// ```
/// # #[cfg(all(feature = "async", feature = "sqlite"))] {
/// use dbscope::{unit_of_work, AsyncSessionFactory, Error};
/// use diesel::SqliteConnection;
/// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
/// use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
///
/// type Conn = SyncConnectionWrapper<SqliteConnection>;
///
/// #[unit_of_work(factory = db)]
/// async fn create(db: &AsyncSessionFactory<Conn>, #[session(async)] conn: &mut Conn, name: &str) -> Result<usize, Error> {
///     conn.batch_execute("CREATE TABLE IF NOT EXISTS users (name TEXT)").await?;
///     let n = diesel::sql_query("INSERT INTO users (name) VALUES (?)")
///         .bind::<diesel::sql_types::Text, _>(name)
///         .execute(conn)
///         .await?;
///     Ok(n)
/// }
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let db = AsyncSessionFactory::<Conn>::new(":memory:")?;
/// assert_eq!(create(&db, "ada").await?, 1);
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// # }
/// ```
///
/// ```compile_fail
/// # use dbscope::{unit_of_work, AsyncSessionFactory, Error};
/// # use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
/// # async fn call_llm(prompt: &str) -> String { prompt.to_owned() }
/// #[unit_of_work(factory = db)]
/// async fn answer(db: &AsyncSessionFactory<AsyncPgConnection>, conn: &mut AsyncPgConnection) -> Result<String, Error> {
///     conn.batch_execute("SELECT 1").await?; // fine: uses the session
///     Ok(call_llm("hi").await) // error: `.await` on work that does not use session `conn`
/// }
/// ```
///
/// # Errors
/// The function returns the body's `Err` (after rolling back) or a runtime
/// [`Error`] converted with `E::from`: checkout timeout, connect, `BEGIN`
/// (including options the backend refuses), `COMMIT` failures, and
/// [`Phase::Nesting`]. At compile time the attribute reports, each at the
/// offending token: unknown, duplicate or malformed options, a missing
/// `factory`, zero or several session parameters, `const`, `extern` and
/// variadic functions, a missing or non-`Result` return type, options the
/// factory's backend cannot honour, a session type that does not match the
/// factory's connection, and every `.await` in the body.
///
/// # Nesting
/// A unit of work called inside another one on the same factory and thread
/// fails fast with [`Phase::Nesting`] instead of waiting for a second
/// connection (which, with a pool of one, never comes). Pass the connection
/// to a plain helper function instead:
///
/// ```
/// # use dbscope::{unit_of_work, Error, Phase, SessionFactory};
/// # use diesel::prelude::*;
/// fn insert_line(conn: &mut SqliteConnection, n: i32) -> QueryResult<usize> {
///     diesel::sql_query("SELECT ?").bind::<diesel::sql_types::Integer, _>(n).execute(conn)
/// }
///
/// #[unit_of_work(factory = db)]
/// fn inner(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
///     Ok(())
/// }
///
/// #[unit_of_work(factory = db)]
/// fn outer(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
///     insert_line(conn, 1)?; // right: the helper uses this unit's connection
///     insert_line(conn, 2)?;
///     inner(db)              // wrong: a second unit on the same factory
/// }
///
/// # let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
/// assert_eq!(outer(&factory).unwrap_err().phase(), Phase::Nesting);
/// # Ok::<(), Error>(())
/// ```
///
/// # Equivalent code
/// (Sketches, not compiled: `body` stands for the function's body.)
/// ```ignore
/// #[unit_of_work(factory = db, read_only)]
/// pub fn count(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection, name: &str) -> Result<i64, AppError> {
///     body
/// }
/// ```
/// expands to (the `__private` items are glue over the same unit of work as
/// [`SessionFactory::run`]):
/// ```ignore
/// pub fn count(db: &SessionFactory<SqliteConnection>, name: &str) -> Result<i64, AppError> {
///     const __UOW_OPTIONS: dbscope::UnitOptions =
///         dbscope::UnitOptions::new(concat!(module_path!(), "::", "count")).read_only(true);
///     let __uow_factory = &db;
///     dbscope::__private::unit(__uow_factory, &__UOW_OPTIONS, |conn| -> Result<i64, AppError> {
///         let conn: &mut SqliteConnection = conn; // `&mut Session<_>` coerces to the connection
///         { body }
///     })
/// }
/// ```
/// `return` and `?` in the body leave the closure, which ends the unit (commit
/// on `Ok`, roll back on `Err`). An `async fn` calls `unit_async(..).await`;
/// with `retry` the calls are `unit_retrying` / `unit_async_retrying`.
/// `immediate`/`exclusive` and non-serializable isolation levels add no-op
/// calls whose trait bounds reject backends that cannot honour them.
pub use dbscope_macros::unit_of_work;

/// Checks, at compile time, that a function which crosses a boundary (a
/// spawned task, a queued job, a long async flow around an LLM or HTTP call)
/// holds no session and carries no row; parameters marked `#[load]` become
/// ids, reloaded in a short unit of work when the call starts.
///
/// Every parameter type and the return type are checked, also inside
/// `Option`, `Result`, `Vec`, slices, arrays, tuples, `Box`, `Arc`, `Rc`,
/// `Cow`, maps, sets, cells, locks and references. Rejected, each with its own
/// error on the offending type:
/// - sessions: [`Session`] and [`PooledConnection`];
/// - diesel connections (any `diesel::Connection`, also behind `&mut`) and
///   diesel-async connections (`AsyncPgConnection`, `&mut AsyncPgConnection`,
///   `SyncConnectionWrapper<..>`, with the `async` feature);
/// - pooled connections of any pool (types that deref to a blocking or
///   diesel-async connection: r2d2, deadpool-style guards, ours, including
///   `AsyncPooledConnection`);
/// - closures (`Box<dyn FnOnce()>`, `impl Fn()`, a generic `F: FnOnce()`):
///   what they captured cannot be seen, so they need `#[allow_attached]`;
/// - model rows: types diesel knows as table-backed (`HasTable`, from
///   `#[derive(Identifiable)]`, or `Selectable` on an enabled backend).
///
/// Accepted: ids ([`Id`]), plain data and DTOs, [`SessionFactory`] in any form
/// (it is a handle, not a session), diesel tables, generic type parameters,
/// and types marked [`Detached`](trait@Detached). A payload struct is checked field by field
/// when it derives [`Detached`](derive@Detached) (see there).
///
/// ```
/// use dbscope::{detach_ids, Error, Id, SessionFactory};
/// use diesel::prelude::*;
///
/// diesel::table! { apps (id) { id -> Integer, name -> Text } }
///
/// #[derive(Queryable, Identifiable, Debug)]
/// pub struct App { pub id: i32, pub name: String }
///
/// #[detach_ids(factory = db)]
/// async fn summarise(db: &SessionFactory<SqliteConnection>, #[load] app: App) -> Result<String, Error> {
///     // `app` was loaded in a unit of work that is already over.
///     assert_eq!(db.stats().in_use, 0);
///     Ok(call_llm(&app.name).await) // slow, and no connection held
/// }
///
/// async fn call_llm(prompt: &str) -> String { format!("summary of {prompt}") }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// let db = SessionFactory::<SqliteConnection>::new("file:detach-doc?mode=memory&cache=shared")?;
/// # use diesel::connection::SimpleConnection;
/// # db.checkout()?.batch_execute("CREATE TABLE apps (id INTEGER PRIMARY KEY, name TEXT NOT NULL); INSERT INTO apps VALUES (7, 'reports')")?;
/// let id: Id<App> = Id::new(7);
/// assert_eq!(summarise(&db, id).await?, "summary of reports"); // callers pass the id
/// # Ok(())
/// # }
/// ```
///
/// ```compile_fail
/// # use dbscope::detach_ids;
/// # use diesel::prelude::*;
/// # diesel::table! { apps (id) { id -> Integer, name -> Text } }
/// # #[derive(Queryable, Identifiable)] pub struct App { pub id: i32, pub name: String }
/// #[detach_ids]
/// fn report(apps: Vec<App>) {} // error: `App` is a row bound to a table; pass its id
/// ```
///
/// ```compile_fail
/// # use dbscope::detach_ids;
/// # use diesel::prelude::*;
/// #[detach_ids]
/// fn report(conn: &mut SqliteConnection) {} // error: `SqliteConnection` is a database connection
/// ```
///
/// # Options
///
/// ## `factory = <expr>` (needed by `#[load]`)
/// Where `#[load]` parameters are loaded from: a parameter, a field
/// (`self.db`) or any expression whose type implements [`SessionSource`].
///
/// ```
/// use std::sync::Arc;
/// use dbscope::{detach_ids, Error, Id, SessionFactory};
/// use diesel::prelude::*;
///
/// diesel::table! { apps (id) { id -> Integer, name -> Text } }
/// #[derive(Queryable, Identifiable)]
/// pub struct App { pub id: i32, pub name: String }
///
/// struct Worker { db: Arc<SessionFactory<SqliteConnection>> }
///
/// impl Worker {
///     #[detach_ids(factory = self.db)]
///     fn run(&self, #[load] app: App, attempt: u32) -> Result<String, Error> {
///         Ok(format!("{} (attempt {attempt})", app.name))
///     }
/// }
///
/// let db = Arc::new(SessionFactory::<SqliteConnection>::new("file:detach-doc-factory?mode=memory&cache=shared")?);
/// # use diesel::connection::SimpleConnection;
/// # db.checkout()?.batch_execute("CREATE TABLE apps (id INTEGER PRIMARY KEY, name TEXT NOT NULL); INSERT INTO apps VALUES (1, 'reports')")?;
/// let worker = Worker { db };
/// assert_eq!(worker.run(Id::new(1), 2)?, "reports (attempt 2)");
/// # Ok::<(), Error>(())
/// ```
///
/// ## `crate = path`
/// Where the expansion finds this crate, as for [`unit_of_work`].
///
/// ```
/// mod storage { pub use dbscope::*; }
/// #[storage::detach_ids(crate = storage)]
/// fn plain(id: storage::Id<()>) -> i32 { id.key() }
/// assert_eq!(plain(storage::Id::new(3)), 3);
/// ```
///
/// # Parameter attributes
///
/// ## `#[load]`, `#[load(key = K)]`
/// `#[load] app: App` becomes `app: Id<App>` in the signature callers see
/// (`Id<App, K>` with `key = K`; the default key is `i32`). When the call
/// starts, every `#[load]` row is loaded by [`load_by_id`] in one short
/// read-only unit of work on `factory` (retried up to 3 attempts on transient
/// errors),
/// and the session is released before the body runs. The body sees the
/// current row, not a copy taken when the work was queued. `#[load] mut app`
/// works; several `#[load]` parameters share one unit.
///
/// A missing row (deleted, or never committed) is an error with
/// [`Phase::NotFound`], converted into the function's error type with `From`,
/// so the function must return `Result<T, E>` with `E: From<dbscope::Error>`.
///
/// ```
/// use dbscope::{detach_ids, Error, Id, Phase, SessionFactory};
/// use diesel::prelude::*;
///
/// diesel::table! { users (id) { id -> BigInt, email -> Text } }
/// #[derive(Queryable, Identifiable)]
/// pub struct User { pub id: i64, pub email: String }
///
/// #[detach_ids(factory = db)]
/// fn welcome(db: &SessionFactory<SqliteConnection>, #[load(key = i64)] user: User) -> Result<String, Error> {
///     Ok(format!("welcome, {}", user.email))
/// }
///
/// let db = SessionFactory::<SqliteConnection>::new("file:detach-doc-load?mode=memory&cache=shared")?;
/// # use diesel::connection::SimpleConnection;
/// # db.checkout()?.batch_execute("CREATE TABLE users (id BIGINT PRIMARY KEY, email TEXT NOT NULL); INSERT INTO users VALUES (1, 'ann@example.com')")?;
/// assert_eq!(welcome(&db, Id::new(1))?, "welcome, ann@example.com");
/// assert_eq!(welcome(&db, Id::new(2)).unwrap_err().phase(), Phase::NotFound);
/// # Ok::<(), Error>(())
/// ```
///
/// ## `#[allow_attached]`, `#[allow_attached(reason = "..")]`
/// Exempts one parameter from the checks, visibly (the signature callers see
/// is unchanged). For a type that is always safe to carry, implement
/// [`Detached`](trait@Detached) instead.
///
/// ```
/// use dbscope::detach_ids;
/// use diesel::prelude::*;
///
/// diesel::table! { apps (id) { id -> Integer, name -> Text } }
/// #[derive(Queryable, Identifiable)]
/// pub struct App { pub id: i32, pub name: String }
///
/// #[detach_ids]
/// fn render(#[allow_attached(reason = "rendered right away, on this thread")] app: &App) -> String {
///     app.name.clone()
/// }
/// assert_eq!(render(&App { id: 1, name: "reports".into() }), "reports");
/// ```
///
/// # Jobs and tasks
/// Start detached work from inside a unit of work with [`after_commit`] or
/// [`spawn_after_commit`]: it runs once the data it needs is committed, and
/// never after a rollback. [`Id`] serialises as its bare key (feature
/// `serde`), so a job payload is a JSON object of ids; `examples/job_worker.rs`
/// shows a queue with `SELECT .. FOR UPDATE SKIP LOCKED` workers.
///
/// # Errors
/// At run time, only with `#[load]`: the load unit's errors (checkout timeout,
/// connect, `BEGIN`, the query) and [`Phase::NotFound`], converted with
/// `E::from`. At compile time, each at the offending token: a session, a
/// connection, a pooled connection or a row as a parameter or return type
/// (the message names which, and the fix); unknown, duplicate or malformed
/// options; `#[load]` without `factory`, on `self`, on a pattern, on a type
/// that is not a row (a reference, a container, or no `Identifiable`), in a
/// function that does not return `Result`; malformed `#[allow_attached]`;
/// `const` and variadic functions.
///
/// # Equivalent code
/// (Sketches, not compiled: `body` stands for the function's body.)
/// ```ignore
/// #[detach_ids(factory = db)]
/// pub fn send(db: &SessionFactory<PgConnection>, #[load] app: App, note: Option<String>) -> Result<(), JobError> {
///     body
/// }
/// ```
/// expands to (the `__private` items are glue over [`load_by_id`] and a
/// retrying unit of work):
/// ```ignore
/// pub fn send(db: &SessionFactory<PgConnection>, app: dbscope::Id<App>, note: Option<String>) -> Result<(), JobError> {
///     {
///         use dbscope::__private::detach::probes::*;
///         // One no-op probe per leaf type: an unmet bound names what was found.
///         (&&&&&&&&&&&dbscope::__private::detach::Probe::<SessionFactory<PgConnection>>::new()).probe().param();
///         (&&&&&&&&&&&dbscope::__private::detach::Probe::<JobError>::new()).probe().returned();
///     }
///     const __DETACH_LOAD: dbscope::UnitOptions = dbscope::UnitOptions::new(concat!(module_path!(), "::", "send", "#load"))
///         .read_only(true)
///         .retry(dbscope::RetryPolicy::attempts(3));
///     let (app,): (App,) = match dbscope::__private::detach::load(&db, &__DETACH_LOAD, |conn| {
///         Ok((dbscope::load_by_id(conn, &app)?,))
///     }) {
///         Ok(rows) => rows,
///         Err(error) => return Err(JobError::from(error)),
///     };
///     body
/// }
/// ```
/// Probes are resolved by method lookup at compile time (autoref
/// specialization: the first of `Detached`, session, pooled connection,
/// connection, table, row that the type meets decides) and compile to nothing.
pub use dbscope_macros::detach_ids;

/// Derives [`Detached`](trait@Detached) for a job payload (or any type that
/// crosses a boundary) after checking every field as `#[detach_ids]` checks
/// parameters: a field that is a session, a connection, a pooled connection
/// or a model row (also inside `Option`, `Vec`, `Box`, tuples, ...) is a
/// compile error on that field. A `#[detach_ids]` function then accepts the
/// payload, checked as deeply as its own parameters.
///
/// ```
/// use dbscope::{detach_ids, Detached, Id};
/// use diesel::prelude::*;
///
/// diesel::table! { apps (id) { id -> Integer, name -> Text } }
///
/// #[derive(Queryable, Identifiable)]
/// pub struct App { pub id: i32, pub name: String }
///
/// /// What the job needs: the id, not the row.
/// #[derive(Detached)]
/// pub struct SummariseJob { pub app: Id<App>, pub prompt: String, pub retries: Vec<u32> }
///
/// #[detach_ids]
/// fn enqueue(job: SummariseJob) -> usize { job.retries.len() }
/// # assert_eq!(enqueue(SummariseJob { app: Id::from(1), prompt: "p".into(), retries: vec![] }), 0);
/// ```
///
/// A field holding the row itself is rejected where it is declared:
/// ```compile_fail
/// # use dbscope::{Detached, Id};
/// # use diesel::prelude::*;
/// # diesel::table! { apps (id) { id -> Integer, name -> Text } }
/// # #[derive(Queryable, Identifiable)]
/// # pub struct App { pub id: i32, pub name: String }
/// #[derive(Detached)]
/// pub struct StaleJob { pub app: App } // error: `App` is a row bound to a table; a job payload carries its id
/// ```
///
/// `#[detached(crate = my_crate::dbscope)]` names the `dbscope` crate when it
/// is re-exported under another path.
pub use dbscope_macros::Detached;

/// Applies the await rule of `#[unit_of_work]` to hand-held async code: in an
/// `async fn` (an axum handler, a task, a repository method) that holds a
/// connection itself, an `.await` on work that does not use that connection
/// is a compile error on the `.await`.
///
/// The connections it sees: parameters whose type names a connection
/// (`&mut AsyncPgConnection`, `AsyncPooledConnection<..>`, `Session<..>`,
/// any type ending in `Connection`) or marked `#[session]`, and values the
/// body checks out (`db.checkout().await?`, `db.session()?`,
/// `pool.get().await?`) or types as a connection. Each is held from its `let`
/// until it is dropped (`drop(conn)`), ended (`session.commit()?`) or goes out
/// of scope; awaits before the checkout and after its end are free. A value
/// that carries it (a reborrow, a struct wrapping it, `Arc<Mutex<_>>` around
/// it, a task it is moved into) is held too. The rules and their reasons are
/// the corpus of shapes in the macros crate (`await_check/tests.rs`).
///
/// ```
/// # #[cfg(feature = "async")] {
/// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
/// use diesel_async::SimpleAsyncConnection;
/// use dbscope::{checked, AsyncSessionFactory, Error};
///
/// type Db = AsyncSessionFactory<SyncConnectionWrapper<diesel::SqliteConnection>>;
///
/// async fn call_llm(prompt: &str) -> String { format!("answer to {prompt}") }
///
/// #[checked]
/// async fn handler(db: &Db, prompt: &str) -> Result<String, Error> {
///     let answer = call_llm(prompt).await; // nothing held yet
///     {
///         let mut conn = db.checkout().await?;
///         conn.batch_execute("SELECT 1").await?; // its own query
///     } // given back here
///     Ok(answer)
/// }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let db = Db::new(":memory:").unwrap();
/// # assert_eq!(handler(&db, "q").await.unwrap(), "answer to q");
/// # });
/// # }
/// ```
///
/// Holding the checkout across the call is an error on the `.await`:
/// ```compile_fail
/// # use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
/// # use diesel_async::SimpleAsyncConnection;
/// # use dbscope::{checked, AsyncSessionFactory, Error};
/// # type Db = AsyncSessionFactory<SyncConnectionWrapper<diesel::SqliteConnection>>;
/// # async fn call_llm(prompt: &str) -> String { prompt.to_owned() }
/// #[checked]
/// async fn handler(db: &Db, prompt: &str) -> Result<String, Error> {
///     let mut conn = db.checkout().await?;
///     conn.batch_execute("SELECT 1").await?;
///     Ok(call_llm(prompt).await) // error: `.await` on work that does not use `conn` while it holds a pooled connection
/// }
/// ```
///
/// # Blocking sessions in async code
/// A blocking [`Session`] is not `Send`, so a `Send` future (a spawned task,
/// an axum handler) that holds one across an `.await` fails to compile with
/// "`*const SessionIsOpen_EndItBeforeAwaitOrSpawn` cannot be sent between
/// threads safely", naming the variable held across the `.await`. rustc keeps
/// a local that was ever borrowed alive in the future until its scope ends,
/// so ending it with `session.commit()?` or `drop(session)` before the
/// `.await` is not enough: put the session's work in a block (or a
/// `#[unit_of_work]` function) that ends before the `.await`.
///
/// # Without the attribute
/// For code that does not carry `#[checked]`, clippy's
/// `await_holding_invalid_type` lint is the complement: it flags every
/// `.await` while a value of a listed type is alive (also the connection's
/// own queries, so it suits code that checks out blocking sessions, or
/// modules that should never hold a connection across an `.await`). In
/// `clippy.toml`:
/// ```toml
/// await-holding-invalid-types = [
///     { path = "dbscope::Session", reason = "a session holds a pooled connection: end it before awaiting" },
///     { path = "dbscope::PooledConnection", reason = "a checked-out connection: give it back before awaiting" },
///     { path = "dbscope::AsyncPooledConnection", reason = "a checked-out connection: await only its queries, or use #[dbscope::checked]" },
/// ]
/// ```
pub use dbscope_macros::checked;
