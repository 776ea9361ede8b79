//! The macros never panic: malformed token streams (truncations and random
//! edits of valid inputs, empty input, other items, odd attributes) all come
//! back as tokens. Whenever the item is a function, the output still parses.

use std::panic::{catch_unwind, AssertUnwindSafe};

use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};
use quote::quote;

use crate::checked::checked;
use crate::detach_ids::detach_ids;
use crate::detached;
use crate::unit_of_work::unit_of_work;

/// An entry point under test: its name and its `proc_macro2` function.
type Macro = (&'static str, fn(TokenStream, TokenStream) -> TokenStream);

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn valid_args() -> Vec<TokenStream> {
    vec![
        quote!(factory = db),
        quote!(factory = self.db, isolation = serializable, retry = 3),
        quote!(
            factory = db,
            retry(attempts = 4, backoff_ms = 5, max_backoff_ms = 50),
            immediate,
            read_only,
            budget_ms = 100,
            crate = ::dbscope
        ),
        quote!(factory = db, crate = "my::db", exclusive),
        quote!(),
    ]
}

fn valid_items() -> Vec<TokenStream> {
    vec![
        quote! {
            /// Docs.
            pub fn create(db: &SessionFactory<PgConnection>, conn: &mut PgConnection, name: &str) -> Result<i32, E> {
                let id = insert(conn, name)?;
                if id < 0 { return Err(E::Negative); }
                Ok(id)
            }
        },
        quote! {
            pub async fn rename<'a, T: Clone>(&self, #[session] conn: &mut C, (a, b): (i32, &'a str), #[cfg(x)] t: T) -> Result<(), E>
            where
                T: Send,
            {
                let f = async { other().await };
                println!("{}", x.await);
                tokio::join!(a(), b());
                fn nested() { async { y.await }; }
                Ok(())
            }
        },
        quote! {
            const extern "C" fn bad(conn: &mut SqliteConnection, other: &mut SqliteConnection, args: ...) {}
        },
        quote! { fn no_body(&self, conn: &mut PgConnection) -> Result<(), E>; },
        quote! { struct NotAFunction { conn: SqliteConnection } },
        quote! { #[session] #[unit_of_work(factory = x)] fn f(#[session] self, #[session] c: Conn) -> impl Trait { loop {} } },
    ]
}

fn detach_args() -> Vec<TokenStream> {
    vec![
        quote!(),
        quote!(factory = db),
        quote!(factory = self.db, crate = ::dbscope),
        quote!(factory = db, crate = "my::db"),
        quote!(allow),
    ]
}

fn detach_items() -> Vec<TokenStream> {
    vec![
        quote! {
            /// Docs.
            pub fn send(db: &SessionFactory<PgConnection>, #[load] mut app: App, #[load(key = i64)] user: User, note: Option<Vec<Row>>) -> Result<Id<App>, E> {
                if note.is_none() { return Err(E::Missing); }
                Ok(Id::of(&app))
            }
        },
        quote! {
            pub async fn answer<'a, T: Clone>(&self, #[allow_attached(reason = "x")] row: &'a App, (a, b): (i32, &'a [App; 2]), t: impl Display) -> Result<(), E>
            where
                T: Send,
            {
                call(a).await;
                Ok(())
            }
        },
        quote! {
            const extern "C" fn bad(#[load] self, #[load] #[load] (x, y): &App, #[allow_attached = 1] c: Conn, args: ...) {}
        },
        quote! { fn no_body(&self, #[load] app: App) -> Result<(), E>; },
        quote! { struct NotAFunction { app: App } },
    ]
}

/// Tokens random edits draw from.
fn random_token(rng: &mut Rng) -> TokenTree {
    let span = Span::call_site();
    match rng.below(10) {
        0 => TokenTree::Ident(Ident::new("await", span)),
        1 => TokenTree::Ident(Ident::new("fn", span)),
        2 => TokenTree::Ident(Ident::new("factory", span)),
        3 => TokenTree::Ident(Ident::new(
            ["session", "load", "allow_attached"][rng.below(3)],
            span,
        )),
        4 => TokenTree::Punct(Punct::new('.', Spacing::Alone)),
        5 => TokenTree::Punct(Punct::new(',', Spacing::Alone)),
        6 => TokenTree::Punct(Punct::new('=', Spacing::Alone)),
        7 => TokenTree::Literal(Literal::u64_unsuffixed(rng.next() % 5)),
        8 => TokenTree::Group(Group::new(Delimiter::Parenthesis, TokenStream::new())),
        _ => TokenTree::Punct(Punct::new('#', Spacing::Alone)),
    }
}

/// One random edit somewhere in `tokens` (possibly inside a group).
fn mutate(tokens: TokenStream, rng: &mut Rng) -> TokenStream {
    let mut trees: Vec<TokenTree> = tokens.into_iter().collect();
    if trees.is_empty() {
        return std::iter::once(random_token(rng)).collect();
    }
    let at = rng.below(trees.len());
    match rng.below(5) {
        0 => {
            trees.remove(at);
        }
        1 => trees.insert(at, random_token(rng)),
        2 => trees[at] = random_token(rng),
        3 => trees.truncate(at),
        _ => {
            if let TokenTree::Group(group) = &trees[at] {
                let inner = mutate(group.stream(), rng);
                trees[at] = TokenTree::Group(Group::new(group.delimiter(), inner));
            } else {
                let other = rng.below(trees.len());
                trees.swap(at, other);
            }
        }
    }
    trees.into_iter().collect()
}

/// Runs the macro; `Err` if it panicked.
fn run(
    (name, expand): Macro,
    args: &TokenStream,
    item: &TokenStream,
) -> Result<TokenStream, String> {
    catch_unwind(AssertUnwindSafe(|| expand(args.clone(), item.clone())))
        .map_err(|_| format!("panicked on #[{name}({args})] {item}"))
}

fn check(target: Macro, args: &TokenStream, item: &TokenStream, failures: &mut Vec<String>) {
    let name = target.0;
    match run(target, args, item) {
        Err(failure) => failures.push(failure),
        Ok(output) => {
            if output.is_empty() {
                failures.push(format!("no tokens for #[{name}({args})] {item}"));
            } else if syn::parse2::<syn::ItemFn>(item.clone()).is_ok()
                && syn::parse2::<syn::File>(output.clone()).is_err()
            {
                failures.push(format!(
                    "unparsable output {output} for #[{name}({args})] {item}"
                ));
            }
        }
    }
}

#[test]
fn malformed_input_never_panics() {
    fuzz(
        ("unit_of_work", unit_of_work),
        &valid_args(),
        &valid_items(),
    );
}

#[test]
fn malformed_input_never_panics_detach_ids() {
    fuzz(("detach_ids", detach_ids), &detach_args(), &detach_items());
}

#[test]
fn malformed_input_never_panics_checked() {
    fuzz(
        ("checked", checked),
        &[quote!(), quote!(crate = x)],
        &[
            quote! {
                pub async fn handler(db: &Db, #[session] c: Conn, conn: &mut AsyncPgConnection) -> Result<(), E> {
                    let mut held = db.checkout().await?;
                    q.execute(&mut held).await?;
                    drop(held);
                    tokio::spawn(async move { let s = db.session()?; s.commit()?; sleep(d).await });
                    for conn in ids { fetch(conn).await; }
                    my_macro!(=> x.await <=);
                    Ok(())
                }
            },
            quote! { fn not_async(conn: &mut PgConnection) {} },
            quote! { struct NotAFunction; },
        ],
    );
}

fn derive_detached(_args: TokenStream, item: TokenStream) -> TokenStream {
    detached::derive(item)
}

#[test]
fn malformed_input_never_panics_derive_detached() {
    fuzz(
        ("derive(Detached)", derive_detached),
        &[quote!()],
        &[
            quote! {
                #[detached(crate = ::dbscope)]
                pub struct Job<'a, T: Clone> where T: Send { app: Id<App>, rows: Vec<(Row, &'a T)>, conn: Option<Box<PgConnection>> }
            },
            quote! { enum Message { Created { id: Id<App> }, Stale(App), Empty } },
            quote! { #[detached(crate = "not a path", other)] union U { a: u32 } },
            quote! { fn not_a_type() {} },
        ],
    );
}

/// Truncations, random edits and odd shapes of `args` and `items`.
fn fuzz(target: Macro, args: &[TokenStream], items: &[TokenStream]) {
    let mut failures = Vec::new();
    let mut cases = 0;

    // Every truncation of every item and of every argument list.
    for item in items {
        let trees: Vec<TokenTree> = item.clone().into_iter().collect();
        for len in 0..=trees.len() {
            let truncated: TokenStream = trees[..len].iter().cloned().collect();
            for arg in args {
                check(target, arg, &truncated, &mut failures);
                cases += 1;
            }
        }
    }
    for arg in args {
        let trees: Vec<TokenTree> = arg.clone().into_iter().collect();
        for len in 0..=trees.len() {
            let truncated: TokenStream = trees[..len].iter().cloned().collect();
            for item in items {
                check(target, &truncated, item, &mut failures);
                cases += 1;
            }
        }
    }

    // Random edits, from fixed seeds.
    for seed in 1..=3000u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut arg = args[rng.below(args.len())].clone();
        let mut item = items[rng.below(items.len())].clone();
        for _ in 0..=rng.below(4) {
            if rng.below(3) == 0 {
                arg = mutate(arg, &mut rng);
            } else {
                item = mutate(item, &mut rng);
            }
        }
        check(target, &arg, &item, &mut failures);
        cases += 1;
    }

    // Odd shapes.
    let odd = [
        (quote!(), quote!()),
        (quote!(factory = ), quote!(fn)),
        (
            quote!(= = =),
            quote!(
                fn f() {}
            ),
        ),
        (
            quote!(factory = db,,),
            quote!(
                fn f(conn: &mut PgConnection) -> R {}
            ),
        ),
        (quote!(retry(retry(retry))), quote!(impl X {})),
        (
            quote!(crate = "not a path"),
            quote!(
                #[session]
                enum E {}
            ),
        ),
        (
            quote!(isolation = 3),
            quote!(
                fn f(conn: &mut (PgConnection)) -> Result<(), E> {
                    x.await
                }
            ),
        ),
    ];
    for (arg, item) in &odd {
        check(target, arg, item, &mut failures);
        cases += 1;
    }

    assert!(cases > 3000, "only {cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
