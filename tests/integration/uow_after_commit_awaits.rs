//! A future given to `spawn_after_commit` inside a `#[unit_of_work]` may await
//! anything (the macro does not count its `.await`s as awaits inside the
//! unit), and it runs only after the unit committed: its own unit of work
//! sees the row, on every backend. A unit that rolls back never runs it.

use dbscope::{spawn_after_commit, unit_of_work, Error, SessionFactory};
use diesel::connection::SimpleConnection;
use tokio::sync::oneshot;

use crate::support::{tokio_runtime, Ctx, TestError};
use crate::uow_support::{Dialect, Queries};

crate::all_backends!([
    after_commit_job_awaits_and_sees_the_row,
    after_commit_job_of_refused_unit_never_runs,
]);

#[unit_of_work(factory = db, read_only)]
async fn count_rows<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
) -> Result<i64, Error> {
    Ok(conn.query_i64(&format!("SELECT COUNT(*) AS n FROM {table}"))?)
}

/// Inserts row `id`, then registers a job that waits for `go`, counts the
/// rows in a unit of its own and reports the count on `done`.
#[unit_of_work(factory = db)]
async fn insert_and_notify<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
    id: i64,
    refuse: bool,
    go: oneshot::Receiver<()>,
    done: oneshot::Sender<i64>,
) -> Result<(), TestError> {
    conn.batch_execute(&format!("INSERT INTO {table} (id, v) VALUES ({id}, 1)"))?;
    let (factory, table) = (db.clone(), table.to_owned());
    spawn_after_commit(async move {
        // Awaits of foreign work: fine, this runs after COMMIT.
        let _ = go.await;
        tokio::task::yield_now().await;
        let count = count_rows::<B>(&factory, &table).await.expect("count");
        let _ = done.send(count);
    })?;
    if refuse {
        return Err(TestError::Business("refused after registering the job"));
    }
    Ok(())
}

fn after_commit_job_awaits_and_sees_the_row<B: Dialect>(ctx: &Ctx<B>) {
    let factory = ctx.builder().max_size(1).build().expect("factory");
    let runtime = tokio_runtime();
    let (go_tx, go_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let (f, table) = (factory.clone(), ctx.table.clone());
    runtime
        .block_on(runtime.spawn(async move {
            insert_and_notify::<B>(&f, &table, 1, false, go_rx, done_tx).await
        }))
        .expect("task")
        .expect("the unit commits");
    // The job is waiting for `go`: the unit returned, its connection is back.
    assert_eq!(factory.stats().in_use, 0);
    go_tx.send(()).expect("the job is alive and waiting");
    let seen = runtime.block_on(done_rx).expect("the job ran");
    assert_eq!(seen, 1, "the job's own unit sees the committed row");
    assert!(ctx.has_row(1));
}

fn after_commit_job_of_refused_unit_never_runs<B: Dialect>(ctx: &Ctx<B>) {
    let factory = ctx.builder().max_size(1).build().expect("factory");
    let runtime = tokio_runtime();
    let (_go_tx, go_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let (f, table) = (factory.clone(), ctx.table.clone());
    let outcome = runtime
        .block_on(runtime.spawn(async move {
            insert_and_notify::<B>(&f, &table, 2, true, go_rx, done_tx).await
        }))
        .expect("task");
    assert!(
        matches!(outcome, Err(TestError::Business(_))),
        "{outcome:?}"
    );
    assert!(
        runtime.block_on(done_rx).is_err(),
        "the job of a rolled-back unit was dropped, never spawned"
    );
    assert!(!ctx.has_row(2));
}
