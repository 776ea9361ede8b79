//! The three patterns of a runner that does short database work around long
//! non-database work (PROBLEMS.md section 1), written with `#[unit_of_work]`:
//! *create*, *fetch then long work*, *update by id*. Each unit closes its
//! session before it returns, and only ids and copied-out values travel
//! between the pieces.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::connection::SimpleConnection;

use crate::support::Ctx;
use crate::uow_support::{items_table, Dialect, Queries};

crate::all_backends!([
    uow_create_reads_back_server_default,
    uow_fetch_then_long_work_holds_no_connection,
    uow_update_by_id_is_visible_elsewhere,
]);

/// What *create* hands back: the id, and the server default it read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Created {
    id: i64,
    created_at: i64,
}

/// *create*: insert, read back what the server filled in, commit, return the id.
#[unit_of_work(factory = db)]
fn create_item<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
    name: &str,
) -> Result<Created, Error> {
    conn.batch_execute(&format!("INSERT INTO {table} (name) VALUES ('{name}')"))?;
    let id = conn.query_i64(&format!(
        "SELECT id AS n FROM {table} WHERE name = '{name}'"
    ))?;
    let created_at = conn.query_i64(&format!(
        "SELECT {} AS n FROM {table} WHERE id = {id}",
        B::epoch_sql("created_at")
    ))?;
    Ok(Created { id, created_at })
}

/// What the long work needs, copied out of the row: no session, no row object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Job {
    id: i64,
    prompt: String,
}

/// *fetch*: load the row and copy out what the long work needs.
#[unit_of_work(factory = db, read_only)]
fn fetch_job<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
    id: i64,
) -> Result<Job, Error> {
    let prompt = conn.query_text(&format!("SELECT name AS t FROM {table} WHERE id = {id}"))?;
    Ok(Job { id, prompt })
}

/// *update*: load by id, change, commit, return the id.
#[unit_of_work(factory = db)]
fn rename_item<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
    id: i64,
    name: &str,
) -> Result<i64, Error> {
    // Load first: a missing id is `NotFound`, not a silent no-op update.
    let version = conn.query_i64(&format!("SELECT v AS n FROM {table} WHERE id = {id}"))?;
    conn.batch_execute(&format!(
        "UPDATE {table} SET name = '{name}', v = {} WHERE id = {id}",
        version + 1
    ))?;
    Ok(id)
}

/// A short unit another request runs while the long work goes on.
#[unit_of_work(factory = db, read_only)]
fn count_items<B: Dialect>(
    db: &SessionFactory<B::Conn>,
    #[session] conn: &mut B::Conn,
    table: &str,
) -> Result<i64, Error> {
    Ok(conn.query_i64(&format!("SELECT COUNT(*) AS n FROM {table}"))?)
}

fn now_epoch() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn uow_create_reads_back_server_default<B: Dialect>(ctx: &Ctx<B>) {
    let table = items_table(ctx, "items");
    let factory = ctx.builder().max_size(1).build().expect("factory");
    let before = now_epoch();
    let first = create_item::<B>(&factory, &table, "first").expect("create");
    let second = create_item::<B>(&factory, &table, "second").expect("create");
    let after = now_epoch();
    assert_ne!(first.id, second.id, "two creates, one id");
    // The server filled in `created_at` (clocks of one machine; 5 s of slack
    // for rounding and time zones done right).
    for created in [first, second] {
        assert!(
            (before - 5..=after + 5).contains(&created.created_at),
            "created_at {} is not now ({before}..{after})",
            created.created_at
        );
    }
    // What the unit read back is what was committed: another session sees it.
    let mut other = ctx.plain();
    let committed = other
        .query_i64(&format!(
            "SELECT {} AS n FROM {table} WHERE id = {}",
            B::epoch_sql("created_at"),
            first.id
        ))
        .expect("row committed");
    assert_eq!(committed, first.created_at);
    let stats = factory.stats();
    assert_eq!((stats.in_use, stats.checkouts), (0, 2), "{stats:?}");

    // A create that fails (duplicate name) leaves nothing and returns the error.
    let error = create_item::<B>(&factory, &table, "first").expect_err("duplicate name");
    assert_eq!(error.phase(), dbscope::Phase::User, "{error}");
    assert_eq!(
        other
            .query_i64(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .unwrap(),
        2
    );
    assert_eq!(factory.stats().in_use, 0);
}

fn uow_fetch_then_long_work_holds_no_connection<B: Dialect>(ctx: &Ctx<B>) {
    let table = items_table(ctx, "items");
    // A pool of one: if the long work held the connection, the other request
    // below would time out.
    let factory = ctx
        .builder()
        .max_size(1)
        .checkout_timeout(Duration::from_secs(2))
        .build()
        .expect("factory");
    let created = create_item::<B>(&factory, &table, "summarise").expect("create");

    let job = fetch_job::<B>(&factory, &table, created.id).expect("fetch");
    assert_eq!(
        job,
        Job {
            id: created.id,
            prompt: "summarise".to_owned()
        }
    );

    // The long work: no database, and no connection held while it runs, so
    // half-way through another request (another thread) gets the pool's one
    // connection (checkout timeout 2 s).
    let long_work = |job: &Job| {
        for step in 0..6 {
            let stats = factory.stats();
            assert_eq!(stats.in_use, 0, "step {step} of the long work: {stats:?}");
            if step == 3 {
                let other_request =
                    std::thread::scope(|s| s.spawn(|| count_items::<B>(&factory, &table)).join());
                assert_eq!(other_request.expect("other request").expect("served"), 1);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        format!("{} (done)", job.prompt)
    };
    let answer = long_work(&job);

    // More database work afterwards, by id.
    let id = rename_item::<B>(&factory, &table, job.id, &answer).expect("update");
    assert_eq!(id, created.id);
    let stored = ctx
        .plain()
        .query_text(&format!("SELECT name AS t FROM {table} WHERE id = {id}"))
        .unwrap();
    assert_eq!(stored, "summarise (done)");
    let stats = factory.stats();
    assert_eq!((stats.in_use, stats.checkout_timeouts), (0, 0), "{stats:?}");
}

fn uow_update_by_id_is_visible_elsewhere<B: Dialect>(ctx: &Ctx<B>) {
    let table = items_table(ctx, "items");
    let factory = ctx.builder().max_size(2).build().expect("factory");
    let a = create_item::<B>(&factory, &table, "a").expect("create");
    let b = create_item::<B>(&factory, &table, "b").expect("create");

    // Another session, open before the update, reads the change once committed.
    let mut other = ctx.plain();
    let name_of = |conn: &mut B::Conn, id: i64| {
        conn.query_text(&format!("SELECT name AS t FROM {table} WHERE id = {id}"))
            .unwrap()
    };
    assert_eq!(name_of(&mut other, a.id), "a");
    let id = rename_item::<B>(&factory, &table, a.id, "a2").expect("update");
    assert_eq!(id, a.id);
    assert_eq!(name_of(&mut other, a.id), "a2");
    assert_eq!(
        name_of(&mut other, b.id),
        "b",
        "only the row with that id changed"
    );
    let version = other
        .query_i64(&format!("SELECT v AS n FROM {table} WHERE id = {}", a.id))
        .unwrap();
    assert_eq!(version, 1);

    // A missing id is an error the caller can tell apart, and changes nothing.
    let missing = a.id.max(b.id) + 100;
    let error = rename_item::<B>(&factory, &table, missing, "x").expect_err("no such id");
    assert!(error.is_not_found(), "{error}");
    assert_eq!(
        other
            .query_i64(&format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE name = 'x'"
            ))
            .unwrap(),
        0
    );
    let stats = factory.stats();
    assert_eq!((stats.in_use, stats.closed_dirty), (0, 0), "{stats:?}");
}
