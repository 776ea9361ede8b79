//! The attribute goes on functions.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db)]
struct Users {
    conn: SqliteConnection,
}

#[derive(Debug)]
struct Db;

#[unit_of_work(factory = db)]
impl Db {
    fn run(&self, factory: &SessionFactory<SqliteConnection>) -> Result<(), Error> {
        let _ = factory;
        Ok(())
    }
}

fn main() {}
