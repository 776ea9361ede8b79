//! A payload whose fields are ids and plain data derives `Detached`, and a
//! `#[detach_ids]` function takes it; generic payloads too.
use dbscope::{detach_ids, Detached, Id};
use diesel::prelude::*;

diesel::table! { apps (id) { id -> Integer, name -> Text } }

#[derive(Queryable, Identifiable)]
pub struct App {
    pub id: i32,
    pub name: String,
}

#[derive(Detached)]
pub struct SummariseJob {
    pub app: Id<App>,
    pub prompt: String,
    pub attempts: Vec<u32>,
}

#[derive(Detached)]
#[detached(crate = dbscope)]
pub struct Envelope<T> {
    pub body: T,
    pub tries: u8,
}

#[derive(Detached)]
pub enum Message {
    Created { id: Id<App> },
    Deleted(Id<App>),
}

#[detach_ids]
fn enqueue(job: SummariseJob, envelope: Envelope<Message>) -> usize {
    job.attempts.len() + usize::from(envelope.tries)
}

fn main() {
    let job = SummariseJob { app: Id::from(1), prompt: "p".into(), attempts: vec![1] };
    let envelope = Envelope { body: Message::Deleted(Id::from(2)), tries: 2 };
    assert_eq!(enqueue(job, envelope), 3);
    let _ = Message::Created { id: Id::from(3) };
}
