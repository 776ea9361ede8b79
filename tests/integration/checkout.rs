//! Checkout is bounded by the timeout, hands returned connections to waiters,
//! and the pool recycles old and idle connections.

use std::time::{Duration, Instant};

use dbscope::{Error, Phase, UnitOptions};

use crate::support::{wait_until, Backend, Ctx};

const UNIT: UnitOptions = UnitOptions::new("it::checkout");

crate::all_backends!([
    checkout_times_out_when_pool_is_exhausted,
    waiting_checkout_gets_returned_connection_promptly,
    waiter_served_before_returning_thread,
    max_lifetime_recycles_connections,
    idle_timeout_closes_idle_connections,
]);

fn checkout_times_out_when_pool_is_exhausted<B: Backend>(ctx: &Ctx<B>) {
    let timeout = Duration::from_millis(300);
    let factory = ctx
        .builder()
        .max_size(2)
        .checkout_timeout(timeout)
        .build()
        .expect("factory");
    let first = crate::support::hold(&factory);
    let second = crate::support::hold(&factory);

    let started = Instant::now();
    let error = factory
        .session()
        .expect_err("a third checkout must time out");
    let waited = started.elapsed();
    assert_eq!(error.phase(), Phase::CheckoutTimeout, "{error}");
    assert!(error.is_checkout_timeout());
    // Not transient: it already waited its full bound, retrying would double it.
    assert!(!error.is_transient());
    assert!(waited >= timeout, "gave up early, after {waited:?}");
    // Bound check, not a performance assertion: it did not hang.
    assert!(
        waited < Duration::from_secs(3),
        "checkout hung for {waited:?}"
    );

    // A unit of work reports the same.
    let started = Instant::now();
    let error = factory
        .run(&UNIT, |_| Ok::<_, Error>(()))
        .expect_err("unit must time out");
    assert!(error.is_checkout_timeout(), "{error}");
    assert!(started.elapsed() >= timeout && started.elapsed() < Duration::from_secs(3));
    let stats = factory.stats();
    assert_eq!((stats.in_use, stats.checkout_timeouts), (2, 2), "{stats:?}");

    // As soon as a session is returned, checkout works again.
    drop(first);
    factory
        .session()
        .expect("checkout after a return")
        .commit()
        .expect("commit");
    second.commit().expect("commit");
    assert_eq!(factory.stats().in_use, 0);
}

fn waiting_checkout_gets_returned_connection_promptly<B: Backend>(ctx: &Ctx<B>) {
    let timeout = Duration::from_secs(10);
    let factory = ctx
        .builder()
        .max_size(2)
        .checkout_timeout(timeout)
        .build()
        .expect("factory");
    let first = crate::support::hold(&factory);
    let second = crate::support::hold(&factory);

    let waiter = {
        let factory = factory.clone();
        let insert = ctx.insert_sql(1, 10);
        std::thread::spawn(move || {
            factory.run(&UNIT, |s| {
                diesel::connection::SimpleConnection::batch_execute(&mut **s, &insert)?;
                Ok::<_, Error>(Instant::now())
            })
        })
    };
    assert!(
        wait_until(Duration::from_secs(5), || factory.stats().waiting == 1),
        "the thread never started waiting: {:?}",
        factory.stats()
    );
    let released = Instant::now();
    drop(first);
    let got = waiter
        .join()
        .expect("waiter thread")
        .expect("waiter's unit");
    let after_release = got.duration_since(released);
    // Bound check: it was handed the connection, not left to its 10 s timeout.
    assert!(
        after_release < Duration::from_secs(3),
        "waiter got the connection {after_release:?} after release"
    );
    assert!(ctx.has_row(1));
    second.rollback().expect("rollback");
    let stats = factory.stats();
    assert_eq!(
        (stats.in_use, stats.waiting, stats.checkout_timeouts),
        (0, 0, 0),
        "{stats:?}"
    );
}

/// A thread that gives its connection back and asks again at once queues
/// behind the thread that was already waiting, instead of taking the
/// connection back (with a pool of one it could otherwise starve the waiter
/// until its checkout timeout).
fn waiter_served_before_returning_thread<B: Backend>(ctx: &Ctx<B>) {
    let factory = ctx
        .builder()
        .max_size(1)
        .checkout_timeout(Duration::from_secs(10))
        .build()
        .expect("factory");
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let held = factory.checkout().expect("first checkout");
    let waiter = {
        let (factory, order) = (factory.clone(), std::sync::Arc::clone(&order));
        std::thread::spawn(move || {
            let conn = factory.checkout().expect("the waiter's checkout");
            order.lock().expect("order").push("waiter");
            drop(conn);
        })
    };
    assert!(
        wait_until(Duration::from_secs(5), || factory.stats().waiting == 1),
        "the thread never started waiting: {:?}",
        factory.stats()
    );
    drop(held);
    let again = factory.checkout().expect("the returning thread's checkout");
    order.lock().expect("order").push("returning thread");
    drop(again);
    waiter.join().expect("waiter thread");
    assert_eq!(
        *order.lock().expect("order"),
        ["waiter", "returning thread"]
    );
    let stats = factory.stats();
    assert_eq!(
        (stats.waiting, stats.checkout_timeouts),
        (0, 0),
        "{stats:?}"
    );
}

fn max_lifetime_recycles_connections<B: Backend>(ctx: &Ctx<B>) {
    let lifetime = Duration::from_millis(200);
    let factory = ctx
        .builder()
        .max_size(1)
        .max_lifetime(Some(lifetime))
        .idle_timeout(None)
        .build()
        .expect("factory");
    let id = |factory: &dbscope::SessionFactory<B::Conn>| {
        factory
            .run(&UNIT, |s| Ok::<_, Error>(B::connection_id(s)))
            .expect("unit")
    };
    let first = id(&factory);
    assert_eq!(id(&factory), first, "a young connection is reused");
    std::thread::sleep(lifetime + Duration::from_millis(200));
    let second = id(&factory);
    assert_ne!(first, second, "a connection past max_lifetime was reused");
    let stats = factory.stats();
    assert!(stats.recycled >= 1, "recycling must be counted: {stats:?}");
    assert_eq!(stats.in_use, 0);
}

fn idle_timeout_closes_idle_connections<B: Backend>(ctx: &Ctx<B>) {
    let factory = ctx
        .builder()
        .max_size(3)
        .min_idle(1)
        .idle_timeout(Some(Duration::from_millis(200)))
        .max_lifetime(None)
        .build()
        .expect("factory");
    {
        let sessions: Vec<_> = (0..3).map(|_| crate::support::hold(&factory)).collect();
        assert_eq!(factory.stats().open, 3);
        for session in sessions {
            session.commit().expect("commit");
        }
    }
    let stats = factory.stats();
    assert_eq!((stats.open, stats.idle), (3, 3), "{stats:?}");
    let closed_before = stats.connections_closed;
    assert!(
        wait_until(Duration::from_secs(5), || factory.stats().open == 1),
        "idle connections were not closed: {:?}",
        factory.stats()
    );
    // min_idle stays open.
    std::thread::sleep(Duration::from_millis(400));
    let stats = factory.stats();
    assert_eq!((stats.open, stats.idle), (1, 1), "{stats:?}");
    assert!(stats.connections_closed >= closed_before + 2, "{stats:?}");
    factory
        .run(&UNIT, |_| Ok::<_, Error>(()))
        .expect("the pool still works");
}
