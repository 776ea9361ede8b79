//! `#[load]` in an `async fn` and in a method whose factory is a field.
use std::sync::Arc;

use dbscope::{detach_ids, Error, Id, SessionFactory};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

diesel::table! { apps (id) { id -> Integer, name -> Text } }

#[derive(Queryable, Identifiable, Debug)]
pub struct App {
    pub id: i32,
    pub name: String,
}

async fn call_model(prompt: &str) -> String {
    prompt.to_uppercase()
}

#[detach_ids(factory = db)]
async fn answer(db: Arc<SessionFactory<SqliteConnection>>, #[load] app: App) -> Result<String, Error> {
    Ok(call_model(&app.name).await)
}

pub struct Runner {
    db: SessionFactory<SqliteConnection>,
}

impl Runner {
    #[detach_ids(factory = self.db)]
    pub async fn run(&self, #[load] app: App, attempt: u32) -> Result<String, Error> {
        Ok(format!("{} #{attempt}", call_model(&app.name).await))
    }
}

fn main() {
    let db = SessionFactory::<SqliteConnection>::new("file:detach-load-async?mode=memory&cache=shared").unwrap();
    db.checkout()
        .unwrap()
        .batch_execute("CREATE TABLE apps (id INTEGER PRIMARY KEY, name TEXT NOT NULL); INSERT INTO apps VALUES (1, 'reports');")
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    assert_eq!(rt.block_on(answer(Arc::new(db.clone()), Id::new(1))).unwrap(), "REPORTS");
    let runner = Runner { db };
    assert_eq!(rt.block_on(runner.run(Id::new(1), 2)).unwrap(), "REPORTS #2");
}
