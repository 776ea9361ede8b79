//! A row inside any container is still a row; each error lands on `App` itself.
use std::rc::Rc;
use std::sync::Arc;

use dbscope::detach_ids;
use diesel::prelude::*;

diesel::table! { apps (id) { id -> Integer, name -> Text } }

#[derive(Queryable, Identifiable)]
pub struct App {
    pub id: i32,
    pub name: String,
}

#[detach_ids]
fn in_option(app: Option<App>) {}

#[detach_ids]
fn in_vec(apps: Vec<App>) {}

#[detach_ids]
fn in_slice(apps: &[App]) {}

#[detach_ids]
fn in_array(apps: [App; 2]) {}

#[detach_ids]
fn in_tuple(pair: (i32, App)) {}

#[detach_ids]
fn in_box(app: Box<App>) {}

#[detach_ids]
fn in_arc(app: Arc<App>) {}

#[detach_ids]
fn in_rc(app: Rc<App>) {}

#[detach_ids]
fn by_reference(app: &App) {}

#[detach_ids]
fn nested(apps: Option<Vec<Arc<App>>>) {}

fn main() {}
