//! The pool's logic against a fake connection and a clock moved by hand: no
//! verdict here depends on how fast the machine is, and no waiter has a
//! safety-net wake-up (see [`Clock::Manual`]), so every wake a test needs
//! must come from the pool itself.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::blocking::BlockingDriver;
use super::clock::ManualClock;
use super::{Clock, Driver, Lease, Plan, Pool, Shared, Slot, Tracked};
use crate::backend::ServerTraits;
use crate::config::{PoolConfig, Validation};
use crate::error::{Error, Phase};
use crate::redact::RedactedUrl;
use crate::signals::Signals;

/// A connection that only knows its number and its transaction depth.
struct FakeConn {
    id: usize,
    depth: u32,
}

/// Opens fake connections, counting connects and pings; can be told to
/// refuse connects, to find connections dead, or (async) to never answer.
#[derive(Default)]
struct Fake {
    connects: AtomicUsize,
    pings: AtomicUsize,
    refuse: AtomicBool,
    dead: AtomicBool,
    hang: AtomicBool,
}

impl Driver<FakeConn> for Fake {
    type OnConnect = ();

    fn depth(&self, conn: &mut FakeConn) -> Option<u32> {
        Some(conn.depth)
    }
}

impl Fake {
    fn open(&self, pool: &Shared<FakeConn, Self>) -> Result<Box<Tracked<FakeConn>>, Error> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err(Error::new(Phase::Connect, "connection refused"));
        }
        let id = self.connects.fetch_add(1, Ordering::SeqCst) + 1;
        pool.counters
            .connections_created
            .fetch_add(1, Ordering::Relaxed);
        let conn = FakeConn { id, depth: 0 };
        let (signals, _recorder) = Signals::install();
        Ok(Tracked::new(
            conn,
            ServerTraits::default(),
            signals,
            pool.clock.now(),
        ))
    }

    fn answer(&self) -> bool {
        self.pings.fetch_add(1, Ordering::SeqCst);
        !self.dead.load(Ordering::SeqCst)
    }
}

impl BlockingDriver<FakeConn> for Fake {
    fn connect(&self, pool: &Shared<FakeConn, Self>) -> Result<Box<Tracked<FakeConn>>, Error> {
        self.open(pool)
    }

    fn ping(&self, _conn: &mut FakeConn) -> bool {
        self.answer()
    }
}

#[cfg(feature = "async")]
impl super::native::NativeDriver<FakeConn> for Fake {
    async fn connect(
        &self,
        pool: &Shared<FakeConn, Self>,
    ) -> Result<Box<Tracked<FakeConn>>, Error> {
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.open(pool)
    }

    async fn ping(&self, _conn: &mut FakeConn) -> bool {
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.answer()
    }
}

type FakePool = Pool<FakeConn, Fake>;

const TIMEOUT: Duration = Duration::from_secs(5);
const WINDOW: Duration = Duration::from_millis(500);
const LIFETIME: Duration = Duration::from_secs(30 * 60);
const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// A pool of `max_size` fake connections on a manual clock, with the
/// defaults of a factory (5 s checkout timeout, 500 ms validation window,
/// 30 min lifetime, 10 min idle timeout).
fn pool_with(
    max_size: usize,
    clock: Clock,
    tune: impl FnOnce(&mut PoolConfig<FakeConn, ()>),
) -> FakePool {
    let mut config = PoolConfig::new();
    config.max_size = max_size;
    config.checkout_timeout = TIMEOUT;
    config.validation = Validation::IdleFor(WINDOW);
    config.max_lifetime = Some(LIFETIME);
    config.idle_timeout = Some(IDLE_TIMEOUT);
    tune(&mut config);
    Pool::new(
        RedactedUrl::new("fake://db"),
        config,
        Fake::default(),
        clock,
    )
}

fn manual_pool(max_size: usize) -> (FakePool, Arc<ManualClock>) {
    let clock = ManualClock::new();
    (
        pool_with(max_size, Clock::Manual(Arc::clone(&clock)), |_| {}),
        clock,
    )
}

fn checkout(pool: &FakePool) -> Result<Lease<FakeConn, Fake>, Error> {
    pool.acquire_slot_blocking(pool.deadline())?.realize()
}

fn driver(pool: &FakePool) -> &Fake {
    &pool.shared.driver
}

/// Polls a future once, with a waker that does nothing: the test decides
/// when a future runs again.
fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// A tokio runtime to poll by hand (timers are created, never fired).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Spins until `condition` holds (another thread's progress), yielding.
fn spin_until(mut condition: impl FnMut() -> bool) {
    for _ in 0..50_000_000u64 {
        if condition() {
            return;
        }
        std::thread::yield_now();
    }
    panic!("the other thread never got there");
}

fn expect_ready<T>(poll: Poll<T>) -> T {
    match poll {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("expected the future to be ready"),
    }
}

#[test]
fn plan_reuses_inside_the_window_validates_past_it_and_recycles_by_age() {
    let (pool, clock) = manual_pool(1);
    let lease = checkout(&pool).unwrap();
    let tracked = lease.tracked.as_deref().unwrap();
    let opened = clock.now();
    let shared = &pool.shared;
    assert_eq!(shared.plan(tracked, opened), Plan::Reuse);
    assert_eq!(
        shared.plan(tracked, opened + WINDOW - Duration::from_nanos(1)),
        Plan::Reuse
    );
    assert_eq!(shared.plan(tracked, opened + WINDOW), Plan::Validate);
    assert_eq!(
        shared.plan(tracked, opened + LIFETIME - Duration::from_nanos(1)),
        Plan::Validate
    );
    assert_eq!(shared.plan(tracked, opened + LIFETIME), Plan::Recycle);
}

#[test]
fn a_newcomer_cannot_take_a_connection_a_waiter_was_woken_for() {
    let (pool, _clock) = manual_pool(1);
    let rt = runtime();
    let _in_runtime = rt.enter();
    let lease = checkout(&pool).unwrap();
    let mut waiter = pin!(pool.acquire_slot_async(pool.deadline()));
    assert!(poll_once(waiter.as_mut()).is_pending());
    assert_eq!(pool.stats().waiting, 1);

    drop(lease);
    assert_eq!(pool.stats().idle, 1);
    // A blocking newcomer with no time to wait gets nothing...
    let refused = pool
        .acquire_slot_blocking(pool.shared.clock.now())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(refused.phase(), Phase::CheckoutTimeout);
    // ...and an async one queues behind the waiter.
    let mut newcomer = pin!(pool.acquire_slot_async(pool.deadline()));
    assert!(poll_once(newcomer.as_mut()).is_pending());
    assert_eq!(pool.stats().idle, 1, "nobody took the idle connection");

    let slot = expect_ready(poll_once(waiter.as_mut())).unwrap();
    assert_eq!(pool.stats().idle, 0);
    drop(slot);
    let slot = expect_ready(poll_once(newcomer.as_mut())).unwrap();
    assert_eq!(slot.realize().unwrap().conn_ref().id, 1);
    assert_eq!(pool.stats().waiting, 0);
}

#[test]
fn waiters_are_served_in_the_order_they_came() {
    let (pool, _clock) = manual_pool(1);
    let rt = runtime();
    let _in_runtime = rt.enter();
    let lease = checkout(&pool).unwrap();
    let mut first = pin!(pool.acquire_slot_async(pool.deadline()));
    let mut second = pin!(pool.acquire_slot_async(pool.deadline()));
    let mut third = pin!(pool.acquire_slot_async(pool.deadline()));
    assert!(poll_once(first.as_mut()).is_pending());
    assert!(poll_once(second.as_mut()).is_pending());
    assert!(poll_once(third.as_mut()).is_pending());
    assert_eq!(pool.stats().waiting, 3);

    drop(lease);
    // Polled last-come first, the later waiters still wait.
    assert!(poll_once(third.as_mut()).is_pending());
    assert!(poll_once(second.as_mut()).is_pending());
    let slot = expect_ready(poll_once(first.as_mut())).unwrap();

    drop(slot);
    assert!(poll_once(third.as_mut()).is_pending());
    let slot = expect_ready(poll_once(second.as_mut())).unwrap();

    drop(slot);
    let _slot = expect_ready(poll_once(third.as_mut())).unwrap();
    assert_eq!(pool.stats().waiting, 0);
}

#[test]
fn a_blocked_thread_is_served_before_a_newcomer() {
    let (pool, _clock) = manual_pool(1);
    let lease = checkout(&pool).unwrap();
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| checkout(&pool));
        spin_until(|| pool.stats().waiting == 1);
        drop(lease);
        // Whether or not the waiter has run yet, the newcomer finds nothing free.
        let refused = pool
            .acquire_slot_blocking(pool.shared.clock.now())
            .map(|_| ())
            .unwrap_err();
        assert_eq!(refused.phase(), Phase::CheckoutTimeout);
        let served = waiter.join().unwrap().unwrap();
        assert_eq!(served.conn_ref().id, 1);
    });
    assert_eq!(pool.stats().waiting, 0);
    assert_eq!(pool.stats().checkout_timeouts, 1);
}

#[test]
fn an_async_waiter_times_out_at_its_deadline_on_the_clock_and_leaves_the_queue() {
    let (pool, clock) = manual_pool(1);
    let rt = runtime();
    let _in_runtime = rt.enter();
    let lease = checkout(&pool).unwrap();
    let mut waiter = pin!(pool.acquire_slot_async(pool.deadline()));
    assert!(poll_once(waiter.as_mut()).is_pending());

    clock.advance(TIMEOUT - Duration::from_millis(1));
    pool.shared.wake_all();
    assert!(
        poll_once(waiter.as_mut()).is_pending(),
        "1 ms before the deadline it still waits"
    );
    assert_eq!(pool.stats().waiting, 1);

    clock.advance(Duration::from_millis(1));
    pool.shared.wake_all();
    let error = expect_ready(poll_once(waiter.as_mut()))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(error.phase(), Phase::CheckoutTimeout);
    let stats = pool.stats();
    assert_eq!((stats.waiting, stats.checkout_timeouts), (0, 1));

    // No ghost in the queue: the connection goes to the next caller at once.
    drop(lease);
    assert!(pool.acquire_slot_blocking(pool.shared.clock.now()).is_ok());
}

#[test]
fn a_blocked_thread_times_out_at_its_deadline_on_the_clock() {
    let (pool, clock) = manual_pool(1);
    let lease = checkout(&pool).unwrap();
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| checkout(&pool).map(|_| ()));
        spin_until(|| pool.stats().waiting == 1);
        clock.advance(TIMEOUT);
        pool.shared.wake_all();
        let error = waiter.join().unwrap().unwrap_err();
        assert_eq!(error.phase(), Phase::CheckoutTimeout);
    });
    let stats = pool.stats();
    assert_eq!(
        (stats.waiting, stats.checkout_timeouts, stats.in_use),
        (0, 1, 1)
    );
    drop(lease);
}

#[test]
fn only_connections_idle_past_the_window_are_pinged() {
    let (pool, clock) = manual_pool(1);
    drop(checkout(&pool).unwrap());
    clock.advance(WINDOW - Duration::from_millis(1));
    drop(checkout(&pool).unwrap());
    assert_eq!(driver(&pool).pings.load(Ordering::SeqCst), 0);
    assert_eq!(pool.stats().validations, 0);

    // Idle time counts from the last check-in, not from the connect.
    clock.advance(WINDOW - Duration::from_millis(1));
    drop(checkout(&pool).unwrap());
    assert_eq!(driver(&pool).pings.load(Ordering::SeqCst), 0);

    clock.advance(WINDOW);
    let lease = checkout(&pool).unwrap();
    assert_eq!(lease.conn_ref().id, 1, "a live connection is kept");
    assert_eq!(driver(&pool).pings.load(Ordering::SeqCst), 1);
    assert_eq!(pool.stats().validations, 1);
    assert_eq!(pool.stats().validation_failures, 0);
}

#[test]
fn a_connection_that_fails_validation_is_replaced() {
    let (pool, clock) = manual_pool(1);
    drop(checkout(&pool).unwrap());
    driver(&pool).dead.store(true, Ordering::SeqCst);
    clock.advance(WINDOW);
    let lease = checkout(&pool).unwrap();
    assert_eq!(lease.conn_ref().id, 2);
    let stats = pool.stats();
    assert_eq!(
        (
            stats.validations,
            stats.validation_failures,
            stats.connections_created,
            stats.connections_closed,
            stats.open
        ),
        (1, 1, 2, 1, 1)
    );
    assert_eq!(driver(&pool).connects.load(Ordering::SeqCst), 2);
}

#[test]
fn connections_are_recycled_by_age_at_checkout_and_at_check_in() {
    let (pool, clock) = manual_pool(1);
    drop(checkout(&pool).unwrap());
    clock.advance(LIFETIME - Duration::from_secs(1));
    let lease = checkout(&pool).unwrap();
    assert_eq!(
        lease.conn_ref().id,
        1,
        "not yet too old (validated: idle past the window)"
    );
    drop(lease);
    let pings = driver(&pool).pings.load(Ordering::SeqCst);

    clock.advance(Duration::from_secs(1));
    let lease = checkout(&pool).unwrap();
    assert_eq!(lease.conn_ref().id, 2, "too old: replaced");
    assert_eq!(
        driver(&pool).pings.load(Ordering::SeqCst),
        pings,
        "a recycled connection is not pinged"
    );
    assert_eq!(pool.stats().recycled, 1);

    // Held past its lifetime: closed when it comes back.
    clock.advance(LIFETIME);
    drop(lease);
    let stats = pool.stats();
    assert_eq!(
        (
            stats.recycled,
            stats.open,
            stats.idle,
            stats.connections_closed
        ),
        (2, 0, 0, 2)
    );
}

#[test]
fn idle_timeout_closes_idle_connections_down_to_min_idle() {
    let clock = ManualClock::new();
    let pool = pool_with(3, Clock::Manual(Arc::clone(&clock)), |config| {
        config.min_idle = 1
    });
    let leases: Vec<_> = (0..3).map(|_| checkout(&pool).unwrap()).collect();
    drop(leases);
    assert_eq!(pool.stats().idle, 3);

    clock.advance(IDLE_TIMEOUT - Duration::from_secs(1));
    pool.maintain();
    assert_eq!(pool.stats().idle, 3);

    clock.advance(Duration::from_secs(1));
    pool.maintain();
    let stats = pool.stats();
    assert_eq!(
        (
            stats.idle,
            stats.open,
            stats.connections_closed,
            stats.recycled
        ),
        (1, 1, 2, 0)
    );

    // min_idle is topped up: the last idle one leaves dirty, maintenance opens one.
    let mut lease = checkout(&pool).unwrap();
    lease.conn().depth = 1;
    drop(lease);
    assert_eq!(pool.stats().idle, 0);
    pool.maintain();
    let stats = pool.stats();
    assert_eq!((stats.idle, stats.open), (1, 1));
    assert_eq!(driver(&pool).connects.load(Ordering::SeqCst), 4);
}

#[test]
fn a_dirty_check_in_closes_the_connection_and_frees_its_slot() {
    let (pool, _clock) = manual_pool(1);
    let rt = runtime();
    let _in_runtime = rt.enter();
    let mut lease = checkout(&pool).unwrap();
    let mut waiter = pin!(pool.acquire_slot_async(pool.deadline()));
    assert!(poll_once(waiter.as_mut()).is_pending());

    lease.conn().depth = 1; // a transaction left open
    drop(lease);
    let stats = pool.stats();
    assert_eq!(
        (
            stats.closed_dirty,
            stats.connections_closed,
            stats.open,
            stats.idle,
            stats.in_use
        ),
        (1, 1, 0, 0, 0)
    );

    // The freed slot goes to the waiter, who opens a new connection.
    let slot = expect_ready(poll_once(waiter.as_mut())).unwrap();
    assert_eq!(slot.realize().unwrap().conn_ref().id, 2);
}

#[test]
fn a_clean_check_in_keeps_the_connection_and_a_discarded_one_is_closed_quietly() {
    let (pool, _clock) = manual_pool(1);
    drop(checkout(&pool).unwrap());
    assert_eq!((pool.stats().idle, pool.stats().connections_closed), (1, 0));
    let mut lease = checkout(&pool).unwrap();
    lease.discard();
    drop(lease);
    let stats = pool.stats();
    assert_eq!(
        (
            stats.idle,
            stats.open,
            stats.connections_closed,
            stats.closed_dirty
        ),
        (0, 0, 1, 0)
    );
}

#[test]
fn a_failed_connect_frees_the_slot_for_the_next_waiter() {
    let (pool, _clock) = manual_pool(1);
    let rt = runtime();
    let _in_runtime = rt.enter();
    driver(&pool).refuse.store(true, Ordering::SeqCst);
    let slot = pool.acquire_slot_blocking(pool.deadline()).unwrap();
    assert_eq!(pool.stats().open, 1);
    let mut waiter = pin!(pool.acquire_slot_async(pool.deadline()));
    assert!(poll_once(waiter.as_mut()).is_pending());

    let error = slot.realize().map(|_| ()).unwrap_err();
    assert_eq!(error.phase(), Phase::Connect);
    assert_eq!(pool.stats().open, 0);

    driver(&pool).refuse.store(false, Ordering::SeqCst);
    let slot = expect_ready(poll_once(waiter.as_mut())).unwrap();
    assert_eq!(slot.realize().unwrap().conn_ref().id, 1);
}

#[test]
fn a_cancelled_waiter_holds_nothing() {
    let (pool, _clock) = manual_pool(1);
    let rt = runtime();
    let _in_runtime = rt.enter();
    let lease = checkout(&pool).unwrap();
    {
        let mut waiter = pin!(pool.acquire_slot_async(pool.deadline()));
        assert!(poll_once(waiter.as_mut()).is_pending());
        assert_eq!(pool.stats().waiting, 1);
    }
    assert_eq!(pool.stats().waiting, 0);
    drop(lease);
    // Nobody is counted ahead of a newcomer.
    let slot: Slot<FakeConn, Fake> = pool.acquire_slot_blocking(pool.shared.clock.now()).unwrap();
    drop(slot);
    assert_eq!((pool.stats().open, pool.stats().idle), (1, 1));
}

#[test]
fn fill_opens_up_to_the_count_and_stops_at_max_size() {
    let (pool, _clock) = manual_pool(2);
    pool.fill(5).unwrap();
    assert_eq!((pool.stats().idle, pool.stats().open), (2, 2));
    let (pool, _clock) = manual_pool(2);
    driver(&pool).refuse.store(true, Ordering::SeqCst);
    assert_eq!(pool.fill(1).unwrap_err().phase(), Phase::Connect);
    assert_eq!(pool.stats().open, 0);
}

#[cfg(feature = "async")]
mod native {
    use super::*;

    /// Runs `test` on a current-thread runtime on tokio's paused clock: when
    /// every task waits, time jumps to the next timer, so a 5 s timeout takes
    /// no time. A checkout that is not bounded fails after an hour of that
    /// clock instead of hanging.
    fn on_paused_clock(test: impl Future<Output = ()>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(3600), test)
                .await
                .expect("the checkout was not bounded by its deadline");
        });
    }

    #[test]
    fn a_connect_that_never_answers_ends_at_the_checkout_deadline() {
        on_paused_clock(async {
            let pool = pool_with(1, Clock::Tokio, |_| {});
            driver(&pool).hang.store(true, Ordering::SeqCst);
            let started = tokio::time::Instant::now();
            let error = pool.checkout_async().await.map(|_| ()).unwrap_err();
            assert_eq!(error.phase(), Phase::CheckoutTimeout);
            assert_eq!(started.elapsed(), TIMEOUT);
            let stats = pool.stats();
            assert_eq!((stats.open, stats.checkout_timeouts), (0, 1));
            driver(&pool).hang.store(false, Ordering::SeqCst);
            assert_eq!(pool.checkout_async().await.unwrap().conn_ref().id, 1);
        });
    }

    #[test]
    fn a_ping_that_never_answers_ends_at_the_deadline_and_closes_the_connection() {
        on_paused_clock(async {
            let pool = pool_with(1, Clock::Tokio, |_| {});
            drop(pool.checkout_async().await.unwrap());
            tokio::time::advance(WINDOW).await;
            driver(&pool).hang.store(true, Ordering::SeqCst);
            let error = pool.checkout_async().await.map(|_| ()).unwrap_err();
            assert_eq!(error.phase(), Phase::CheckoutTimeout);
            let stats = pool.stats();
            assert_eq!(
                (
                    stats.open,
                    stats.idle,
                    stats.connections_closed,
                    stats.validations
                ),
                (0, 0, 1, 1)
            );
        });
    }

    #[test]
    fn the_wait_and_the_connect_share_one_deadline() {
        on_paused_clock(async {
            let pool = pool_with(1, Clock::Tokio, |_| {});
            let lease = pool.checkout_async().await.unwrap();
            let held = tokio::spawn({
                let pool = pool.clone();
                async move {
                    // Gives the connection back 3 s in, broken: a new one must be opened.
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    let mut lease = lease;
                    lease.conn().depth = 1;
                    driver(&pool).hang.store(true, Ordering::SeqCst);
                }
            });
            let started = tokio::time::Instant::now();
            let error = pool.checkout_async().await.map(|_| ()).unwrap_err();
            held.await.unwrap();
            assert_eq!(error.phase(), Phase::CheckoutTimeout);
            assert_eq!(
                started.elapsed(),
                TIMEOUT,
                "3 s waiting + 2 s connecting, not 3 + 5"
            );
            assert_eq!(pool.stats().open, 0);
        });
    }

    #[test]
    fn a_checkout_dropped_while_connecting_gives_the_slot_back() {
        let (pool, _clock) = manual_pool(1);
        let rt = runtime();
        let _in_runtime = rt.enter();
        driver(&pool).hang.store(true, Ordering::SeqCst);
        {
            let mut checkout = pin!(pool.checkout_async());
            assert!(poll_once(checkout.as_mut()).is_pending());
            assert_eq!(pool.stats().open, 1);
        }
        assert_eq!(pool.stats().open, 0);
    }

    #[test]
    fn async_maintenance_follows_the_same_rules() {
        let clock = ManualClock::new();
        let pool = pool_with(2, Clock::Manual(Arc::clone(&clock)), |config| {
            config.min_idle = 1
        });
        let rt = runtime();
        rt.block_on(async {
            pool.maintain_async().await;
            assert_eq!(pool.stats().idle, 1, "min_idle opened");
            let (a, b) = (
                pool.checkout_async().await.unwrap(),
                pool.checkout_async().await.unwrap(),
            );
            drop((a, b));
            clock.advance(IDLE_TIMEOUT);
            pool.maintain_async().await;
            let stats = pool.stats();
            assert_eq!(
                (stats.idle, stats.open, stats.connections_closed),
                (1, 1, 1)
            );
        });
    }
}
