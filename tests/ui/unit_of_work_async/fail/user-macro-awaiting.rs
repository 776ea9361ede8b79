//! What a user macro expands to cannot be seen: an `.await` of other work
//! inside it would hold the connection, so a macro not known to be free of
//! awaits is rejected (formatting, assertions and logging are known).
use diesel::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::SimpleAsyncConnection;
use dbscope::{unit_of_work, AsyncSessionFactory, Error};

type Conn = SyncConnectionWrapper<SqliteConnection>;
type Db = AsyncSessionFactory<Conn>;

async fn llm(prompt: &str) -> String {
    prompt.to_owned()
}

macro_rules! ask_llm {
    ($prompt:expr) => {
        llm($prompt).await
    };
}

#[unit_of_work(factory = db)]
async fn annotate(db: &Db, conn: &mut SyncConnectionWrapper<SqliteConnection>) -> Result<String, Error> {
    conn.batch_execute("SELECT 1").await?;
    let answer = ask_llm!("why");
    println!("{answer}");
    Ok(answer)
}

/// Before or after the unit, the macro is fine.
async fn before_the_unit(conn: &mut Conn) -> Result<String, Error> {
    let answer = ask_llm!("why");
    conn.batch_execute("SELECT 1").await?;
    Ok(answer)
}

fn main() {
    let _ = before_the_unit;
}
