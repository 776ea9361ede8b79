//! Expansion snapshots: every change to generated code shows up here for review.
//! Update with `INSTA_UPDATE=always cargo test -p dbscope-macros` and review
//! the `.snap` diff.

use proc_macro2::TokenStream;
use quote::quote;

use crate::unit_of_work::unit_of_work;

/// Expands and pretty-prints; `wrap` puts methods back into their `impl`.
fn expand(
    args: TokenStream,
    item: TokenStream,
    wrap: impl FnOnce(TokenStream) -> TokenStream,
) -> String {
    let expanded = wrap(unit_of_work(args, item));
    let file: syn::File = syn::parse2(expanded).expect("the expansion parses as items");
    prettyplease::unparse(&file)
}

fn free(tokens: TokenStream) -> TokenStream {
    tokens
}

#[test]
fn sync_fn() {
    insta::assert_snapshot!(expand(
        quote!(factory = db),
        quote! {
            /// Inserts a user and returns its id.
            pub fn create_user(
                db: &SessionFactory<PgConnection>,
                conn: &mut PgConnection,
                name: &str,
            ) -> Result<i32, AppError> {
                diesel::insert_into(users::table)
                    .values(users::name.eq(name))
                    .returning(users::id)
                    .get_result(conn)
                    .map_err(AppError::from)
            }
        },
        free,
    ));
}

#[test]
fn native_async_fn() {
    insta::assert_snapshot!(expand(
        quote!(factory = db, retry = 3, isolation = repeatable_read),
        quote! {
            /// Renames a job; the body awaits its queries on the session.
            pub async fn rename(
                db: &AsyncSessionFactory<AsyncPgConnection>,
                conn: &mut AsyncPgConnection,
                id: i32,
                name: &str,
            ) -> Result<usize, AppError> {
                let job: Job = jobs::table.find(id).first(conn).await?;
                Ok(diesel::update(&job).set(jobs::name.eq(name)).execute(conn).await?)
            }
        },
        free,
    ));
}

#[test]
fn async_fn() {
    insta::assert_snapshot!(expand(
        quote!(factory = db, read_only),
        quote! {
            pub async fn load_prompt(
                db: &SessionFactory<SqliteConnection>,
                conn: &mut SqliteConnection,
                id: i32,
            ) -> QueryResultOf<String> {
                let prompt = jobs::table.find(id).select(jobs::prompt).first(conn)?;
                Ok(prompt)
            }
        },
        free,
    ));
}

#[test]
fn method_with_self_factory() {
    insta::assert_snapshot!(expand(
        quote!(factory = self.db),
        quote! {
            pub fn rename(&self, conn: &mut PgConnection, id: i32, name: String) -> Result<(), AppError> {
                diesel::update(users::table.find(id)).set(users::name.eq(name)).execute(conn)?;
                Ok(())
            }
        },
        |method| quote!(impl<F: dbscope::SessionSource> Repo<F> { #method }),
    ));
}

#[test]
fn retry_and_isolation() {
    insta::assert_snapshot!(expand(
        quote!(
            factory = self.db,
            isolation = serializable,
            retry(attempts = 3, backoff_ms = 5, max_backoff_ms = 100),
            budget_ms = 2000,
            crate = ::my_app::db
        ),
        quote! {
            pub async fn transfer(&self, #[session] conn: &mut C, from: i32, to: i32, cents: i64) -> Result<(), AppError> {
                debit(conn, from, cents)?;
                credit(conn, to, cents)
            }
        },
        |method| quote!(impl<C: PoolableConnection, F: SessionSource<Connection = C>> Bank<F> { #method }),
    ));
}

#[test]
fn sqlite_lock_and_backend_check() {
    insta::assert_snapshot!(expand(
        quote!(
            factory = make_factory(),
            immediate,
            isolation = read_committed,
            retry = 2
        ),
        quote! {
            fn enqueue((kind, payload): (&str, &str), session: &mut Session<SqliteConnection>) -> Result<usize, Error> {
                Ok(0)
            }
        },
        free,
    ));
}

#[test]
fn errors_keep_the_callers_signature() {
    insta::assert_snapshot!(expand(
        quote!(isolation = snapshot),
        quote! {
            /// Kept.
            pub async fn answer<'a>(db: &'a F, conn: &mut SqliteConnection, prompt: &'a str) -> Result<String, Error> {
                let answer = call_llm(prompt).await;
                Ok(answer)
            }
        },
        free,
    ));
}
