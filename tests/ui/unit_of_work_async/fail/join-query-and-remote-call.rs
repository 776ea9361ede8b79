//! `tokio::join!` of a query and a remote call: the remote call is reported;
//! `select!` cannot be session work and is rejected; so is a future-returning
//! call like `futures::future::join` with a foreign future.
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use dbscope::{unit_of_work, AsyncSessionFactory, Error};

async fn fetch(url: &str) -> usize {
    url.len()
}

#[unit_of_work(factory = db)]
async fn joined(db: &AsyncSessionFactory<AsyncPgConnection>, conn: &mut AsyncPgConnection) -> Result<usize, Error> {
    let (done, fetched) = tokio::join!(conn.batch_execute("SELECT 1"), fetch("http://example.invalid"));
    done?;
    tokio::select! {
        _ = conn.batch_execute("SELECT 2") => {}
        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
    }
    Ok(fetched)
}

fn main() {}
