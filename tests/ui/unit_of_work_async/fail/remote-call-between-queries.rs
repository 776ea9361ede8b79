//! A remote (model) call awaited between two queries: one error, on its
//! `.await`; the queries' awaits are fine.
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use dbscope::{unit_of_work, AsyncSessionFactory, Error};

async fn call_model(prompt: &str) -> String {
    prompt.to_owned()
}

#[unit_of_work(factory = db)]
async fn answer(db: &AsyncSessionFactory<AsyncPgConnection>, conn: &mut AsyncPgConnection, prompt: &str) -> Result<String, Error> {
    conn.batch_execute("SELECT 1").await?;
    let answer = call_model(prompt).await;
    conn.batch_execute("SELECT 2").await?;
    Ok(answer)
}

fn main() {}
