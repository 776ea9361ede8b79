//! `#[load]` takes a row by value, once, with at most `key = Type`; `self` cannot be loaded.
use dbscope::{detach_ids, Error, SessionFactory};
use diesel::prelude::*;

diesel::table! { apps (id) { id -> Integer, name -> Text } }

#[derive(Queryable, Identifiable)]
pub struct App {
    pub id: i32,
    pub name: String,
}

#[detach_ids(factory = db)]
fn by_reference(db: &SessionFactory<SqliteConnection>, #[load] app: &App) -> Result<(), Error> {
    Ok(())
}

#[detach_ids(factory = db)]
fn many(db: &SessionFactory<SqliteConnection>, #[load] apps: Vec<App>) -> Result<(), Error> {
    Ok(())
}

#[detach_ids(factory = db)]
fn unknown_option(db: &SessionFactory<SqliteConnection>, #[load(table = apps)] app: App) -> Result<(), Error> {
    Ok(())
}

#[detach_ids(factory = db)]
fn twice(db: &SessionFactory<SqliteConnection>, #[load] #[load] app: App) -> Result<(), Error> {
    Ok(())
}

#[detach_ids(factory = db)]
fn allowed_and_loaded(db: &SessionFactory<SqliteConnection>, #[load] #[allow_attached] app: App) -> Result<(), Error> {
    Ok(())
}

fn main() {}
