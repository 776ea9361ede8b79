//! A row known to diesel only as `Selectable` (no `Identifiable`) is a row too.
use dbscope::detach_ids;
use diesel::prelude::*;

diesel::table! { apps (id) { id -> Integer, name -> Text } }

#[derive(Queryable, Selectable)]
#[diesel(table_name = apps)]
pub struct AppName {
    pub name: String,
}

#[detach_ids]
fn greet(app: AppName) -> String {
    app.name
}

fn main() {}
