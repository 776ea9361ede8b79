//! Unknown options name the valid ones; `allow` points at `#[allow_attached]`.
use dbscope::detach_ids;

#[detach_ids(factory = db, retry = 3)]
fn one(db: &dbscope::SessionFactory<diesel::SqliteConnection>) {}

#[detach_ids(allow)]
fn two(id: i32) {}

fn main() {}
