//! `#[load]` needs `factory = ..` to know where to load the row from.
use dbscope::{detach_ids, Error};
use diesel::prelude::*;

diesel::table! { apps (id) { id -> Integer, name -> Text } }

#[derive(Queryable, Identifiable)]
pub struct App {
    pub id: i32,
    pub name: String,
}

#[detach_ids]
fn summarise(#[load] app: App) -> Result<String, Error> {
    Ok(app.name)
}

fn main() {}
