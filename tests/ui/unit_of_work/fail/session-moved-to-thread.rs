//! A `Session` is not `Send`: it stays on the thread that opened it.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

fn leak(factory: &SessionFactory<SqliteConnection>) -> Result<(), Error> {
    let mut session = factory.session()?;
    std::thread::spawn(move || {
        let _ = diesel::sql_query("SELECT 1").execute(&mut *session);
        session.commit()
    });
    Ok(())
}

fn _unused() {
    let _ = unit_of_work_is_not_needed_here;
}

#[unit_of_work(factory = db)]
fn unit_of_work_is_not_needed_here(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

fn main() {}
