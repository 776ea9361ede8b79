//! A blocking session is not `Send`: a spawned task that holds one across an
//! `.await`, or a thread it is moved to, fails to compile with an error that
//! names the session and what to do. Ended in a block first, it compiles.
use dbscope::{Error, SessionFactory};
use diesel::prelude::*;

async fn notify() {}

fn held(db: SessionFactory<SqliteConnection>) {
    tokio::spawn(async move {
        let mut session = db.session()?;
        diesel::sql_query("SELECT 1").execute(&mut *session)?;
        notify().await;
        session.commit()
    });
}

fn moved_to_thread(db: &SessionFactory<SqliteConnection>) -> Result<(), Error> {
    let session = db.session()?;
    std::thread::spawn(move || drop(session));
    Ok(())
}

fn ended_in_a_block(db: SessionFactory<SqliteConnection>) {
    tokio::spawn(async move {
        {
            let mut session = db.session()?;
            diesel::sql_query("SELECT 1").execute(&mut *session)?;
            session.commit()?;
        }
        notify().await;
        Ok::<_, Error>(())
    });
}

fn main() {}
