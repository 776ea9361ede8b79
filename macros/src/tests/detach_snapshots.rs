//! Expansion snapshots of `#[detach_ids]`. Update with
//! `INSTA_UPDATE=always cargo test -p dbscope-macros` and review the diff.

use proc_macro2::TokenStream;
use quote::quote;

use crate::detach_ids::detach_ids;

fn expand(
    args: TokenStream,
    item: TokenStream,
    wrap: impl FnOnce(TokenStream) -> TokenStream,
) -> String {
    let expanded = wrap(detach_ids(args, item));
    let file: syn::File = syn::parse2(expanded).expect("the expansion parses as items");
    prettyplease::unparse(&file)
}

fn free(tokens: TokenStream) -> TokenStream {
    tokens
}

#[test]
fn detach_sync_fn_with_load() {
    insta::assert_snapshot!(expand(
        quote!(factory = db),
        quote! {
            /// Sends the summary of an app.
            pub fn send_summary(
                db: &SessionFactory<PgConnection>,
                #[load] mut app: App,
                #[load(key = i64)] owner: User,
                note: Option<String>,
            ) -> Result<Id<Summary>, JobError> {
                app.name.push('!');
                deliver(&owner.email, &app.name, note)
            }
        },
        free,
    ));
}

#[test]
fn detach_async_fn() {
    insta::assert_snapshot!(expand(
        quote!(factory = db),
        quote! {
            pub async fn answer(
                db: Arc<SessionFactory<SqliteConnection>>,
                #[load] question: Question,
                history: Vec<Id<Answer>>,
                #[allow_attached(reason = "read-only snapshot")] style: &StyleRow,
            ) -> Result<Id<Answer>, AppError> {
                let text = call_llm(&question.prompt).await;
                save_answer(&db, question.id, text).await
            }
        },
        free,
    ));
}

#[test]
fn detach_method_without_load() {
    insta::assert_snapshot!(expand(
        quote!(),
        quote! {
            pub fn enqueue(&self, apps: &[Id<App>], batch: (u32, Option<Box<Job>>)) -> usize {
                self.queue.push(apps, batch)
            }
        },
        |method| quote!(impl<Q: Queue> Jobs<Q> { #method }),
    ));
}

#[test]
fn detach_errors_keep_the_callers_signature() {
    insta::assert_snapshot!(expand(
        quote!(retry = 3),
        quote! {
            pub fn summarise(#[load] app: App, #[load] (a, b): (i32, i32)) -> Result<String, Error> {
                Ok(app.name)
            }
        },
        free,
    ));
}
