//! `#[detach_ids]` goes on functions.
use dbscope::detach_ids;

#[detach_ids]
struct Job {
    id: i32,
}

fn main() {}
