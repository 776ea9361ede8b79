//! Finds `.await`s in a unit of work's body, where the session is open.
//!
//! A blocking diesel connection stays checked out for as long as the body
//! runs, so any wait inside it (a remote call, a sleep, another task) holds a
//! pooled connection idle. Under [`AwaitPolicy::NoAwait`] every `.await` in the
//! body is an error, including those inside async blocks and closures (they may
//! be driven while the session is open) and inside macro invocations, whose
//! tokens are scanned conservatively. Nested items are not the body and are not
//! entered.

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::{self, Visit};
use syn::{Block, ExprAwait, Item, Macro, Type};

use crate::errors::Errors;

/// Which `.await`s a session allows.
///
/// Only [`AwaitPolicy::NoAwait`] exists today. A session over an async
/// connection (diesel-async) would add a mode where awaits on expressions that
/// use the session are allowed and only unrelated awaits are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AwaitPolicy {
    /// No `.await` at all while the session is open: the session is a
    /// blocking connection.
    NoAwait,
}

impl AwaitPolicy {
    /// The policy for a session parameter of type `ty`. Every session the
    /// runtime hands out today is a blocking diesel connection.
    pub(crate) fn for_session(_ty: &Type) -> AwaitPolicy {
        AwaitPolicy::NoAwait
    }
}

/// Macros known to await their arguments without a `.await` in their tokens.
const AWAITING_MACROS: &[&str] = &["join", "try_join", "select", "select_biased"];

/// Reports every `.await` in `body` that `policy` forbids, one error each.
pub(crate) fn check(body: &Block, session: &str, policy: AwaitPolicy, errors: &mut Errors) {
    let mut finder = AwaitFinder {
        session,
        policy,
        errors,
    };
    finder.visit_block(body);
}

struct AwaitFinder<'a> {
    session: &'a str,
    policy: AwaitPolicy,
    errors: &'a mut Errors,
}

impl AwaitFinder<'_> {
    fn report(&mut self, tokens: TokenStream) {
        match self.policy {
            AwaitPolicy::NoAwait => self.errors.push(syn::Error::new_spanned(
                tokens,
                format!(
                    "`.await` while session `{}` is open: the connection stays checked out while \
                     this waits; move the awaited work before or after the unit of work (a \
                     separate function) and pass ids between them",
                    self.session
                ),
            )),
        }
    }

    /// Reports `.` `await` pairs anywhere in `tokens`.
    fn scan(&mut self, tokens: TokenStream) {
        let mut previous: Option<TokenTree> = None;
        for token in tokens {
            match &token {
                TokenTree::Group(group) => self.scan(group.stream()),
                TokenTree::Ident(ident) if ident == "await" => {
                    if let Some(TokenTree::Punct(dot)) = &previous {
                        if dot.as_char() == '.' {
                            let pair: TokenStream = [TokenTree::Punct(dot.clone()), token.clone()]
                                .into_iter()
                                .collect();
                            self.report(pair);
                        }
                    }
                }
                _ => {}
            }
            previous = Some(token);
        }
    }
}

impl<'ast> Visit<'ast> for AwaitFinder<'_> {
    fn visit_expr_await(&mut self, node: &'ast ExprAwait) {
        let dot = node.dot_token;
        let await_token = node.await_token;
        self.report(quote::quote!(#dot #await_token));
        // `a.await.b().await`: the base has its own.
        visit::visit_expr_await(self, node);
    }

    fn visit_item(&mut self, _nested: &'ast Item) {
        // A nested fn, impl or mod runs when it is called, not as this body.
    }

    fn visit_macro(&mut self, node: &'ast Macro) {
        if let Some(last) = node.path.segments.last() {
            if AWAITING_MACROS.iter().any(|name| last.ident == name) {
                let path = &node.path;
                let bang = node.bang_token;
                self.errors.push(syn::Error::new_spanned(
                    quote::quote!(#path #bang),
                    format!(
                        "`{}!` awaits while session `{}` is open: the connection stays checked \
                         out while this waits; move the awaited work before or after the unit of \
                         work (a separate function) and pass ids between them",
                        last.ident, self.session
                    ),
                ));
            }
        }
        self.scan(node.tokens.clone());
    }
}
