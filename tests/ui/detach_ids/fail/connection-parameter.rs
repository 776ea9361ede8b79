//! A diesel connection, owned, cannot cross a boundary.
use dbscope::detach_ids;
use diesel::prelude::*;

#[detach_ids]
fn report(conn: SqliteConnection, id: i32) {}

fn main() {}
