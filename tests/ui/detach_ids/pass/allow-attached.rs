//! `#[allow_attached]` exempts one parameter, visibly; callers see it unchanged.
use dbscope::detach_ids;
use diesel::prelude::*;

diesel::table! { apps (id) { id -> Integer, name -> Text } }

#[derive(Queryable, Identifiable)]
pub struct App {
    pub id: i32,
    pub name: String,
}

#[detach_ids]
fn render(#[allow_attached] app: &App, title: &str) -> String {
    format!("{title}: {}", app.name)
}

#[detach_ids]
fn render_all(#[allow_attached(reason = "rendered on the caller's thread, right away")] apps: Vec<App>) -> usize {
    apps.len()
}

fn main() {
    let app = App { id: 1, name: "reports".into() };
    assert_eq!(render(&app, "app"), "app: reports");
    assert_eq!(render_all(vec![app]), 1);
}
