//! A method on a row carries the row as `self`.
use dbscope::detach_ids;
use diesel::prelude::*;

diesel::table! { apps (id) { id -> Integer, name -> Text } }

#[derive(Queryable, Identifiable)]
pub struct App {
    pub id: i32,
    pub name: String,
}

impl App {
    #[detach_ids]
    fn render(&self) -> String {
        self.name.clone()
    }
}

fn main() {}
