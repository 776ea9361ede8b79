//! The forms a session parameter takes: a diesel connection, a `Session`, a
//! generic connection marked `#[session]`, and a pattern.

use dbscope::{unit_of_work, Error, PoolableConnection, Session, SessionFactory};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

#[unit_of_work(factory = db)]
fn with_session(db: &SessionFactory<SqliteConnection>, session: &mut Session<SqliteConnection>) -> Result<(), Error> {
    session.after_commit(|| println!("committed"));
    session.batch_execute("SELECT 1")?;
    Ok(())
}

#[unit_of_work(factory = db)]
fn generic<C: PoolableConnection>(db: &SessionFactory<C>, #[session] conn: &mut C) -> Result<(), Error> {
    conn.batch_execute("SELECT 1")?;
    Ok(())
}

/// Another connection-looking parameter is an ordinary argument once the
/// session is marked.
#[unit_of_work(factory = db)]
fn marked(
    db: &SessionFactory<SqliteConnection>,
    #[session] conn: &mut SqliteConnection,
    other: &mut SqliteConnection,
) -> Result<(), Error> {
    conn.batch_execute("SELECT 1")?;
    other.batch_execute("SELECT 1")?;
    Ok(())
}

#[unit_of_work(factory = db)]
fn ignored(db: &SessionFactory<SqliteConnection>, _: &mut SqliteConnection) -> Result<u8, Error> {
    Ok(1)
}

fn main() -> Result<(), Error> {
    let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
    with_session(&factory)?;
    generic(&factory)?;
    let mut other = SqliteConnection::establish(":memory:").expect("connect");
    marked(&factory, &mut other)?;
    assert_eq!(ignored(&factory)?, 1);
    Ok(())
}
