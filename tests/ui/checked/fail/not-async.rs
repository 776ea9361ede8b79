//! `#[checked]` checks `.await`s, so it goes on an `async fn`; it takes no
//! options.
use dbscope::checked;

#[checked]
fn plain() {}

#[checked(strict)]
async fn with_option() {}

#[checked]
struct NotAFunction;

fn main() {}
