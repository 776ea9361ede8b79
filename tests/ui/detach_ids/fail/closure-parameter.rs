//! A closure can carry a session, a connection or a row that the probes
//! cannot see (its captures hide behind its type): boxed, `impl Fn`, or a
//! generic bounded by `FnOnce`.
use dbscope::detach_ids;

#[detach_ids]
fn boxed(job: Box<dyn FnOnce() + Send>) {
    job()
}

#[detach_ids]
fn opaque(job: impl Fn() -> u32) -> u32 {
    job()
}

#[detach_ids]
fn generic<F>(job: F)
where
    F: FnOnce() + Send + 'static,
{
    job()
}

fn main() {}
