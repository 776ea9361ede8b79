//! `#[load]` on a type that is not a model row: the error is on the type.
use dbscope::{detach_ids, Error, SessionFactory};
use diesel::prelude::*;

pub struct Settings {
    pub name: String,
}

#[detach_ids(factory = db)]
fn apply(db: &SessionFactory<SqliteConnection>, #[load] settings: Settings) -> Result<String, Error> {
    Ok(settings.name)
}

fn main() {}
