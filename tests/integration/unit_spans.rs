//! Every unit of work runs in a `tracing` span `unit_of_work` (issue 15) with
//! its name, isolation, read-only flag, attempt, outcome and held time,
//! captured here by a subscriber layer of the test's own.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use dbscope::{unit_of_work, AsyncSessionFactory, Error, SessionFactory};
use diesel::connection::SimpleConnection;
use diesel::{RunQueryDsl, SqliteConnection};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// A closed span's fields, as text.
type Fields = BTreeMap<&'static str, String>;

/// Collects the fields of every `unit_of_work` span, in the order they close.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Fields>>>);

struct Collect<'a>(&'a mut Fields);

impl Visit for Collect<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "unit_of_work" {
            return;
        }
        let mut fields = Fields::new();
        attrs.record(&mut Collect(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<Fields>() {
                values.record(&mut Collect(fields));
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            if let Some(fields) = span.extensions_mut().remove::<Fields>() {
                self.0.lock().expect("capture").push(fields);
            }
        }
    }
}

#[unit_of_work(factory = db)]
fn commits(
    db: &SessionFactory<SqliteConnection>,
    _conn: &mut SqliteConnection,
) -> Result<(), Error> {
    Ok(())
}

#[unit_of_work(factory = db, read_only, isolation = serializable)]
fn refuses(
    db: &SessionFactory<SqliteConnection>,
    _conn: &mut SqliteConnection,
) -> Result<(), Error> {
    Err(Error::user("no"))
}

#[unit_of_work(factory = db, retry = 3)]
fn busy_once(
    db: &SessionFactory<SqliteConnection>,
    conn: &mut SqliteConnection,
    attempts: &Mutex<u32>,
) -> Result<(), Error> {
    let mut attempts = attempts.lock().expect("attempts");
    *attempts += 1;
    if *attempts == 1 {
        // The trigger fails the insert as a busy database would.
        diesel::sql_query("INSERT INTO busy VALUES (1)").execute(conn)?;
    }
    Ok(())
}

type Wrapper = diesel_async::sync_connection_wrapper::SyncConnectionWrapper<SqliteConnection>;

#[unit_of_work(factory = db)]
async fn native_commits(
    db: &AsyncSessionFactory<Wrapper>,
    #[session(async)] _conn: &mut Wrapper,
) -> Result<(), Error> {
    Ok(())
}

#[unit_of_work(factory = db)]
async fn async_commits(
    db: &SessionFactory<SqliteConnection>,
    _conn: &mut SqliteConnection,
) -> Result<(), Error> {
    Ok(())
}

#[test]
fn every_unit_runs_in_a_span_with_its_outcome() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        let db = SessionFactory::<SqliteConnection>::new(":memory:").expect("factory");
        db.checkout()
            .expect("connection")
            .batch_execute(
                "CREATE TABLE busy (x INTEGER); CREATE TRIGGER busy_insert BEFORE INSERT ON busy \
                 BEGIN SELECT RAISE(ABORT, 'database is locked'); END;",
            )
            .expect("schema");
        commits(&db).expect("commits");
        refuses(&db).expect_err("refuses");
        busy_once(&db, &Mutex::new(0)).expect("second attempt");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async_commits(&db)).expect("async");
        let native = AsyncSessionFactory::<Wrapper>::new(":memory:").expect("native factory");
        runtime.block_on(native_commits(&native)).expect("native");
    });
    let spans = capture.0.lock().expect("capture").clone();
    let field = |span: &Fields, name: &str| span.get(name).cloned().unwrap_or_default();
    assert_eq!(spans.len(), 5, "{spans:#?}");
    let names: Vec<String> = spans.iter().map(|span| field(span, "unit")).collect();
    assert_eq!(
        names,
        [
            "integration::unit_spans::commits",
            "integration::unit_spans::refuses",
            "integration::unit_spans::busy_once",
            "integration::unit_spans::async_commits",
            "integration::unit_spans::native_commits",
        ]
    );
    let outcomes: Vec<String> = spans.iter().map(|span| field(span, "outcome")).collect();
    assert_eq!(
        outcomes,
        [
            "committed",
            "rolled_back",
            "committed",
            "committed",
            "committed"
        ]
    );
    assert_eq!(field(&spans[2], "attempt"), "2", "the retried unit");
    assert_eq!(field(&spans[0], "attempt"), "1");
    assert_eq!(field(&spans[1], "read_only"), "true");
    assert_eq!(field(&spans[1], "isolation"), "SERIALIZABLE");
    assert_eq!(field(&spans[0], "read_only"), "false");
    for span in &spans {
        assert!(
            field(span, "held_ms").parse::<u64>().is_ok(),
            "held time recorded: {span:?}"
        );
    }
}
