//! A detached function cannot return a row either: return its id.
use dbscope::{detach_ids, Error};
use diesel::prelude::*;

diesel::table! { apps (id) { id -> Integer, name -> Text } }

#[derive(Queryable, Identifiable)]
pub struct App {
    pub id: i32,
    pub name: String,
}

#[detach_ids]
fn newest(name: String) -> Result<App, Error> {
    todo!()
}

#[detach_ids]
async fn all(names: Vec<String>) -> Vec<App> {
    todo!()
}

fn main() {}
