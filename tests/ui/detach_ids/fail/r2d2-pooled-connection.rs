//! An r2d2 pooled connection stays checked out for as long as it is held.
use dbscope::detach_ids;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, PooledConnection};

#[detach_ids]
fn report(conn: PooledConnection<ConnectionManager<PgConnection>>) {}

fn main() {}
