//! `#[load]` needs a plain parameter name: callers pass the id under it.
use dbscope::{detach_ids, Error, SessionFactory};
use diesel::prelude::*;

diesel::table! { apps (id) { id -> Integer, name -> Text } }

#[derive(Queryable, Identifiable)]
pub struct App {
    pub id: i32,
    pub name: String,
}

#[detach_ids(factory = db)]
fn summarise(db: &SessionFactory<SqliteConnection>, #[load] App { name, .. }: App) -> Result<String, Error> {
    Ok(name)
}

fn main() {}
