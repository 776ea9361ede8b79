//! Async closures in the body count too.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

async fn fetch(url: &str) -> usize {
    url.len()
}

#[unit_of_work(factory = db)]
async fn crawl(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection, urls: Vec<String>) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    let lengths: Vec<_> = urls.iter().map(|url| async move { fetch(url).await }).collect();
    drop(lengths);
    Ok(())
}

fn main() {}
