//! 100 detached flows, each with a 50 ms fake remote call, over a pool of 2:
//! the pool's own statistics show that no session was checked out during any
//! remote call. A control flow that holds a session across the call makes the
//! same assertion fail.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dbscope::{detach_ids, Id, LoadById, PoolableConnection, SessionFactory};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::support::{tokio_runtime, Backend, Ctx, TestError};

diesel::table! { detach_flows (id) { id -> Integer, v -> Integer } }

#[derive(Queryable, Identifiable, Debug)]
#[diesel(table_name = detach_flows)]
pub struct FlowRow {
    pub id: i32,
    pub v: i32,
}

const FLOWS: usize = 100;
const POOL: usize = 2;
const REMOTE: Duration = Duration::from_millis(50);

crate::all_backends!([no_session_is_held_during_remote_calls]);

/// Watches the pool from inside the fake remote calls.
///
/// `entered` counts flows that started (before their load unit), `left`
/// flows whose load unit is over (first statement of the body). A session
/// checked out by a load unit lies between the two, so at any instant
/// `in_use <= entered - left`. Sampled as `left` (first), `in_use`, `entered`
/// (last), the bound can only get looser, never tighter: a violation means a
/// session is checked out outside every load unit, held across the call.
struct Watch<C: PoolableConnection> {
    db: SessionFactory<C>,
    entered: AtomicUsize,
    left: AtomicUsize,
    samples: AtomicUsize,
    violations: AtomicUsize,
    worst: AtomicUsize,
}

impl<C: PoolableConnection> Watch<C> {
    fn new(db: SessionFactory<C>) -> Self {
        Watch {
            db,
            entered: AtomicUsize::new(0),
            left: AtomicUsize::new(0),
            samples: AtomicUsize::new(0),
            violations: AtomicUsize::new(0),
            worst: AtomicUsize::new(0),
        }
    }

    fn sample(&self) {
        let left = self.left.load(Ordering::SeqCst);
        let in_use = self.db.stats().in_use;
        let entered = self.entered.load(Ordering::SeqCst);
        let loading = entered.saturating_sub(left);
        self.samples.fetch_add(1, Ordering::Relaxed);
        if in_use > loading {
            self.violations.fetch_add(1, Ordering::Relaxed);
            self.worst.fetch_max(in_use - loading, Ordering::Relaxed);
        }
    }

    /// The fake remote call (an LLM, an HTTP API): 50 ms, sampled at its
    /// start, middle and end.
    async fn remote_call(&self) {
        self.sample();
        tokio::time::sleep(REMOTE / 2).await;
        self.sample();
        tokio::time::sleep(REMOTE / 2).await;
        self.sample();
    }
}

#[detach_ids(factory = db)]
async fn flow<C>(
    db: &SessionFactory<C>,
    #[load] item: FlowRow,
    watch: &Watch<C>,
) -> Result<i32, TestError>
where
    C: PoolableConnection,
    FlowRow: LoadById<C>,
{
    watch.left.fetch_add(1, Ordering::SeqCst);
    watch.remote_call().await;
    Ok(item.v)
}

/// The hazard `#[detach_ids]` removes, written by hand: a session held
/// across the remote call.
async fn control_flow<C: PoolableConnection>(watch: &Watch<C>) {
    watch.entered.fetch_add(1, Ordering::SeqCst);
    let session = watch.db.session().expect("session");
    watch.left.fetch_add(1, Ordering::SeqCst);
    watch.remote_call().await;
    drop(session);
}

fn no_session_is_held_during_remote_calls<B: Backend>(ctx: &Ctx<B>)
where
    FlowRow: LoadById<B::Conn>,
{
    let values: Vec<String> = (1..=FLOWS)
        .map(|id| format!("({id}, {})", id * 10))
        .collect();
    ctx.plain()
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS detach_flows; {}; INSERT INTO detach_flows (id, v) VALUES {};",
            B::create_table_sql("detach_flows"),
            values.join(", ")
        ))
        .expect("seed");
    let runtime = tokio_runtime();

    // 100 detached flows at once.
    let factory = ctx
        .builder()
        .max_size(POOL)
        .checkout_timeout(Duration::from_secs(30))
        .build()
        .expect("factory");
    let watch = Arc::new(Watch::new(factory.clone()));
    let started = Instant::now();
    let sum: i32 = runtime.block_on(async {
        let tasks: Vec<_> = (1..=FLOWS)
            .map(|id| {
                let watch = Arc::clone(&watch);
                tokio::spawn(async move {
                    watch.entered.fetch_add(1, Ordering::SeqCst);
                    flow(&watch.db, Id::new(id as i32), &watch).await
                })
            })
            .collect();
        let mut sum = 0;
        for task in tasks {
            sum += task.await.expect("task").expect("flow");
        }
        sum
    });
    let wall = started.elapsed();
    let stats = factory.stats();
    let (samples, violations) = (
        watch.samples.load(Ordering::Relaxed),
        watch.violations.load(Ordering::Relaxed),
    );
    println!(
        "{} detached flows: wall {wall:?}, held_total {:?}, max_in_use {}, {samples} samples, {violations} violations",
        B::NAME,
        stats.held_total,
        stats.max_in_use
    );
    assert_eq!(sum, (1..=FLOWS as i32).map(|id| id * 10).sum::<i32>());
    assert_eq!(samples, 3 * FLOWS);
    assert_eq!(
        violations,
        0,
        "a session was checked out outside every load unit, during a remote call \
         (worst excess {})",
        watch.worst.load(Ordering::Relaxed)
    );
    let all_remote_calls = REMOTE * FLOWS as u32;
    assert!(
        stats.held_total < all_remote_calls / 5,
        "held {:?}: connections were held for a large part of the {all_remote_calls:?} of remote calls",
        stats.held_total
    );
    assert!(stats.max_in_use <= POOL, "{stats:?}");
    assert_eq!((stats.in_use, stats.checkout_timeouts), (0, 0), "{stats:?}");
    // Holding a connection across each call, a pool of 2 could not finish in
    // less than 100 x 50 ms / 2.
    assert!(
        wall < all_remote_calls / POOL as u32,
        "wall {wall:?}: the flows were serialised on the pool"
    );

    // Control: the same watch catches a session held across the call.
    let factory = ctx.builder().max_size(POOL).build().expect("factory");
    let watch = Watch::new(factory.clone());
    runtime.block_on(control_flow(&watch));
    let stats = factory.stats();
    assert!(
        watch.violations.load(Ordering::Relaxed) >= 3,
        "the control flow held a session across the call and was not caught"
    );
    assert!(stats.held_total >= REMOTE, "{stats:?}");
}
