//! The session factory is a handle, not a session: it may cross boundaries in
//! every form (reference, `Arc`, by value, generic `SessionSource`).
use std::sync::Arc;

use dbscope::{detach_ids, SessionFactory, SessionSource};
use diesel::SqliteConnection;

#[detach_ids]
fn by_reference(db: &SessionFactory<SqliteConnection>) -> usize {
    db.stats().in_use
}

#[detach_ids]
async fn shared(db: Arc<SessionFactory<SqliteConnection>>, _also: Option<Arc<SessionFactory<SqliteConnection>>>) -> usize {
    db.stats().in_use
}

#[detach_ids]
fn owned(db: SessionFactory<SqliteConnection>) -> SessionFactory<SqliteConnection> {
    db
}

#[detach_ids]
fn generic<S: SessionSource>(db: &S) -> usize {
    db.session_factory().stats().max_size
}

fn main() {
    let factory = SessionFactory::<SqliteConnection>::new(":memory:").unwrap();
    assert_eq!(by_reference(&factory), 0);
    assert!(generic(&owned(factory.clone())) > 0);
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(rt.block_on(shared(Arc::new(factory), None)), 0);
}
