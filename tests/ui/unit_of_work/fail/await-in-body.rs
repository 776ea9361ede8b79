//! Any `.await` while a blocking session is open is an error, one per `.await`.
//! Nested items are not the body and are not checked.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

async fn call_llm(prompt: &str) -> String {
    prompt.to_owned()
}

#[unit_of_work(factory = db)]
async fn answer(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection, prompt: &str) -> Result<String, Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    let answer = call_llm(prompt).await;
    let again = call_llm(&answer).await.len();

    async fn nested_item_is_not_the_body() -> String {
        call_llm("fine").await
    }

    Ok(format!("{answer}{again}"))
}

fn main() {}
