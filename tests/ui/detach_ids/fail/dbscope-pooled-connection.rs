//! dbscope's own pooled connection (`factory.checkout()`) cannot cross a boundary either.
use dbscope::{detach_ids, PooledConnection};
use diesel::prelude::*;

#[detach_ids]
fn report(conn: PooledConnection<SqliteConnection>) {}

fn main() {}
