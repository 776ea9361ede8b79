//! A database of its own for each test, created before and dropped after, so
//! tests that run at the same time never see each other's rows and a test may
//! use as many connections as production does (unlike a
//! [`rollback_only`](crate::SessionFactoryBuilder::rollback_only) factory,
//! which runs everything through one connection, one unit at a time).

use std::sync::atomic::{AtomicU32, Ordering};

use crate::backend::{BackendKind, PoolableConnection};
use crate::error::{Error, Phase};
use crate::factory::{SessionFactory, SessionFactoryBuilder};
use crate::redact::RedactedUrl;

/// Databases made by this process so far, so two fixtures of one test get
/// different names.
static MADE: AtomicU32 = AtomicU32::new(0);

/// PostgreSQL and MySQL accept names of at most 63 / 64 bytes.
const MAX_NAME: usize = 63;

/// A database created for one test and dropped when this value is dropped.
///
/// On PostgreSQL and MySQL/MariaDB, [`create`](Self::create) connects to the
/// server of `server_url` (any database on it that the user may connect to)
/// and runs `CREATE DATABASE`; [`url`](Self::url) is the same URL naming the
/// new database. On SQLite it is a new file in a temporary directory
/// (`server_url` is ignored). The name says which test made it
/// (`dbscope_t_<test>_<pid>_<n>`), so a database left behind by a killed test
/// run is easy to find.
///
/// Dropping it closes nothing for you: drop the factories built on it first
/// (on PostgreSQL the drop ends any session still connected, with
/// `DROP DATABASE .. WITH (FORCE)`).
///
/// ```
/// use dbscope_runtime::{Error, TestDatabase, UnitOptions};
/// use diesel::prelude::*;
///
/// let db = TestDatabase::<SqliteConnection>::create("", "doc_example")?;
/// let factory = db.builder().max_size(4).build()?;
/// factory.run(&UnitOptions::new("schema"), |session| {
///     diesel::sql_query("CREATE TABLE jobs (id INTEGER PRIMARY KEY)").execute(&mut **session)?;
///     Ok::<_, Error>(())
/// })?;
/// drop(factory);
/// drop(db); // the file is gone
/// # Ok::<(), Error>(())
/// ```
///
/// On a server (the URL is the one your test suite is configured with):
///
/// ```no_run
/// use dbscope_runtime::{Error, TestDatabase};
/// use diesel::PgConnection;
///
/// let db = TestDatabase::<PgConnection>::create("postgres://postgres@127.0.0.1/postgres", "claims_are_exclusive")?;
/// let factory = db.builder().max_size(8).build()?;
/// # Ok::<(), Error>(())
/// ```
pub struct TestDatabase<C: PoolableConnection> {
    name: String,
    url: String,
    /// The connection string used to create the database, to drop it again.
    admin: RedactedUrl,
    /// SQLite: the directory holding the file.
    directory: Option<std::path::PathBuf>,
    _connection: std::marker::PhantomData<fn() -> C>,
}

impl<C: PoolableConnection> TestDatabase<C> {
    /// Creates a new, empty database named after `test` on the server of
    /// `server_url` (SQLite: a file in a new temporary directory).
    ///
    /// # Errors
    /// [`Phase::Connect`] when the server cannot be reached, [`Phase::Setup`]
    /// when `CREATE DATABASE` fails (the user needs the right to create
    /// databases) or the temporary directory cannot be made.
    pub fn create(server_url: &str, test: &str) -> Result<Self, Error> {
        let name = database_name(
            test,
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed),
        );
        let admin = RedactedUrl::new(server_url);
        match C::KIND {
            BackendKind::Sqlite => {
                let directory = std::env::temp_dir().join(&name);
                std::fs::create_dir_all(&directory).map_err(|error| {
                    Error::new(
                        Phase::Setup,
                        format!("could not create {}: {error}", directory.display()),
                    )
                })?;
                let url = directory.join("test.db").to_string_lossy().into_owned();
                Ok(TestDatabase {
                    name,
                    url,
                    admin,
                    directory: Some(directory),
                    _connection: std::marker::PhantomData,
                })
            }
            BackendKind::Postgres | BackendKind::Mysql => {
                let url = with_database(server_url, &name, C::KIND);
                let mut conn = connect::<C>(&admin)?;
                conn.batch_execute(&format!("CREATE DATABASE {name}"))
                    .map_err(|error| {
                        Error::query(
                            Phase::Setup,
                            format!(
                                "could not create the test database {name} on {admin}: {}; \
                                 the user needs the right to create databases",
                                admin.scrub(&error.to_string())
                            ),
                            error,
                        )
                    })?;
                Ok(TestDatabase {
                    name,
                    url,
                    admin,
                    directory: None,
                    _connection: std::marker::PhantomData,
                })
            }
        }
    }

    /// The database's name.
    ///
    /// ```
    /// let db = dbscope_runtime::TestDatabase::<diesel::SqliteConnection>::create("", "named")?;
    /// assert!(db.name().starts_with("dbscope_t_named_"));
    /// # Ok::<(), dbscope_runtime::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connection string of the new database (the server URL with the
    /// database replaced; on SQLite the file's path).
    ///
    /// ```
    /// let db = dbscope_runtime::TestDatabase::<diesel::SqliteConnection>::create("", "url")?;
    /// assert!(db.url().ends_with("test.db"));
    /// # Ok::<(), dbscope_runtime::Error>(())
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A [`SessionFactory`] builder on this database, with the factory's
    /// defaults: set what the test needs and `build()` it.
    ///
    /// ```
    /// let db = dbscope_runtime::TestDatabase::<diesel::SqliteConnection>::create("", "builder")?;
    /// let factory = db.builder().max_size(2).build()?;
    /// assert_eq!(factory.stats().in_use, 0);
    /// # Ok::<(), dbscope_runtime::Error>(())
    /// ```
    pub fn builder(&self) -> SessionFactoryBuilder<C> {
        SessionFactory::builder(&self.url)
    }

    fn drop_database(&self) -> Result<(), Error> {
        if let Some(directory) = &self.directory {
            return std::fs::remove_dir_all(directory).map_err(|error| {
                Error::new(
                    Phase::Setup,
                    format!("could not remove {}: {error}", directory.display()),
                )
            });
        }
        let mut conn = connect::<C>(&self.admin)?;
        let name = &self.name;
        let force = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let plain = format!("DROP DATABASE IF EXISTS {name}");
        let result = match C::KIND {
            // WITH (FORCE) (PostgreSQL 13+) ends sessions still connected.
            BackendKind::Postgres => conn
                .batch_execute(&force)
                .or_else(|_| conn.batch_execute(&plain)),
            _ => conn.batch_execute(&plain),
        };
        result.map_err(|error| {
            Error::query(
                Phase::Setup,
                format!(
                    "could not drop the test database {name}: {}; drop the factories built on it first",
                    self.admin.scrub(&error.to_string())
                ),
                error,
            )
        })
    }
}

impl<C: PoolableConnection> Drop for TestDatabase<C> {
    fn drop(&mut self) {
        if let Err(error) = self.drop_database() {
            // A panic here would hide the test's own failure: say it instead.
            eprintln!("dbscope: {error}");
        }
    }
}

impl<C: PoolableConnection> std::fmt::Debug for TestDatabase<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .field("server", &self.admin)
            .finish()
    }
}

fn connect<C: PoolableConnection>(admin: &RedactedUrl) -> Result<C, Error> {
    C::establish(admin.expose())
        .map_err(|error| Error::connect(&admin.to_string(), &error, |text| admin.scrub(text)))
}

/// `dbscope_t_<test>_<pid>_<n>`: lowercase ASCII letters, digits and `_`
/// only (no quoting needed on any server), at most [`MAX_NAME`] bytes, the
/// test's part shortened first.
fn database_name(test: &str, pid: u32, n: u32) -> String {
    let suffix = format!("_{pid}_{n}");
    let prefix = "dbscope_t_";
    let room = MAX_NAME - prefix.len() - suffix.len();
    let mut test: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    test.truncate(room);
    format!("{prefix}{test}{suffix}")
}

/// `server_url` naming database `name` instead of its own: the path of a URL
/// (`scheme://authority/db?params`), or `dbname=` of a libpq `key=value`
/// string.
fn with_database(server_url: &str, name: &str, kind: BackendKind) -> String {
    let Some(scheme_end) = server_url.find("://") else {
        // libpq's key=value form (PostgreSQL only): a later key wins.
        debug_assert_eq!(kind, BackendKind::Postgres);
        return format!("{server_url} dbname={name}");
    };
    let rest_start = scheme_end + 3;
    let rest = &server_url[rest_start..];
    // The authority ends at the first '/', '?' or '#' after the last '@' (a
    // password may hold any of them).
    let after_at = rest.rfind('@').map_or(0, |at| at + 1);
    let authority_end = rest[after_at..]
        .find(['/', '?', '#'])
        .map_or(rest.len(), |i| after_at + i);
    let tail = &rest[authority_end..];
    let query = tail.find(['?', '#']).map_or("", |i| &tail[i..]);
    format!(
        "{}{}/{name}{query}",
        &server_url[..rest_start],
        &rest[..authority_end]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_short_and_say_the_test() {
        assert_eq!(
            database_name("tests::Claims-are exclusive", 42, 7),
            "dbscope_t_tests__claims_are_exclusive_42_7"
        );
        let long = database_name(&"x".repeat(200), 4_294_967_295, 4_294_967_295);
        assert_eq!(long.len(), MAX_NAME);
        assert!(long.ends_with("_4294967295_4294967295"));
    }

    #[test]
    fn the_url_names_the_new_database() {
        let pg = BackendKind::Postgres;
        assert_eq!(
            with_database("postgres://u:p@h:5432/app?sslmode=disable", "t1", pg),
            "postgres://u:p@h:5432/t1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h", "t1", pg),
            "postgres://u@h/t1"
        );
        assert_eq!(
            with_database(
                "mysql://root:a/b?c@127.0.0.1:3306/test",
                "t1",
                BackendKind::Mysql
            ),
            "mysql://root:a/b?c@127.0.0.1:3306/t1"
        );
        assert_eq!(
            with_database("host=h user=u dbname=app", "t1", pg),
            "host=h user=u dbname=app dbname=t1"
        );
    }
}
