//! Each option is given once.
use dbscope::{detach_ids, SessionFactory};
use diesel::SqliteConnection;

#[detach_ids(factory = db, factory = other)]
fn twice(db: &SessionFactory<SqliteConnection>, other: &SessionFactory<SqliteConnection>) {}

#[detach_ids(factory)]
fn without_value(db: &SessionFactory<SqliteConnection>) {}

fn main() {}
