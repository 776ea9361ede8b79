//! A closure parameter passes once marked `#[allow_attached]` (its captures
//! were checked by hand); function pointers carry nothing.
use dbscope::detach_ids;

#[detach_ids]
fn run(#[allow_attached(reason = "captures only ids")] job: Box<dyn FnOnce() -> u32 + Send>, f: fn(u32) -> u32) -> u32 {
    f(job())
}

fn main() {
    let id = 4;
    assert_eq!(run(Box::new(move || id), |x| x + 1), 5);
}
