//! A declaration without a body has nothing to run.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

trait Users {
    #[unit_of_work(factory = self.db)]
    fn create(&self, conn: &mut SqliteConnection) -> Result<(), Error>;
}

fn _use(_: &SessionFactory<SqliteConnection>) {}

fn main() {}
