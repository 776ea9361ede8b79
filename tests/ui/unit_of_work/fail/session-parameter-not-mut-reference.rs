//! A parameter marked `#[session]` receives the open session by `&mut`.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db)]
fn by_value(db: &SessionFactory<SqliteConnection>, #[session] conn: SqliteConnection) -> Result<(), Error> {
    let _ = conn;
    Ok(())
}

struct Repo {
    db: SessionFactory<SqliteConnection>,
}

impl Repo {
    #[unit_of_work(factory = self.db)]
    fn receiver(#[session] &mut self) -> Result<(), Error> {
        Ok(())
    }
}

fn main() {}
