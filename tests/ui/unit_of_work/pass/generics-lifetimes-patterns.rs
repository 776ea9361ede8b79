//! Generics, a `where` clause, lifetimes, `impl Trait` arguments and patterns
//! in parameters keep working; only the session parameter is removed.

use dbscope::{unit_of_work, Error, SessionFactory, SessionSource};
use diesel::prelude::*;

#[unit_of_work(factory = source)]
pub fn longest<'a, S, T>(
    source: &S,
    conn: &mut SqliteConnection,
    first: &'a str,
    second: &'a str,
    tag: T,
) -> Result<(&'a str, T), Error>
where
    S: SessionSource<Connection = SqliteConnection>,
    T: Clone + std::fmt::Debug,
{
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok((if first.len() >= second.len() { first } else { second }, tag))
}

#[unit_of_work(factory = db)]
pub fn sum(
    db: &SessionFactory<SqliteConnection>,
    mut conn: &mut SqliteConnection,
    (a, b): (i64, i64),
    values: impl IntoIterator<Item = i64>,
    _unused: u8,
    mut total: i64,
) -> Result<i64, Error> {
    conn = conn; // `mut` patterns are kept
    diesel::sql_query("SELECT 1").execute(conn)?;
    total += a + b;
    for value in values {
        total += value;
    }
    Ok(total)
}

#[unit_of_work(factory = db)]
pub fn first_word<'s>(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection, text: &'s str) -> Result<&'s str, Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(text.split(' ').next().unwrap_or(text))
}

fn main() -> Result<(), Error> {
    let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
    assert_eq!(longest(&factory, "ab", "abc", 7)?, ("abc", 7));
    assert_eq!(sum(&factory, (1, 2), vec![3, 4], 0, 10)?, 20);
    let text = String::from("hello world");
    assert_eq!(first_word(&factory, &text)?, "hello");
    Ok(())
}
