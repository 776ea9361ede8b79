//! `impl Detached for T {}` says "this only looks like a row": accepted as a
//! parameter and as a return type.
use dbscope::{detach_ids, Detached};
use diesel::prelude::*;

diesel::table! { apps (id) { id -> Integer, name -> Text } }

/// A snapshot the receiver never writes back.
#[derive(Queryable, Selectable, Identifiable, Clone, Debug, PartialEq)]
#[diesel(table_name = apps)]
pub struct AppSnapshot {
    pub id: i32,
    pub name: String,
}

impl Detached for AppSnapshot {}

#[detach_ids]
fn render(app: AppSnapshot, more: Vec<AppSnapshot>) -> Option<AppSnapshot> {
    more.into_iter().next().or(Some(app))
}

fn main() {
    let app = AppSnapshot { id: 1, name: "reports".into() };
    assert_eq!(render(app.clone(), vec![]), Some(app));
}
