//! A session (a connection inside an open transaction) cannot cross a boundary.
use dbscope::{detach_ids, Session};
use diesel::prelude::*;

#[detach_ids]
fn report(session: &mut Session<SqliteConnection>, id: i32) {}

fn main() {}
