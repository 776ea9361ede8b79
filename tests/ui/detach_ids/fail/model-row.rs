//! A model row (`#[derive(Identifiable)]`) cannot cross a boundary: pass its id.
use dbscope::detach_ids;
use diesel::prelude::*;

diesel::table! { apps (id) { id -> Integer, name -> Text } }

#[derive(Queryable, Identifiable)]
pub struct App {
    pub id: i32,
    pub name: String,
}

mod models {
    pub use super::App;
}

#[detach_ids]
fn summarise(app: App) -> String {
    app.name
}

#[detach_ids]
fn summarise_by_path(times: u32, app: models::App) -> String {
    app.name.repeat(times as usize)
}

fn main() {}
