//! Expansions are warning-free, with and without `#[load]`.
#![deny(warnings)]

use dbscope::{detach_ids, Error, Id, SessionFactory};
use diesel::prelude::*;

diesel::table! { apps (id) { id -> Integer, name -> Text } }

#[derive(Queryable, Identifiable)]
pub struct App {
    pub id: i32,
    pub name: String,
}

#[detach_ids]
pub fn plain(app: Id<App>, names: Vec<String>) -> Option<Id<App>> {
    names.first().map(|_| app)
}

#[detach_ids(factory = db)]
pub fn loaded(db: &SessionFactory<SqliteConnection>, #[load] mut app: App) -> Result<String, Error> {
    app.name.push('.');
    Ok(app.name)
}

#[detach_ids(factory = db)]
pub async fn loaded_async(db: &SessionFactory<SqliteConnection>, #[load] app: App) -> Result<i32, Error> {
    Ok(app.id)
}

fn main() {}
