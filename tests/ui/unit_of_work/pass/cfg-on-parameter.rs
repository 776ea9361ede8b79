//! `#[cfg]` on parameters is kept: a parameter configured away is not part of
//! the generated signature either.

use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db)]
pub fn label(
    db: &SessionFactory<SqliteConnection>,
    conn: &mut SqliteConnection,
    #[cfg(all())] kept: u8,
    #[cfg(any())] dropped: u8,
) -> Result<u8, Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    #[cfg(any())]
    let _ = dropped;
    Ok(kept)
}

fn main() -> Result<(), Error> {
    let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
    assert_eq!(label(&factory, 3)?, 3);
    Ok(())
}
