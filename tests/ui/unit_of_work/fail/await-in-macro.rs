//! Macro arguments are scanned for `.await`; `join!`-like macros await by themselves.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

async fn fetch(n: usize) -> usize {
    n
}

#[unit_of_work(factory = db)]
async fn report(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    println!("{}", fetch(1).await);
    let (a, b) = tokio::join!(fetch(2), fetch(3));
    assert_eq!(a + b, 5);
    Ok(())
}

fn main() {}
