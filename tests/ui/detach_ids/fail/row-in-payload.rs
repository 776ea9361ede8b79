//! `#[derive(Detached)]` checks every field of a job payload as
//! `#[detach_ids]` checks parameters, with the error on the field: a row, a
//! session, a connection (also inside containers and enum variants).
use dbscope::{Detached, Id, Session};
use diesel::prelude::*;

diesel::table! { apps (id) { id -> Integer, name -> Text } }

#[derive(Queryable, Identifiable)]
pub struct App {
    pub id: i32,
    pub name: String,
}

#[derive(Detached)]
pub struct SummariseJob {
    pub app: App,
    pub others: Vec<App>,
    pub owner: Id<App>,
}

#[derive(Detached)]
pub enum Message {
    Created { id: Id<App> },
    Held(Option<Box<Session<SqliteConnection>>>),
    Raw(SqliteConnection),
}

fn main() {}
