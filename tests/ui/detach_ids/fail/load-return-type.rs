//! With `#[load]` the row may be gone: the function must return `Result<T, E>`.
use dbscope::{detach_ids, SessionFactory};
use diesel::prelude::*;

diesel::table! { apps (id) { id -> Integer, name -> Text } }

#[derive(Queryable, Identifiable)]
pub struct App {
    pub id: i32,
    pub name: String,
}

#[detach_ids(factory = db)]
fn no_return_type(db: &SessionFactory<SqliteConnection>, #[load] app: App) {}

#[detach_ids(factory = db)]
fn not_a_result(db: &SessionFactory<SqliteConnection>, #[load] app: App) -> String {
    app.name
}

fn main() {}
