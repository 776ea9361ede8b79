//! Generic type parameters, lifetimes, `impl Trait` and `where` clauses are
//! accepted: an unbounded `T` is not known to be a row or a connection.
use std::fmt::Display;

use dbscope::detach_ids;

#[detach_ids]
fn generic<'a, T: Clone + Send, const N: usize>(items: &'a [T; N], label: impl Display + 'a) -> Vec<T>
where
    T: 'static,
{
    let _ = label.to_string();
    items.to_vec()
}

pub struct Worker<Q> {
    queue: Q,
}

impl<Q: Clone> Worker<Q> {
    #[detach_ids]
    fn queue(&self, extra: Option<Q>) -> Q {
        extra.unwrap_or_else(|| self.queue.clone())
    }

    #[detach_ids]
    async fn queue_later(self: Box<Self>) -> Q {
        self.queue
    }
}

fn main() {
    assert_eq!(generic(&[1, 2], "x"), vec![1, 2]);
    let worker = Worker { queue: 5u8 };
    assert_eq!(worker.queue(None), 5);
}
