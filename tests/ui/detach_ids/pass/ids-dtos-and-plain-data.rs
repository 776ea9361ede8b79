//! Ids, plain data and DTOs cross boundaries freely, also inside containers,
//! and as return types; an `Id` serialises as its bare key.
use std::collections::HashMap;
use std::sync::Arc;

use dbscope::{detach_ids, Id};
use diesel::prelude::*;

diesel::table! { apps (id) { id -> Integer, name -> Text } }

#[derive(Queryable, Identifiable)]
pub struct App {
    pub id: i32,
    pub name: String,
}

/// What a job needs of an app: plain data.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct AppSummary {
    pub id: Id<App>,
    pub name: String,
}

#[detach_ids]
fn ids(app: Id<App>, many: Vec<Id<App>>, by_key: HashMap<Id<App>, String>, wide: Id<App, i64>) -> Option<Id<App>> {
    many.into_iter().chain([app]).find(|id| by_key.contains_key(id)).or(Some(Id::new(wide.key() as i32)))
}

#[detach_ids]
fn dtos(summary: AppSummary, shared: Arc<[AppSummary]>, _pair: (String, &str), _bytes: &[u8]) -> Vec<AppSummary> {
    shared.iter().cloned().chain([summary]).collect()
}

#[detach_ids]
fn a_table_is_a_query_handle(table: apps::table) -> apps::table {
    table
}

fn main() {
    let app = Id::<App>::new(7);
    assert_eq!(ids(app, vec![], HashMap::new(), Id::new(3)), Some(Id::new(3)));
    let json = serde_json::to_string(&AppSummary { id: app, name: "reports".into() }).unwrap();
    assert_eq!(json, r#"{"id":7,"name":"reports"}"#);
    let back: AppSummary = serde_json::from_str(&json).unwrap();
    assert_eq!(back.id, app);
    assert_eq!(dtos(back.clone(), Arc::from(vec![back]), ("a".into(), "b"), b"x").len(), 2);
}
