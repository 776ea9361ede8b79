//! `#[detach_ids]` against real databases: a `#[load]` parameter reloads the
//! current row, a deleted row is `Phase::NotFound`, work spawned after commit
//! sees the committed row on another connection, and a rollback drops it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dbscope::{
    detach_ids, run_unit, run_unit_async, spawn_after_commit, Error, Id, LoadById, Phase,
    PoolableConnection, SessionFactory, UnitOptions,
};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::support::{tokio_runtime, Backend, Ctx, TestError};

/// A `table!` of its own for one scenario (tests run in parallel on shared
/// servers), with a model row: `id` primary key, `v` a value.
macro_rules! scenario_table {
    ($table:ident, $row:ident) => {
        diesel::table! { $table (id) { id -> Integer, v -> Integer } }

        #[derive(Queryable, Identifiable, Debug)]
        #[diesel(table_name = $table)]
        pub struct $row {
            pub id: i32,
            pub v: i32,
        }
    };
}

scenario_table!(detach_reload, ReloadRow);
scenario_table!(detach_deleted, DeletedRow);
scenario_table!(detach_spawn, SpawnRow);

const WRITE: UnitOptions = UnitOptions::new("it::detach::write");

crate::all_backends!([
    load_reloads_the_row_committed_after_enqueue,
    load_of_a_deleted_row_is_not_found,
    spawned_job_sees_committed_row_elsewhere,
    spawned_job_of_rolled_back_unit_never_runs,
]);

/// Creates `table` (dropping a leftover one) with rows `(id, v)`.
fn create<B: Backend>(ctx: &Ctx<B>, table: &str, rows: &[(i32, i32)]) {
    let mut sql = format!(
        "DROP TABLE IF EXISTS {table}; {};",
        B::create_table_sql(table)
    );
    for (id, v) in rows {
        sql.push_str(&format!("INSERT INTO {table} (id, v) VALUES ({id}, {v});"));
    }
    ctx.plain()
        .batch_execute(&sql)
        .expect("create scenario table");
}

/// The job: reloads its row, and reports what it saw.
#[detach_ids(factory = db)]
fn reload_job<C>(db: &SessionFactory<C>, #[load] row: ReloadRow) -> Result<i32, TestError>
where
    C: PoolableConnection,
    ReloadRow: LoadById<C>,
{
    assert_eq!(db.stats().in_use, 0, "the load unit released its session");
    Ok(row.v)
}

fn load_reloads_the_row_committed_after_enqueue<B: Backend>(ctx: &Ctx<B>)
where
    ReloadRow: LoadById<B::Conn>,
{
    create(ctx, "detach_reload", &[(1, 10)]);
    let factory = ctx.builder().max_size(2).build().expect("factory");

    // Enqueue: the payload carries the id only.
    let payload = serde_json::json!({ "row": Id::<ReloadRow>::new(1) }).to_string();
    assert_eq!(payload, r#"{"row":1}"#);

    // A change committed between enqueue and run...
    run_unit(&factory, &WRITE, |session| {
        B::execute(session, "UPDATE detach_reload SET v = 20 WHERE id = 1").map_err(Error::from)
    })
    .expect("update commits");

    // ...is what the job sees.
    let payload: serde_json::Value = serde_json::from_str(&payload).expect("json");
    let id: Id<ReloadRow> = serde_json::from_value(payload["row"].clone()).expect("id");
    assert_eq!(reload_job(&factory, id).expect("job runs"), 20);
    let stats = factory.stats();
    assert_eq!((stats.in_use, stats.closed_dirty), (0, 0), "{stats:?}");
}

#[detach_ids(factory = db)]
fn deleted_job<C>(db: &SessionFactory<C>, #[load] row: DeletedRow) -> Result<i32, TestError>
where
    C: PoolableConnection,
    DeletedRow: LoadById<C>,
{
    Ok(row.v)
}

fn load_of_a_deleted_row_is_not_found<B: Backend>(ctx: &Ctx<B>)
where
    DeletedRow: LoadById<B::Conn>,
{
    create(ctx, "detach_deleted", &[(1, 10), (2, 20)]);
    let factory = ctx.builder().max_size(1).build().expect("factory");
    let id = Id::<DeletedRow>::new(1);
    run_unit(&factory, &WRITE, |session| {
        B::execute(
            session,
            &format!("DELETE FROM detach_deleted WHERE id = {id}"),
        )
        .map_err(Error::from)
    })
    .expect("delete commits");

    match deleted_job(&factory, id) {
        Err(TestError::Db(error)) => {
            assert_eq!(error.phase(), Phase::NotFound, "{error}");
            assert!(error.is_not_found());
            assert!(error.to_string().contains("DeletedRow"), "{error}");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(
        deleted_job(&factory, Id::new(2)).expect("row 2 is there"),
        20
    );
    assert_eq!(factory.stats().in_use, 0);
}

/// What a spawned job found.
#[derive(Debug, PartialEq)]
struct Seen {
    /// Rows with the id, counted on a plain connection outside the pool.
    on_another_connection: i64,
    /// The row's value, reloaded by a `#[load]` parameter.
    reloaded: i32,
}

#[detach_ids(factory = db)]
async fn spawned_job<C>(db: SessionFactory<C>, #[load] row: SpawnRow) -> Result<i32, TestError>
where
    C: PoolableConnection,
    SpawnRow: LoadById<C>,
{
    Ok(row.v)
}

fn spawned_job_sees_committed_row_elsewhere<B: Backend>(ctx: &Ctx<B>)
where
    SpawnRow: LoadById<B::Conn>,
{
    create(ctx, "detach_spawn", &[]);
    let factory = ctx.builder().max_size(2).build().expect("factory");
    let runtime = tokio_runtime();
    let (tx, rx) = tokio::sync::oneshot::channel::<Seen>();
    let (url, job_factory) = (ctx.url().to_owned(), factory.clone());
    let unit_factory = factory.clone();
    runtime.block_on(async move {
        run_unit_async(&unit_factory, &WRITE, move |session| {
            B::execute(session, "INSERT INTO detach_spawn (id, v) VALUES (1, 42)")?;
            spawn_after_commit(async move {
                let mut reader = B::plain(&url);
                let on_another_connection = B::scalar(
                    &mut reader,
                    "SELECT COUNT(*) AS n FROM detach_spawn WHERE id = 1",
                )
                .expect("reader");
                drop(reader);
                let reloaded = spawned_job(job_factory, Id::new(1)).await.expect("job");
                let _ = tx.send(Seen {
                    on_another_connection,
                    reloaded,
                });
            })?;
            // Were the task spawned now, it would run (and read) before COMMIT.
            std::thread::sleep(Duration::from_millis(100));
            Ok::<_, Error>(())
        })
        .await
        .expect("unit commits");
    });
    let seen = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), rx).await })
        .expect("the job ran within 10 s")
        .expect("the job reported");
    assert_eq!(
        seen,
        Seen {
            on_another_connection: 1,
            reloaded: 42
        }
    );
}

fn spawned_job_of_rolled_back_unit_never_runs<B: Backend>(ctx: &Ctx<B>) {
    create(ctx, "detach_rollback", &[]);
    let factory = ctx.builder().max_size(1).build().expect("factory");
    let runtime = tokio_runtime();
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let result = runtime.block_on(async {
        run_unit_async(&factory, &WRITE, move |session| {
            B::execute(session, "INSERT INTO detach_rollback (id, v) VALUES (1, 1)")?;
            spawn_after_commit(async move { flag.store(true, Ordering::SeqCst) })?;
            Err::<(), _>(TestError::Business("refused"))
        })
        .await
    });
    assert!(matches!(result, Err(TestError::Business(_))), "{result:?}");
    runtime.block_on(async { tokio::time::sleep(Duration::from_millis(200)).await });
    assert!(
        !ran.load(Ordering::SeqCst),
        "work of a rolled-back unit ran"
    );
    let mut conn = ctx.plain();
    assert_eq!(
        B::scalar(&mut conn, "SELECT COUNT(*) AS n FROM detach_rollback").expect("count"),
        0
    );
    assert_eq!(factory.stats().in_use, 0);
}
