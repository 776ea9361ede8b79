//! A repository whose operations are units of work and also compose: the
//! `joinable` unit's `name_in` twin runs inside the caller's transaction, on
//! the connection the caller passes.

use dbscope::{unit_of_work, Error, SessionFactory, SessionSource};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

pub struct Orders<F> {
    db: F,
}

impl<F: SessionSource<Connection = SqliteConnection>> Orders<F> {
    #[unit_of_work(factory = self.db)]
    pub fn create_schema(&self, conn: &mut SqliteConnection) -> Result<(), Error> {
        conn.batch_execute("CREATE TABLE lines (order_id INTEGER, item TEXT NOT NULL)")?;
        Ok(())
    }

    /// A unit on its own, and (`add_line_in`) a step of a bigger one.
    #[unit_of_work(factory = self.db, joinable)]
    pub fn add_line(&self, conn: &mut SqliteConnection, order: i64, item: &str) -> Result<(), Error> {
        diesel::sql_query("INSERT INTO lines (order_id, item) VALUES (?, ?)")
            .bind::<diesel::sql_types::BigInt, _>(order)
            .bind::<diesel::sql_types::Text, _>(item)
            .execute(conn)?;
        Ok(())
    }

    /// One transaction for every line.
    #[unit_of_work(factory = self.db)]
    pub fn place(&self, conn: &mut SqliteConnection, order: i64, items: &[&str]) -> Result<(), Error> {
        for item in items {
            self.add_line_in(conn, order, item)?;
        }
        Ok(())
    }
}

fn main() -> Result<(), Error> {
    let orders = Orders { db: SessionFactory::<SqliteConnection>::new(":memory:")? };
    orders.create_schema()?;
    orders.add_line(1, "tea")?;
    orders.place(2, &["milk", "bread"])?;
    Ok(())
}
