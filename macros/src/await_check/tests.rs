//! The await analysis over a corpus of held-across-await shapes, modelled
//! on clippy's `await_holding_lock` / `await_holding_invalid_type` tests, with
//! the session in the guard's place. Each shape says which form it is
//! written in (a native unit over a diesel-async connection, a blocking unit,
//! hand-held code under `#[checked]`), how many errors it gets (0: accepted;
//! one per offending `.await`, joined future or opaque macro) and why: these
//! are the rules, written down.

use super::{check, AwaitPolicy, Sessions};
use crate::shared::errors::Errors;

/// How the body is written.
#[derive(Clone, Copy, Debug)]
enum Form {
    /// `#[unit_of_work]` over a diesel-async connection `conn` (factory `db`).
    Native,
    /// `#[unit_of_work]` over a blocking connection `conn` (factory `db`).
    Blocking,
    /// `#[checked]` code: sessions are the parameter `conn` and what the body
    /// checks out.
    HandHeld,
}

use Form::{Blocking, HandHeld, Native};

/// (form, name, body, errors, reason).
type Shape = (Form, &'static str, &'static str, usize, &'static str);

const CORPUS: &[Shape] = &[
    // ---- Native units: accepted, only session work is awaited ----
    (Native, "query", "{ users.load::<User>(conn).await?; Ok(()) }", 0, "a query on the session"),
    (Native, "queries_one_after_another", "{ let id = insert_into(t).values(&v).returning(id).get_result(conn).await?; update(t.find(id)).set(n.eq(1)).execute(&mut *conn).await?; Ok(id) }", 0, "each awaited future is a query on the session"),
    (Native, "helper_taking_session", "{ helper(conn, 1).await }", 0, "a call given the session does session work"),
    (Native, "helper_with_reborrow", "{ helper(&mut *conn, 1).await }", 0, "a reborrow is the session"),
    (Native, "method_on_session", "{ conn.batch_execute(\"SELECT 1\").await?; Ok(()) }", 0, "a method of the session"),
    (Native, "loop_of_queries", "{ for id in ids { delete(t.find(id)).execute(conn).await?; } Ok(()) }", 0, "queries in a loop"),
    (Native, "while_loop_of_queries", "{ while let Some(row) = next(conn).await? { process(row); } Ok(()) }", 0, "the condition queries the session"),
    (Native, "wrapped_in_timeout", "{ timeout(d, q.execute(conn)).await?? ; Ok(()) }", 0, "a wrapper around a query holds the session"),
    (Native, "boxed", "{ Box::pin(helper(conn)).await }", 0, "a boxed query future"),
    (Native, "result_chain", "{ Ok(q.load::<i32>(conn).await?.into_iter().sum()) }", 0, "sync work on the rows"),
    (Native, "rebound_session", "{ let c = &mut *conn; q.execute(c).await?; Ok(()) }", 0, "a local bound to the session is the session"),
    (Native, "nested_transaction_closure", "{ conn.transaction(async |c| { q.execute(c).await }).await }", 0, "the closure's parameter is the session"),
    (Native, "async_block_of_queries", "{ async { q.execute(conn).await }.await }", 0, "an async block of queries"),
    (Native, "format_of_query", "{ println!(\"{}\", q.count().get_result::<i64>(conn).await?); Ok(()) }", 0, "a formatting macro's arguments are analysed"),
    (Native, "join_of_one_query", "{ let (a,) = tokio::join!(q.execute(conn)); a }", 0, "every joined future uses the session"),
    (Native, "nested_fn_item_is_not_the_body", "{ async fn later() { sleep(d).await } q.execute(conn).await }", 0, "a nested item runs when called, not here"),
    (Native, "sync_work_between_queries", "{ let a = q.get_result(conn).await?; let b = compute(a); r.execute(conn).await?; Ok(b) }", 0, "no await between the queries"),
    (Native, "struct_wrapping_session", "{ Repo { conn }.store(row).await }", 0, "a struct holding the session does session work"),
    (Native, "struct_wrapping_reborrow", "{ Repo { conn: &mut *conn, table: t }.store(row).await }", 0, "a struct holding a reborrow"),
    (Native, "wrapper_in_local", "{ let repo = Repo { conn }; repo.store(row).await?; repo.load(id).await }", 0, "a local holding the session carries it"),
    (Native, "wrapper_by_constructor", "{ let mut repo = Repo::new(conn); repo.store(row).await }", 0, "a constructor given the session returns a carrier"),
    (Native, "helper_hands_session_back", "{ let c = reborrow(conn); q.execute(c).await?; Ok(()) }", 0, "a sync helper given the session hands it back"),
    (Native, "helper_hands_session_back_fallibly", "{ let c = prepare(&mut *conn)?; q.execute(c).await?; Ok(()) }", 0, "the same through `?`"),
    (Native, "query_future_in_local", "{ let fut = q.execute(conn); fut.await }", 0, "a query future stored in a local holds the session"),
    (Native, "query_future_in_local_then_more", "{ let fut = q.execute(&mut *conn); let n = fut.await?; r.execute(conn).await?; Ok(n) }", 0, "the stored future, then another query"),
    (Native, "boxed_future_in_local", "{ let fut = Box::pin(q.execute(conn)); fut.await }", 0, "a boxed query future in a local"),
    (Native, "future_returned_out_of_the_unit", "{ q.execute(conn).await?; Ok(async move { notify(id).await }) }", 0, "a future the caller awaits after the unit ended"),
    (Native, "boxed_future_returned", "{ q.execute(conn).await?; Ok(Box::pin(async move { sleep(d).await })) }", 0, "returned, not awaited here"),
    (Native, "closure_returned", "{ q.execute(conn).await?; Ok(move || async move { http(id).await }) }", 0, "a closure returned to the caller"),
    (Native, "closure_defined_not_called", "{ let f = || async { baz().await }; q.execute(conn).await }", 0, "its future is judged where it is awaited: never here"),
    (Native, "async_closure_not_called", "{ let f = async || { baz().await }; q.execute(conn).await }", 0, "never awaited here"),
    (Native, "spawn_after_commit_awaits_anything", "{ q.execute(conn).await?; spawn_after_commit(async move { queue.push(job).await })?; Ok(()) }", 0, "the future runs after commit"),
    (Native, "spawn_after_commit_by_path", "{ q.execute(conn).await?; dbscope::spawn_after_commit(async move { sleep(d).await; mail(id).await })?; Ok(()) }", 0, "the future runs after commit"),
    (Native, "after_commit_hook", "{ q.execute(conn).await?; session.after_commit(move || { handle.spawn(async move { mail(id).await }); }); Ok(()) }", 0, "a hook runs after commit"),
    (Native, "shadowed_then_restored", "{ { let conn = 5; compute(conn); } q.execute(conn).await }", 0, "the shadow ends with its block"),
    (Native, "match_on_query", "{ match q.first(conn).await { Ok(row) => Ok(row.id), Err(e) => Err(e.into()) } }", 0, "the scrutinee queries the session"),
    (Native, "if_let_query", "{ if let Some(row) = q.first(conn).await.optional()? { r.execute(conn).await?; } Ok(()) }", 0, "queries in the condition and the branch"),
    (Native, "question_mark_chain", "{ let n = q.execute(conn).await.map_err(Error::from)?; Ok(n) }", 0, "sync combinators on the result"),
    (Native, "vec_of_rows", "{ let rows = vec![q.first(conn).await?]; Ok(rows) }", 0, "`vec!` is analysed"),
    (Native, "tracing_between_queries", "{ q.execute(conn).await?; tracing::info!(\"done\"); r.execute(conn).await }", 0, "logging does not await"),
    (Native, "assert_between_queries", "{ let n = q.execute(conn).await?; assert_eq!(n, 1); Ok(()) }", 0, "assertions do not await"),
    (Native, "join_all_of_one_query", "{ join_all(vec![one(conn)]).await; Ok(()) }", 0, "every joined future uses the session"),
    (Native, "try_join_all_of_queries", "{ try_join_all(ids.iter().map(|id| load(conn, *id))).await?; Ok(()) }", 0, "the joined futures use the session"),
    (Native, "loop_variable_named_like_session_unused", "{ for conn_id in ids { q.find(conn_id).execute(conn).await?; } Ok(()) }", 0, "a different name"),
    (Native, "spawned_task_not_awaited", "{ q.execute(conn).await?; tokio::spawn(async move { sleep(d).await }); Ok(()) }", 0, "a spawned task runs apart and holds no connection"),
    (Native, "query_in_unsafe_block", "{ unsafe { q.execute(conn) }.await }", 0, "the block mentions the session"),
    // ---- Native units: rejected, the session is open across a foreign await ----
    (Native, "sleep", "{ tokio::time::sleep(d).await; Ok(()) }", 1, "a sleep holds the connection"),
    (Native, "remote_call_between_queries", "{ let a = q.get_result(conn).await?; let b = client.get(url).send().await?; r.execute(conn).await?; Ok(b) }", 1, "an HTTP call between queries"),
    (Native, "channel_receive", "{ let job = rx.recv().await; q.execute(conn).await?; Ok(job) }", 1, "waiting on a channel"),
    (Native, "model_call", "{ let answer = model.generate(prompt).await?; Ok(answer) }", 1, "an LLM call"),
    (Native, "foreign_before_query", "{ baz().await; q.execute(conn).await }", 1, "the session is open from the start"),
    (Native, "two_foreign", "{ baz().await; q.execute(conn).await?; baz().await; Ok(()) }", 2, "one error per foreign await"),
    (Native, "awaited_argument", "{ helper(conn, fetch().await).await }", 1, "the inner await is foreign"),
    (Native, "async_block_awaited_later", "{ let f = async { baz().await }; q.execute(conn).await?; f.await }", 1, "judged where it is awaited"),
    (Native, "async_move_block_awaited", "{ async move { sleep(d).await }.await; Ok(()) }", 1, "an async block that does not use the session, awaited"),
    (Native, "closure_called_and_awaited", "{ let f = || async { baz().await }; q.execute(conn).await?; f().await }", 1, "the closure's future is awaited here"),
    (Native, "join_macro_with_remote_call", "{ let (a, b) = tokio::join!(q.execute(conn), http()); a }", 1, "a joined future that does not use the session"),
    (Native, "try_join_macro", "{ tokio::try_join!(http(), model())?; Ok(()) }", 2, "both joined futures are foreign"),
    (Native, "join_biased", "{ tokio::join!(biased; q.execute(conn), http()); Ok(()) }", 1, "`biased;` does not change the rule"),
    (Native, "join_function", "{ futures::future::join(q.execute(conn), http()).await; Ok(()) }", 1, "a joining function"),
    (Native, "join_all_foreign", "{ join_all(vec![http(), http()]).await; Ok(()) }", 1, "the joined vector does not use the session"),
    (Native, "race_method", "{ q.execute(conn).race(sleep(d)).await; Ok(()) }", 1, "a raced timer"),
    (Native, "select_macro", "{ tokio::select! { r = q.execute(conn) => r, _ = sleep(d) => Ok(0) } }", 1, "`select!` races futures"),
    (Native, "await_in_format", "{ println!(\"{}\", http().await); Ok(()) }", 1, "an await in a formatting macro"),
    (Native, "await_in_unparsable_macro", "{ my_macro!(=> x.await <=); Ok(()) }", 1, "a macro that cannot be seen through"),
    (Native, "block_bad", "{ { let first = baz().await; } let second = q.execute(conn).await?; Ok(second) }", 1, "an inner block is still the unit"),
    (Native, "other_connection", "{ let mut other = pool.get().await?; q.execute(&mut other).await?; Ok(()) }", 2, "a second connection is foreign work"),
    (Native, "foreign_call_given_query_result", "{ llm(&load(conn, id).await?.title).await }", 1, "a value a query produced is data, not the session"),
    (Native, "foreign_call_given_rows", "{ let n = summarize(q.load::<Row>(conn).await?).await?; Ok(n) }", 1, "the rows, not the session, are passed"),
    (Native, "foreign_method_on_query_result", "{ q.first::<Row>(conn).await?.notify().await }", 1, "a method of a row"),
    (Native, "shadowed_by_let", "{ let conn = row.id; sleep(conn).await; Ok(()) }", 1, "the shadowing name is not the session"),
    (Native, "shadowed_by_loop_variable", "{ for conn in ids { fetch(conn).await; } Ok(()) }", 1, "a loop variable shadows the session"),
    (Native, "shadowed_by_closure_parameter", "{ let f = |conn: u64| async move { sleep(conn).await }; q.execute(conn).await?; f(1).await; Ok(()) }", 1, "the closure's own `conn` is not the session"),
    (Native, "shadowed_by_match_arm", "{ match id { Some(conn) => fetch(conn).await, None => 0 }; Ok(()) }", 1, "an arm binding shadows the session"),
    (Native, "shadowed_by_if_let", "{ if let Some(conn) = next_id() { fetch(conn).await; } Ok(()) }", 1, "an `if let` binding shadows the session"),
    (Native, "user_macro_awaiting", "{ q.execute(conn).await?; ask_llm!(prompt); Ok(()) }", 1, "what a user macro expands to cannot be seen"),
    (Native, "user_macro_given_session", "{ run_query!(conn, q); Ok(()) }", 1, "even with the session: its expansion may await other work"),
    (Native, "nested_unit_of_work", "{ q.execute(conn).await?; other_unit(db, id).await }", 1, "a call given the factory opens a second unit"),
    (Native, "nested_unit_by_reference", "{ other_unit(&db, id).await?; Ok(()) }", 1, "the same, by reference"),
    (Native, "foreign_await_in_session_closure", "{ conn.transaction(async |c| { q.execute(c).await?; sleep(d).await; Ok(()) }).await }", 1, "inside the session's own transaction"),
    (Native, "foreign_await_in_session_block", "{ async { q.execute(conn).await?; http().await }.await }", 1, "an async block that uses the session is judged where written"),
    (Native, "timeout_around_foreign", "{ timeout(d, http()).await??; Ok(()) }", 1, "a wrapper around foreign work"),
    (Native, "spawned_task_awaited", "{ tokio::spawn(work()).await?; q.execute(conn).await }", 1, "awaiting a task's handle waits on other work"),
    (Native, "yield_now", "{ q.execute(conn).await?; tokio::task::yield_now().await; Ok(()) }", 1, "yielding keeps the transaction open"),
    (Native, "lock_await", "{ let g = state.lock().await; q.execute(conn).await?; Ok(*g) }", 1, "a lock wait holds the connection"),
    (Native, "semaphore_acquire", "{ let p = sem.acquire().await?; q.execute(conn).await?; drop(p); Ok(()) }", 1, "a permit wait"),
    (Native, "stream_next", "{ while let Some(msg) = stream.next().await { q.execute(conn).await?; } Ok(()) }", 1, "a stream of messages"),
    (Native, "await_in_closure_using_session_param", "{ conn.transaction(async |c| { let id = http().await; q.find(id).execute(c).await }).await }", 1, "foreign await before the query"),
    (Native, "select_biased", "{ futures::select_biased! { a = q.execute(conn) => a, b = http() => b } }", 1, "racing"),
    (Native, "await_in_assert", "{ assert!(http().await.is_ok()); Ok(()) }", 1, "an await in an assertion"),
    // ---- Blocking units: no await at all while the session is open ----
    (Blocking, "blocking_sync_body", "{ q.execute(conn)?; r.execute(conn)?; Ok(()) }", 0, "no await"),
    (Blocking, "blocking_closure_without_await", "{ let f = |x: i32| x + 1; q.filter(n.eq(f(1))).execute(conn)?; Ok(()) }", 0, "no await"),
    (Blocking, "blocking_spawn_after_commit", "{ q.execute(conn)?; spawn_after_commit(async move { queue.push(job).await })?; Ok(()) }", 0, "the future runs after commit, on its own task"),
    (Blocking, "blocking_after_commit_hook", "{ q.execute(conn)?; conn.after_commit(move || { handle.spawn(async move { mail(id).await }); }); Ok(()) }", 0, "a hook runs after commit"),
    (Blocking, "blocking_nested_item", "{ async fn later() { sleep(d).await } q.execute(conn)?; Ok(()) }", 0, "a nested item is not the body"),
    (Blocking, "blocking_format", "{ println!(\"{}\", q.execute(conn)?); Ok(()) }", 0, "no await in the macro"),
    (Blocking, "blocking_sleep", "{ tokio::time::sleep(d).await; Ok(()) }", 1, "any await holds the connection"),
    (Blocking, "blocking_query_awaited", "{ q.execute(conn).await?; Ok(()) }", 1, "a blocking connection is never awaited"),
    (Blocking, "blocking_async_block", "{ let f = async { baz().await }; Ok(()) }", 1, "it may be driven while the session is open"),
    (Blocking, "blocking_closure", "{ let f = || async { baz().await }; Ok(()) }", 1, "the same for closures"),
    (Blocking, "blocking_join_macro", "{ tokio::join!(a(), b()); Ok(()) }", 1, "`join!` awaits by itself"),
    (Blocking, "blocking_select_macro", "{ tokio::select! { _ = a() => {}, _ = b() => {} }; Ok(()) }", 1, "`select!` awaits by itself"),
    (Blocking, "blocking_await_in_format", "{ println!(\"{}\", fetch().await); Ok(()) }", 1, "macro arguments are scanned"),
    (Blocking, "blocking_two_awaits", "{ a().await; b().await; Ok(()) }", 2, "one error per await"),
    (Blocking, "blocking_nested_unit", "{ q.execute(conn)?; other_unit(db, id).await }", 1, "a call given the factory opens a second unit"),
    (Blocking, "blocking_spawned_task_awaits", "{ tokio::spawn(async move { sleep(d).await }); Ok(()) }", 1, "a task spawned inside the transaction may outlive it; spawn after commit"),
    (Blocking, "blocking_future_returned", "{ q.execute(conn)?; Ok(async move { notify(id).await }) }", 1, "a blocking unit's body runs in one synchronous stretch"),
    // ---- Hand-held code under `#[checked]` ----
    (HandHeld, "hand_checkout_query_drop_then_remote", "{ let mut conn = db.checkout().await?; q.execute(&mut conn).await?; drop(conn); llm(prompt).await }", 0, "the connection was given back before the foreign await"),
    (HandHeld, "hand_remote_before_checkout", "{ let answer = llm(prompt).await?; let mut conn = db.checkout().await?; q.execute(&mut conn).await }", 0, "nothing is held yet"),
    (HandHeld, "hand_scoped_block", "{ let id = { let mut conn = db.checkout().await?; q.get_result(&mut conn).await? }; llm(id).await }", 0, "the block ends the checkout"),
    (HandHeld, "hand_transaction_on_checkout", "{ let mut conn = db.checkout().await?; conn.transaction(async |c| q.execute(c).await).await }", 0, "the transaction runs on the connection"),
    (HandHeld, "hand_blocking_session_committed", "{ let mut s = db.session()?; q.execute(&mut *s)?; s.commit()?; notify().await }", 0, "the session ended before the await"),
    (HandHeld, "hand_spawned_task_checks_out_its_own", "{ tokio::spawn(async move { let mut conn = db.checkout().await?; q.execute(&mut conn).await }); llm(p).await }", 0, "each task's connection is used only for its own queries"),
    (HandHeld, "hand_param_used", "{ q.execute(conn).await?; Ok(()) }", 0, "a connection parameter awaited for its own query"),
    (HandHeld, "hand_pool_get", "{ let mut c = pool.get().await?; q.execute(&mut c).await?; Ok(()) }", 0, "a pool's connection, used"),
    (HandHeld, "hand_no_session", "{ llm(p).await; sleep(d).await; Ok(()) }", 0, "no connection anywhere"),
    (HandHeld, "hand_cache_get_is_not_a_checkout", "{ let v = cache.get(&k).await; llm(v).await }", 0, "`get` with arguments is a lookup"),
    (HandHeld, "hand_checkout_then_remote", "{ let mut conn = db.checkout().await?; q.execute(&mut conn).await?; llm(prompt).await }", 1, "the checkout is held across the call"),
    (HandHeld, "hand_param_then_remote", "{ q.execute(conn).await?; sleep(d).await; Ok(()) }", 1, "a connection parameter held across a sleep"),
    (HandHeld, "hand_moved_into_task", "{ let mut conn = db.checkout().await?; tokio::spawn(async move { q.execute(&mut conn).await; sleep(d).await; }); Ok(()) }", 1, "moved into a task, held across its sleep"),
    (HandHeld, "hand_shared_through_mutex", "{ let conn = db.checkout().await?; let shared = Arc::new(Mutex::new(conn)); let mut g = shared.lock().await; q.execute(&mut *g).await?; http().await; Ok(()) }", 1, "shared through a mutex, still held"),
    (HandHeld, "hand_typed_local", "{ let c: AsyncPooledConnection<Pg> = take(); q.execute(&mut c).await?; http().await }", 1, "a local typed as a connection"),
    (HandHeld, "hand_blocking_session_held", "{ let mut s = db.session()?; q.execute(&mut *s)?; notify().await; s.commit() }", 1, "a blocking session open across an await"),
    (HandHeld, "hand_checkout_in_task_then_remote", "{ tokio::spawn(async move { let mut conn = db.checkout().await?; q.execute(&mut conn).await?; llm(p).await }); Ok(()) }", 1, "inside the task, the checkout is held across the call"),
    (HandHeld, "hand_join_with_foreign", "{ let mut conn = db.checkout().await?; tokio::join!(q.execute(&mut conn), http()); Ok(()) }", 1, "a joined future that does not use the connection"),
    (HandHeld, "hand_two_foreign", "{ let mut conn = db.checkout().await?; a().await; q.execute(&mut conn).await?; b().await; Ok(()) }", 2, "one error per foreign await"),
    (HandHeld, "hand_dropped_in_inner_block_only", "{ let mut conn = db.checkout().await?; if cond { drop(conn); return Ok(()); } http().await; Ok(()) }", 1, "dropped on one path only"),
];

fn errors_for(form: Form, name: &str, body: &str) -> usize {
    let block: syn::Block = syn::parse_str(body).unwrap_or_else(|e| panic!("{body}: {e}"));
    let mut errors = Errors::default();
    let (sessions, policy) = match form {
        Native | Blocking => (
            Sessions::Unit {
                name: "conn",
                factory: Some("db".to_owned()),
            },
            if matches!(form, Native) {
                AwaitPolicy::SessionOnly
            } else {
                AwaitPolicy::NoAwait
            },
        ),
        HandHeld => (
            Sessions::HandHeld {
                // `hand_param_*` shapes take a connection parameter `conn`.
                params: if name.starts_with("hand_param") {
                    vec!["conn".to_owned()]
                } else {
                    Vec::new()
                },
            },
            AwaitPolicy::SessionOnly,
        ),
    };
    check(&block, sessions, policy, &mut errors);
    errors
        .combined()
        .map_or(0, |error| error.into_iter().count())
}

#[test]
fn every_shape_gets_its_verdict() {
    let mut failures = Vec::new();
    for (form, name, body, expected, reason) in CORPUS {
        let found = errors_for(*form, name, body);
        if found != *expected {
            failures.push(format!(
                "{form:?} {name} ({reason}): expected {expected} errors, found {found}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_corpus_covers_every_form_with_reasons() {
    assert!(CORPUS.len() >= 120, "{} shapes", CORPUS.len());
    for form in [Native, Blocking, HandHeld] {
        let of_form = || {
            CORPUS.iter().filter(move |shape| {
                std::mem::discriminant(&shape.0) == std::mem::discriminant(&form)
            })
        };
        assert!(
            of_form().any(|shape| shape.3 == 0),
            "{form:?}: no accepted shape"
        );
        assert!(
            of_form().any(|shape| shape.3 > 0),
            "{form:?}: no rejected shape"
        );
    }
    let mut names: Vec<&str> = CORPUS.iter().map(|shape| shape.1).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), CORPUS.len(), "shape names are unique");
    assert!(CORPUS.iter().all(|shape| !shape.4.is_empty()));
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
