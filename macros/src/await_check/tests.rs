//! The await analysis over a corpus of held-across-await scenarios, modelled
//! on clippy's `await_holding_lock` / `await_holding_invalid_type` tests, with
//! the session in the guard's place: every case where the session is open
//! across a foreign `.await` is rejected (one error per offending `.await` or
//! joined future); every case where only session work is awaited is accepted.

use super::{check, AwaitPolicy};
use crate::shared::errors::Errors;

/// (name, body, errors expected under `SessionOnly`).
const CORPUS: &[(&str, &str, usize)] = &[
    // Accepted: only session work is awaited.
    ("query", "{ users.load::<User>(conn).await?; Ok(()) }", 0),
    (
        "queries_one_after_another",
        "{ let id = insert_into(t).values(&v).returning(id).get_result(conn).await?;
           update(t.find(id)).set(n.eq(1)).execute(&mut *conn).await?; Ok(id) }",
        0,
    ),
    ("helper_taking_session", "{ helper(conn, 1).await }", 0),
    ("helper_with_reborrow", "{ helper(&mut *conn, 1).await }", 0),
    ("method_on_session", "{ conn.batch_execute(\"SELECT 1\").await?; Ok(()) }", 0),
    (
        "loop_of_queries",
        "{ for id in ids { delete(t.find(id)).execute(conn).await?; } Ok(()) }",
        0,
    ),
    (
        "while_loop_of_queries",
        "{ while let Some(row) = next(conn).await? { process(row); } Ok(()) }",
        0,
    ),
    ("wrapped_in_timeout", "{ timeout(d, q.execute(conn)).await?? ; Ok(()) }", 0),
    ("boxed", "{ Box::pin(helper(conn)).await }", 0),
    ("result_chain", "{ Ok(q.load::<i32>(conn).await?.into_iter().sum()) }", 0),
    ("rebound_session", "{ let c = &mut *conn; q.execute(c).await?; Ok(()) }", 0),
    (
        "nested_transaction_closure",
        "{ conn.transaction(async |c| { q.execute(c).await }).await }",
        0,
    ),
    ("async_block_of_queries", "{ async { q.execute(conn).await }.await }", 0),
    ("format_of_query", "{ println!(\"{}\", q.count().get_result::<i64>(conn).await?); Ok(()) }", 0),
    ("join_of_one_query", "{ let (a,) = tokio::join!(q.execute(conn)); a }", 0),
    (
        "nested_fn_item_is_not_the_body",
        "{ async fn later() { sleep(d).await } q.execute(conn).await }",
        0,
    ),
    ("sync_work_between_queries", "{ let a = q.get_result(conn).await?; let b = compute(a); r.execute(conn).await?; Ok(b) }", 0),
    // Rejected: the session is open across a foreign await.
    ("sleep", "{ tokio::time::sleep(d).await; Ok(()) }", 1),
    (
        "remote_call_between_queries",
        "{ let a = q.get_result(conn).await?; let b = client.get(url).send().await?; r.execute(conn).await?; Ok(b) }",
        1,
    ),
    ("channel_receive", "{ let job = rx.recv().await; q.execute(conn).await?; Ok(job) }", 1),
    ("model_call", "{ let answer = model.generate(prompt).await?; Ok(answer) }", 1),
    ("future_in_variable", "{ let fut = q.execute(conn); fut.await }", 1),
    ("foreign_before_query", "{ baz().await; q.execute(conn).await }", 1),
    ("two_foreign", "{ baz().await; q.execute(conn).await?; baz().await; Ok(()) }", 2),
    ("awaited_argument", "{ helper(conn, fetch().await).await }", 1),
    ("async_block", "{ let f = async { baz().await }; q.execute(conn).await?; f.await }", 2),
    ("async_move_block", "{ async move { sleep(d).await }.await; Ok(()) }", 2),
    ("closure", "{ let f = || async { baz().await }; q.execute(conn).await }", 1),
    ("async_closure", "{ let f = async || { baz().await }; q.execute(conn).await }", 1),
    ("join_macro_with_remote_call", "{ let (a, b) = tokio::join!(q.execute(conn), http()); a }", 1),
    ("try_join_macro", "{ tokio::try_join!(http(), model())?; Ok(()) }", 2),
    ("join_biased", "{ tokio::join!(biased; q.execute(conn), http()); Ok(()) }", 1),
    ("join_function", "{ futures::future::join(q.execute(conn), http()).await; Ok(()) }", 1),
    ("join_all_foreign", "{ join_all(vec![http(), http()]).await; Ok(()) }", 1),
    ("race_method", "{ q.execute(conn).race(sleep(d)).await; Ok(()) }", 1),
    ("select_macro", "{ tokio::select! { r = q.execute(conn) => r, _ = sleep(d) => Ok(0) } }", 1),
    ("await_in_format", "{ println!(\"{}\", http().await); Ok(()) }", 1),
    ("await_in_unparsable_macro", "{ my_macro!(=> x.await <=); Ok(()) }", 1),
    (
        "block_bad",
        "{ { let first = baz().await; } let second = q.execute(conn).await?; Ok(second) }",
        1,
    ),
    (
        "other_connection",
        "{ let mut other = pool.get().await?; q.execute(&mut other).await?; Ok(()) }",
        2,
    ),
];

fn errors_for(body: &str, policy: AwaitPolicy) -> usize {
    let block: syn::Block = syn::parse_str(body).unwrap_or_else(|e| panic!("{body}: {e}"));
    let mut errors = Errors::default();
    check(&block, "conn", policy, &mut errors);
    errors
        .combined()
        .map_or(0, |error| error.into_iter().count())
}

#[test]
fn session_only_corpus() {
    let mut failures = Vec::new();
    for (name, body, expected) in CORPUS {
        let found = errors_for(body, AwaitPolicy::SessionOnly);
        if found != *expected {
            failures.push(format!("{name}: expected {expected} errors, found {found}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn no_await_rejects_every_await_of_the_corpus() {
    for (name, body, _) in CORPUS {
        let has_await =
            body.contains(".await") || body.contains("join!") || body.contains("select!");
        let found = errors_for(body, AwaitPolicy::NoAwait);
        assert_eq!(found > 0, has_await, "{name}");
    }
}

#[test]
fn policy_follows_the_session_type() {
    let policy = |ty: &str| AwaitPolicy::for_session(&syn::parse_str(ty).unwrap());
    assert_eq!(policy("&mut AsyncPgConnection"), AwaitPolicy::SessionOnly);
    assert_eq!(
        policy("&mut diesel_async::AsyncMysqlConnection"),
        AwaitPolicy::SessionOnly
    );
    assert_eq!(
        policy("&mut SyncConnectionWrapper<SqliteConnection>"),
        AwaitPolicy::SessionOnly
    );
    assert_eq!(policy("&mut PgConnection"), AwaitPolicy::NoAwait);
    assert_eq!(policy("&mut Session<PgConnection>"), AwaitPolicy::NoAwait);
}
