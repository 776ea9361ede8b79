//! A repository that holds a session factory and opens one short session per
//! operation (PROBLEMS.md section 2): `&self` methods, sync and async, with
//! `#[unit_of_work(factory = self.db)]`. The application injects the factory:
//! an `Arc` of a normal one, or a rollback-only one in tests.

use std::sync::Arc;

use dbscope::{unit_of_work, Error, SessionFactory, SessionSource};
use diesel::connection::SimpleConnection;

use crate::support::{tokio_runtime, Ctx, TestError};
use crate::uow_support::{Dialect, Queries};

crate::all_backends!([
    uow_repo_methods_on_shared_factory,
    uow_repo_on_rollback_only_factory,
]);

/// Rows `(id, v)` of one table, behind whatever factory the application gives.
struct Repo<F: SessionSource> {
    db: F,
    table: String,
}

impl<F: SessionSource> Repo<F>
where
    F::Connection: Queries,
{
    #[unit_of_work(factory = self.db)]
    fn add(&self, conn: &mut F::Connection, id: i64, v: i64) -> Result<(), Error> {
        conn.batch_execute(&format!(
            "INSERT INTO {} (id, v) VALUES ({id}, {v})",
            self.table
        ))?;
        Ok(())
    }

    /// Inserts, then refuses: the insert must not persist.
    #[unit_of_work(factory = self.db)]
    fn add_then_refuse(&self, conn: &mut F::Connection, id: i64) -> Result<(), TestError> {
        conn.batch_execute(&format!(
            "INSERT INTO {} (id, v) VALUES ({id}, 0)",
            self.table
        ))?;
        Err(TestError::Business("refused after the insert"))
    }

    #[unit_of_work(factory = self.db, read_only)]
    fn total(&self, conn: &mut F::Connection) -> Result<(i64, i64), Error> {
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(v), 0) AS {}) AS n FROM {}",
            sum_type::<F::Connection>(),
            self.table
        );
        let sum = conn.query_i64(&sql)?;
        let count = conn.query_i64(&format!("SELECT COUNT(*) AS n FROM {}", self.table))?;
        Ok((count, sum))
    }

    #[unit_of_work(factory = self.db)]
    async fn add_async(&self, conn: &mut F::Connection, id: i64, v: i64) -> Result<(), Error> {
        conn.batch_execute(&format!(
            "INSERT INTO {} (id, v) VALUES ({id}, {v})",
            self.table
        ))?;
        Ok(())
    }

    #[unit_of_work(factory = self.db, read_only)]
    async fn count_async(&self, conn: &mut F::Connection) -> Result<i64, Error> {
        Ok(conn.query_i64(&format!("SELECT COUNT(*) AS n FROM {}", self.table))?)
    }
}

/// The integer type `CAST` accepts on the connection's backend (a generic
/// repository can still ask which backend it runs on).
fn sum_type<C: dbscope::PoolableConnection>() -> &'static str {
    match C::KIND {
        dbscope::BackendKind::Mysql => "SIGNED",
        _ => "BIGINT",
    }
}

fn uow_repo_methods_on_shared_factory<B: Dialect>(ctx: &Ctx<B>) {
    let factory = Arc::new(ctx.builder().max_size(2).build().expect("factory"));
    let repo = Arc::new(Repo {
        db: Arc::clone(&factory),
        table: ctx.table.clone(),
    });
    repo.add(1, 10).expect("add");
    assert!(ctx.has_row(1), "committed: visible to another session");
    let refused = repo.add_then_refuse(2);
    assert!(
        matches!(refused, Err(TestError::Business(_))),
        "{refused:?}"
    );
    assert!(!ctx.has_row(2), "a refused operation left its row");

    // Async methods, from tasks on a multi-thread runtime (the futures are
    // `Send`: the session never crosses an await).
    let runtime = tokio_runtime();
    let tasks: Vec<_> = (3..=6)
        .map(|id| {
            let repo = Arc::clone(&repo);
            runtime.spawn(async move { repo.add_async(id, id * 10).await })
        })
        .collect();
    for task in tasks {
        runtime.block_on(task).expect("task").expect("async add");
    }
    let repo_in_task = Arc::clone(&repo);
    let count = runtime
        .block_on(runtime.spawn(async move { repo_in_task.count_async().await }))
        .expect("task")
        .expect("async count");
    assert_eq!(count, 5);
    assert_eq!(repo.total().expect("total"), (5, 10 + 30 + 40 + 50 + 60));

    // A second repository over the same pool, holding a plain reference.
    let by_ref = Repo {
        db: &*factory,
        table: ctx.table.clone(),
    };
    by_ref.add(7, 70).expect("add through a borrowed factory");
    assert_eq!(repo.total().expect("total").0, 6);
    assert_eq!(ctx.count(), 6);

    let stats = factory.stats();
    assert_eq!((stats.in_use, stats.closed_dirty), (0, 0), "{stats:?}");
    assert!(stats.max_in_use <= 2, "{stats:?}");
}

/// PROBLEMS.md section 2: a test injects a factory that rolls everything back.
/// The repository works as usual (its operations see each other's rows), other
/// sessions see nothing, and nothing persists past the factory.
fn uow_repo_on_rollback_only_factory<B: Dialect>(ctx: &Ctx<B>) {
    {
        let factory: SessionFactory<B::Conn> = ctx
            .builder()
            .rollback_only()
            .build()
            .expect("rollback-only factory");
        let repo = Arc::new(Repo {
            db: Arc::new(factory),
            table: ctx.table.clone(),
        });
        for id in 1..=3 {
            repo.add(id, id).expect("add");
        }
        assert!(repo.add_then_refuse(4).is_err());
        let runtime = tokio_runtime();
        let in_task = Arc::clone(&repo);
        let count = runtime
            .block_on(runtime.spawn(async move {
                in_task.add_async(5, 5).await?;
                in_task.count_async().await
            }))
            .expect("task")
            .expect("async units");
        assert_eq!(count, 4, "units see the rows of earlier units");
        assert_eq!(repo.total().expect("total"), (4, 1 + 2 + 3 + 5));
        assert_eq!(ctx.count(), 0, "another session sees uncommitted rows");
        let stats = repo.db.stats();
        assert_eq!(
            (stats.in_use, stats.open, stats.closed_dirty),
            (0, 1, 0),
            "{stats:?}"
        );
    }
    assert_eq!(ctx.count(), 0, "a rollback-only factory left rows behind");
    for id in 1..=5 {
        assert!(!ctx.has_row(id));
    }
}
