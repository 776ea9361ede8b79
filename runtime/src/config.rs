//! How a session factory's pool behaves: sizes, timeouts, validation, recycling
//! and per-connection setup.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use diesel::QueryResult;

/// When a pooled connection is checked with a round trip before it is handed out.
///
/// The default, `IdleFor(500 ms)`, pings only connections that sat idle longer
/// than that: those are the ones a server or firewall may have closed. A busy
/// pool hands out connections returned moments ago and pays no round trip.
/// A connection that dies anyway is caught when `BEGIN` fails, before any user
/// statement ran, and the unit starts again on another connection.
///
/// ```
/// use std::time::Duration;
/// use dbscope_runtime::Validation;
/// assert_eq!(Validation::default(), Validation::IdleFor(Duration::from_millis(500)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// Ping on every checkout (what r2d2 does by default).
    Always,
    /// Never ping; rely on `BEGIN` failing over to another connection.
    Never,
    /// Ping connections idle longer than this.
    IdleFor(Duration),
}

impl Default for Validation {
    fn default() -> Self {
        Validation::IdleFor(Duration::from_millis(500))
    }
}

impl Validation {
    pub(crate) fn needed_after(self, idle: Duration) -> bool {
        match self {
            Validation::Always => true,
            Validation::Never => false,
            Validation::IdleFor(window) => idle >= window,
        }
    }
}

/// A function run on every new connection, after the setup statements.
pub(crate) type OnConnect<C> = Arc<dyn Fn(&mut C) -> QueryResult<()> + Send + Sync>;

/// The settings of a session factory, the same for both flavours; built
/// through [`SessionFactoryBuilder`](crate::SessionFactoryBuilder) or
/// `AsyncSessionFactoryBuilder`. `H` is the flavour's `on_connect` hook.
pub(crate) struct PoolConfig<C, H = OnConnect<C>> {
    pub(crate) max_size: usize,
    pub(crate) min_idle: usize,
    pub(crate) checkout_timeout: Duration,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) validation: Validation,
    pub(crate) hold_budget: Option<Duration>,
    pub(crate) server_budget: bool,
    pub(crate) setup_sql: Vec<String>,
    pub(crate) on_connect: Option<H>,
    pub(crate) rollback_only: bool,
    pub(crate) _connection: std::marker::PhantomData<fn() -> C>,
}

impl<C, H> PoolConfig<C, H> {
    pub(crate) fn new() -> Self {
        PoolConfig {
            max_size: 10,
            min_idle: 0,
            checkout_timeout: Duration::from_secs(5),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            idle_timeout: Some(Duration::from_secs(10 * 60)),
            validation: Validation::default(),
            hold_budget: Some(Duration::from_secs(5)),
            server_budget: true,
            setup_sql: Vec::new(),
            on_connect: None,
            rollback_only: false,
            _connection: std::marker::PhantomData,
        }
    }

    /// Applies the rules every factory follows, whatever its flavour: a
    /// private SQLite in-memory database lives inside its one connection
    /// (never more than one, never closed while the factory lives); a
    /// rollback-only factory has one connection; the backend's default setup
    /// statements (`default_setup`, unless the builder dropped them) run first.
    pub(crate) fn settle(&mut self, in_memory: bool, default_setup: Option<Vec<String>>) {
        if in_memory {
            self.max_size = 1;
            self.max_lifetime = None;
            self.idle_timeout = None;
            self.min_idle = self.min_idle.min(1);
        }
        if let Some(mut setup) = default_setup {
            setup.append(&mut self.setup_sql);
            self.setup_sql = setup;
        }
        if self.rollback_only {
            self.max_size = 1;
        }
    }

    /// Turns the factory into a rollback-only one (see the builders'
    /// `rollback_only`).
    pub(crate) fn make_rollback_only(&mut self) {
        self.rollback_only = true;
        self.max_size = 1;
        self.max_lifetime = None;
        self.idle_timeout = None;
        self.validation = Validation::Never;
    }

    /// The transaction depth of a clean connection at rest in the pool: 1 for
    /// a rollback-only factory (its outer transaction), 0 otherwise.
    pub(crate) fn base_depth(&self) -> u32 {
        u32::from(self.rollback_only)
    }
}

impl<C, H> fmt::Debug for PoolConfig<C, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolConfig")
            .field("max_size", &self.max_size)
            .field("min_idle", &self.min_idle)
            .field("checkout_timeout", &self.checkout_timeout)
            .field("max_lifetime", &self.max_lifetime)
            .field("idle_timeout", &self.idle_timeout)
            .field("validation", &self.validation)
            .field("hold_budget", &self.hold_budget)
            .field("server_budget", &self.server_budget)
            .field("setup_sql", &self.setup_sql)
            .field("on_connect", &self.on_connect.is_some())
            .field("rollback_only", &self.rollback_only)
            .finish()
    }
}
