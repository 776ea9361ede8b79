//! Finds `.await`s in a unit of work's body, where the session is open, and
//! reports those its session's [`AwaitPolicy`] forbids.
//!
//! A blocking diesel connection stays checked out for as long as the body
//! runs, so any wait inside it (a remote call, a sleep, another task) holds a
//! pooled connection idle. Under [`AwaitPolicy::NoAwait`] every `.await` in the
//! body is an error, including those inside async blocks and closures (they may
//! be driven while the session is open) and inside macro invocations, whose
//! tokens are scanned conservatively.
//!
//! An async connection (diesel-async) must stay open across the `.await`s of
//! its own queries, and only those: under [`AwaitPolicy::SessionOnly`] an
//! `.await` is allowed when the awaited expression uses the session (a query
//! run on it, or a call it is passed to, possibly wrapped: `timeout(d,
//! q.execute(conn))`); any other `.await` is an error on that `.await`. Joins
//! (`join!`, `try_join!`, `future::join(..)`) must use the session in every
//! future they await; `select!` is rejected; other macros are parsed as
//! comma-separated expressions and analysed, or rejected when they cannot be
//! parsed and contain an `.await`. Nested items are not the body and are not
//! entered.

use proc_macro2::{TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};
use syn::{Block, Expr, ExprAwait, Item, Local, Macro, Pat, Token, Type};

use crate::shared::errors::Errors;

/// Which `.await`s a session allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AwaitPolicy {
    /// No `.await` at all while the session is open: the session is a
    /// blocking connection.
    NoAwait,
    /// Only `.await`s on expressions that use the session: the session is a
    /// diesel-async connection whose queries are awaited.
    SessionOnly,
}

/// Last path segments of diesel-async connection types.
const ASYNC_CONNECTIONS: &[&str] = &[
    "AsyncPgConnection",
    "AsyncMysqlConnection",
    "SyncConnectionWrapper",
];

impl AwaitPolicy {
    /// The policy for a session parameter of type `ty`: [`SessionOnly`] for a
    /// diesel-async connection (`AsyncPgConnection`, `AsyncMysqlConnection`,
    /// `SyncConnectionWrapper<..>`, or any `Async..Connection`), [`NoAwait`]
    /// for everything else.
    ///
    /// [`SessionOnly`]: AwaitPolicy::SessionOnly
    /// [`NoAwait`]: AwaitPolicy::NoAwait
    pub(crate) fn for_session(ty: &Type) -> AwaitPolicy {
        if is_async_connection(ty) {
            AwaitPolicy::SessionOnly
        } else {
            AwaitPolicy::NoAwait
        }
    }
}

/// Whether `ty` is (a reference to) a diesel-async connection type, by name.
pub(crate) fn is_async_connection(ty: &Type) -> bool {
    match ty {
        Type::Reference(reference) => is_async_connection(&reference.elem),
        Type::Group(group) => is_async_connection(&group.elem),
        Type::Paren(paren) => is_async_connection(&paren.elem),
        Type::Path(path) if path.qself.is_none() => {
            path.path.segments.last().is_some_and(|segment| {
                let name = segment.ident.to_string();
                ASYNC_CONNECTIONS.contains(&name.as_str())
                    || (name.starts_with("Async") && name.ends_with("Connection"))
            })
        }
        _ => false,
    }
}

/// Macros known to await their arguments without a `.await` in their tokens.
const AWAITING_MACROS: &[&str] = &["join", "try_join", "select", "select_biased"];

/// Macros that race their futures: never analysable as session work.
const RACING_MACROS: &[&str] = &["select", "select_biased"];

/// Functions and methods that await every future they are given.
const JOINING_CALLS: &[&str] = &[
    "join",
    "join3",
    "join4",
    "join5",
    "try_join",
    "try_join3",
    "try_join4",
    "try_join5",
    "join_all",
    "try_join_all",
    "select",
    "select_all",
    "select_ok",
    "race",
    "zip",
    "or",
];

/// Reports every `.await` in `body` that `policy` forbids, one error each.
pub(crate) fn check(body: &Block, session: &str, policy: AwaitPolicy, errors: &mut Errors) {
    let mut finder = AwaitFinder {
        session,
        sessions: vec![session.to_owned()],
        policy,
        errors,
    };
    finder.visit_block(body);
}

struct AwaitFinder<'a> {
    /// The session's name as the user wrote it, for messages.
    session: &'a str,
    /// The session and the names bound to it in the body (`let c = &mut *conn`,
    /// the parameter of a closure the session is passed along with).
    sessions: Vec<String>,
    policy: AwaitPolicy,
    errors: &'a mut Errors,
}

impl AwaitFinder<'_> {
    fn foreign_await(&mut self, tokens: TokenStream) {
        let message = match self.policy {
            AwaitPolicy::NoAwait => format!(
                "`.await` while session `{}` is open: the connection stays checked out while \
                 this waits; move the awaited work before or after the unit of work (a \
                 separate function) and pass ids between them",
                self.session
            ),
            AwaitPolicy::SessionOnly => format!(
                "`.await` on work that does not use session `{}`: the connection stays checked \
                 out, its transaction open, while this waits; await only queries on the session \
                 (or calls passed it) here, and move this work before or after the unit of work \
                 (a separate function), passing ids between them",
                self.session
            ),
        };
        self.errors.push(syn::Error::new_spanned(tokens, message));
    }

    fn foreign_joined(&mut self, what: &str, future: &dyn ToTokens) {
        self.errors.push(syn::Error::new_spanned(
            future,
            format!(
                "`{what}` awaits this while session `{}` is open, and it does not use the \
                 session: the connection stays checked out, its transaction open, while it \
                 waits; move this work before or after the unit of work (a separate function) \
                 and pass ids between them",
                self.session
            ),
        ));
    }

    /// Whether `name` is the session or bound to it.
    fn is_session(&self, name: &str) -> bool {
        self.sessions.iter().any(|session| session == name)
    }

    /// Whether `tokens` name the session anywhere.
    fn mentions(&self, tokens: TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            TokenTree::Ident(ident) => self.is_session(&ident.to_string()),
            TokenTree::Group(group) => self.mentions(group.stream()),
            _ => false,
        })
    }

    /// `conn`, `&mut *conn`, `&mut conn`, `(conn)`.
    fn is_session_ref(&self, expr: &Expr) -> bool {
        match expr {
            Expr::Path(path) => {
                path.qself.is_none()
                    && path
                        .path
                        .get_ident()
                        .is_some_and(|ident| self.is_session(&ident.to_string()))
            }
            Expr::Reference(reference) => self.is_session_ref(&reference.expr),
            Expr::Unary(unary) => self.is_session_ref(&unary.expr),
            Expr::Paren(paren) => self.is_session_ref(&paren.expr),
            Expr::Group(group) => self.is_session_ref(&group.expr),
            _ => false,
        }
    }

    /// Whether awaiting `expr` awaits work on the session: a call or method
    /// call it is passed to (or whose receiver it is), possibly wrapped in
    /// other calls.
    fn uses_session(&self, expr: &Expr) -> bool {
        match expr {
            Expr::Path(_) => self.is_session_ref(expr),
            Expr::Reference(reference) => self.uses_session(&reference.expr),
            Expr::Unary(unary) => self.uses_session(&unary.expr),
            Expr::Paren(paren) => self.uses_session(&paren.expr),
            Expr::Group(group) => self.uses_session(&group.expr),
            Expr::Field(field) => self.uses_session(&field.base),
            Expr::Try(try_expr) => self.uses_session(&try_expr.expr),
            Expr::Await(inner) => self.uses_session(&inner.base),
            Expr::Call(call) => call.args.iter().any(|arg| self.uses_session(arg)),
            Expr::MethodCall(call) => {
                self.uses_session(&call.receiver)
                    || call.args.iter().any(|arg| self.uses_session(arg))
            }
            Expr::Macro(mac) => self.mentions(mac.mac.tokens.clone()),
            Expr::Async(_) | Expr::Block(_) | Expr::Unsafe(_) | Expr::If(_) | Expr::Match(_) => {
                self.mentions(expr.to_token_stream())
            }
            _ => false,
        }
    }

    /// A joining call (`join(a, b)`, `a.race(b)`): every future it awaits
    /// must use the session.
    fn check_joined(&mut self, base: &Expr) {
        let (name, futures): (String, Vec<&Expr>) = match base {
            Expr::Call(call) => match &*call.func {
                Expr::Path(path) => match path.path.segments.last() {
                    Some(last) => (last.ident.to_string(), call.args.iter().collect()),
                    None => return,
                },
                _ => return,
            },
            Expr::MethodCall(call) => (
                call.method.to_string(),
                std::iter::once(&*call.receiver).chain(&call.args).collect(),
            ),
            _ => return,
        };
        if !JOINING_CALLS.contains(&name.as_str()) {
            return;
        }
        for future in futures {
            if !self.uses_session(future) {
                self.foreign_joined(&name, future);
            }
        }
    }

    /// Visits `args`, treating the parameters of closures among them as the
    /// session when the call is passed the session (`conn.transaction(async
    /// |c| ..)`).
    fn visit_call_args<'ast>(
        &mut self,
        passes_session: bool,
        args: impl Iterator<Item = &'ast Expr>,
    ) {
        for arg in args {
            match arg {
                Expr::Closure(closure) if passes_session => {
                    let before = self.sessions.len();
                    for input in &closure.inputs {
                        bind_names(input, &mut self.sessions);
                    }
                    self.visit_expr_closure(closure);
                    self.sessions.truncate(before);
                }
                other => self.visit_expr(other),
            }
        }
    }

    /// Reports `.` `await` pairs anywhere in `tokens`; returns how many.
    fn scan(&mut self, tokens: TokenStream, report: bool) -> usize {
        let mut found = 0;
        let mut previous: Option<TokenTree> = None;
        for token in tokens {
            match &token {
                TokenTree::Group(group) => found += self.scan(group.stream(), report),
                TokenTree::Ident(ident) if ident == "await" => {
                    if let Some(TokenTree::Punct(dot)) = &previous {
                        if dot.as_char() == '.' {
                            found += 1;
                            if report {
                                let pair: TokenStream =
                                    [TokenTree::Punct(dot.clone()), token.clone()]
                                        .into_iter()
                                        .collect();
                                self.foreign_await(pair);
                            }
                        }
                    }
                }
                _ => {}
            }
            previous = Some(token);
        }
        found
    }

    fn no_await_macro(&mut self, node: &Macro) {
        if let Some(last) = node.path.segments.last() {
            if AWAITING_MACROS.iter().any(|name| last.ident == name) {
                let path = &node.path;
                let bang = node.bang_token;
                self.errors.push(syn::Error::new_spanned(
                    quote!(#path #bang),
                    format!(
                        "`{}!` awaits while session `{}` is open: the connection stays checked \
                         out while this waits; move the awaited work before or after the unit of \
                         work (a separate function) and pass ids between them",
                        last.ident, self.session
                    ),
                ));
            }
        }
        self.scan(node.tokens.clone(), true);
    }

    fn session_only_macro(&mut self, node: &Macro) {
        let Some(last) = node.path.segments.last() else {
            return;
        };
        let name = last.ident.to_string();
        let path = &node.path;
        let bang = node.bang_token;
        if RACING_MACROS.contains(&name.as_str()) {
            self.errors.push(syn::Error::new_spanned(
                quote!(#path #bang),
                format!(
                    "`{name}!` races futures while session `{}` is open: only one of them can \
                     use the session, so the others hold the connection, its transaction open, \
                     while they wait; await the queries one after another, and move the other \
                     work before or after the unit of work",
                    self.session
                ),
            ));
            return;
        }
        let mut tokens = node.tokens.clone();
        if name == "join" || name == "try_join" {
            tokens = strip_biased(tokens);
        }
        match Punctuated::<Expr, Token![,]>::parse_terminated.parse2(tokens) {
            Ok(exprs) => {
                let joining = name == "join" || name == "try_join";
                for expr in &exprs {
                    if joining && !self.uses_session(expr) {
                        self.foreign_joined(&format!("{name}!"), expr);
                    }
                    self.visit_expr(expr);
                }
            }
            Err(_) => {
                if self.scan(node.tokens.clone(), false) > 0 {
                    self.errors.push(syn::Error::new_spanned(
                        quote!(#path #bang),
                        format!(
                            "cannot tell what the `.await`s inside `{name}!` wait for while \
                             session `{}` is open; await outside the macro (bind the result to a \
                             variable first), or move the work before or after the unit of work",
                            self.session
                        ),
                    ));
                }
            }
        }
    }
}

/// `biased;` at the start of `join!` / `try_join!`.
fn strip_biased(tokens: TokenStream) -> TokenStream {
    let trees: Vec<TokenTree> = tokens.clone().into_iter().collect();
    match trees.as_slice() {
        [TokenTree::Ident(ident), TokenTree::Punct(semi), rest @ ..]
            if ident == "biased" && semi.as_char() == ';' =>
        {
            rest.iter().cloned().collect()
        }
        _ => tokens,
    }
}

/// Pushes the names `pat` binds.
fn bind_names(pat: &Pat, names: &mut Vec<String>) {
    match pat {
        Pat::Ident(ident) => names.push(ident.ident.to_string()),
        Pat::Type(typed) => bind_names(&typed.pat, names),
        Pat::Reference(reference) => bind_names(&reference.pat, names),
        Pat::Paren(paren) => bind_names(&paren.pat, names),
        _ => {}
    }
}

impl<'ast> Visit<'ast> for AwaitFinder<'_> {
    fn visit_expr_await(&mut self, node: &'ast ExprAwait) {
        let forbidden = match self.policy {
            AwaitPolicy::NoAwait => true,
            AwaitPolicy::SessionOnly => !self.uses_session(&node.base),
        };
        if forbidden {
            let dot = node.dot_token;
            let await_token = node.await_token;
            self.foreign_await(quote!(#dot #await_token));
        } else {
            self.check_joined(&node.base);
        }
        // `a.await.b().await`, `f(conn, g().await).await`: inner awaits are
        // judged on their own.
        visit::visit_expr_await(self, node);
    }

    fn visit_expr_call(&mut self, node: &'ast syn::ExprCall) {
        if self.policy == AwaitPolicy::NoAwait {
            return visit::visit_expr_call(self, node);
        }
        let passes = node.args.iter().any(|arg| self.is_session_ref(arg));
        self.visit_expr(&node.func);
        self.visit_call_args(passes, node.args.iter());
    }

    fn visit_expr_method_call(&mut self, node: &'ast syn::ExprMethodCall) {
        if self.policy == AwaitPolicy::NoAwait {
            return visit::visit_expr_method_call(self, node);
        }
        let passes = self.is_session_ref(&node.receiver)
            || node.args.iter().any(|arg| self.is_session_ref(arg));
        self.visit_expr(&node.receiver);
        self.visit_call_args(passes, node.args.iter());
    }

    fn visit_local(&mut self, node: &'ast Local) {
        if self.policy == AwaitPolicy::SessionOnly {
            if let Some(init) = &node.init {
                if self.is_session_ref(&init.expr) {
                    bind_names(&node.pat, &mut self.sessions);
                }
            }
        }
        visit::visit_local(self, node);
    }

    fn visit_item(&mut self, _nested: &'ast Item) {
        // A nested fn, impl or mod runs when it is called, not as this body.
    }

    fn visit_macro(&mut self, node: &'ast Macro) {
        match self.policy {
            AwaitPolicy::NoAwait => self.no_await_macro(node),
            AwaitPolicy::SessionOnly => self.session_only_macro(node),
        }
    }
}

#[cfg(test)]
mod tests;
