//! Finds `.await`s where a session is open, and reports those its
//! [`AwaitPolicy`] forbids. Used by `#[unit_of_work]` (the session is open for
//! the whole body) and by `#[checked]` (sessions are found in the body:
//! parameters of a connection type and values checked out of a factory or
//! pool, open from their `let` until they are dropped, consumed or go out of
//! scope).
//!
//! A blocking diesel connection stays checked out for as long as the body
//! runs, so any wait inside it (a remote call, a sleep, another task) holds a
//! pooled connection idle. Under [`AwaitPolicy::NoAwait`] every `.await` in the
//! body is an error, including those inside async blocks and closures (they may
//! be driven while the session is open) and inside macro invocations, whose
//! tokens are scanned conservatively. Futures handed to `spawn_after_commit`
//! or an `after_commit` hook run after the transaction ended and are not
//! looked at.
//!
//! An async connection (diesel-async) must stay open across the `.await`s of
//! its own queries, and only those: under [`AwaitPolicy::SessionOnly`] an
//! `.await` is allowed when the awaited future holds the session (a query run
//! on it, a call it is passed to, a value that carries it: a reborrow a helper
//! handed back, a struct wrapping it, a query future stored in a local),
//! possibly wrapped (`timeout(d, q.execute(conn))`); any other `.await` is an
//! error on that `.await`. A value computed by an awaited query (`load(conn)
//! .await?.title`) is data, not the session: a call given it awaits foreign
//! work. Names that shadow the session (`let conn = row.id`, a loop or closure
//! variable) are not the session in their scope. Async blocks and closures
//! that do not mention the session are judged where they are awaited, not
//! where they are written (a future returned out of the unit is awaited after
//! it). Joins (`join!`, `try_join!`, `future::join(..)`) must use the session
//! in every future they await; `select!` is rejected; macros known not to
//! await (formatting, assertions, logging) are parsed as expressions and
//! analysed; any other macro is rejected, since what it expands to (an
//! `.await` of foreign work) cannot be seen. Nested items are not the body and
//! are not entered.

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
    "AsyncPooledConnection",
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
    type_name_is(ty, |name| {
        ASYNC_CONNECTIONS.contains(&name)
            || (name.starts_with("Async") && name.ends_with("Connection"))
    })
}

/// Whether `ty`, through references, groups and parentheses, is a path
/// whose last segment's name meets `test`.
fn type_name_is(ty: &Type, test: impl Fn(&str) -> bool) -> bool {
    match ty {
        Type::Reference(reference) => type_name_is(&reference.elem, test),
        Type::Group(group) => type_name_is(&group.elem, test),
        Type::Paren(paren) => type_name_is(&paren.elem, test),
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .is_some_and(|segment| test(&segment.ident.to_string())),
        _ => false,
    }
}

/// Macros known to await their arguments without a `.await` in their tokens.
const AWAITING_MACROS: &[&str] = &["join", "try_join", "select", "select_biased"];

/// Macros that race their futures: never analysable as session work.
const RACING_MACROS: &[&str] = &["select", "select_biased"];

/// Macros known to expand to no `.await` of their own: what they await is
/// written in their arguments, which are analysed.
const NON_AWAITING_MACROS: &[&str] = &[
    // std
    "assert",
    "assert_eq",
    "assert_ne",
    "cfg",
    "column",
    "concat",
    "dbg",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "env",
    "eprint",
    "eprintln",
    "file",
    "format",
    "format_args",
    "include_bytes",
    "include_str",
    "line",
    "matches",
    "module_path",
    "option_env",
    "panic",
    "print",
    "println",
    "stringify",
    "todo",
    "unimplemented",
    "unreachable",
    "vec",
    "write",
    "writeln",
    // log and tracing
    "trace",
    "debug",
    "info",
    "warn",
    "error",
    "event",
    "span",
    "trace_span",
    "debug_span",
    "info_span",
    "warn_span",
    "error_span",
    // serde_json
    "json",
];

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

/// Calls whose arguments run after the transaction ended: the futures and
/// hooks they are given may await anything.
const AFTER_COMMIT_CALLS: &[&str] = &["spawn_after_commit", "after_commit"];

/// Zero-argument methods whose result, once awaited (or not), is a pooled
/// connection or a session: `factory.checkout().await?`, `factory.session()?`,
/// `pool.get().await?`.
const CHECKOUTS: &[&str] = &["checkout", "session", "get", "get_owned", "get_timeout"];

/// Zero-argument async methods of locks: awaited on a value that carries the
/// session, they give a guard that carries it too.
const LOCKS: &[&str] = &[
    "lock",
    "lock_owned",
    "read",
    "write",
    "read_owned",
    "write_owned",
];

/// Where the sessions of a body come from.
pub(crate) enum Sessions<'a> {
    /// A unit of work: `name` is open for the whole body. `factory` is where
    /// the unit's sessions come from (`db`, `self.db`), to recognise a call
    /// that opens a second unit.
    Unit {
        name: &'a str,
        factory: Option<String>,
    },
    /// Hand-held code: `params` are the parameters of a connection type;
    /// more are found where the body checks them out.
    HandHeld { params: Vec<String> },
}

/// Reports every `.await` in `body` that `policy` forbids, one error each.
pub(crate) fn check(
    body: &Block,
    sessions: Sessions<'_>,
    policy: AwaitPolicy,
    errors: &mut Errors,
) {
    let (bindings, unit, factory) = match sessions {
        Sessions::Unit { name, factory } => {
            (vec![Binding::session(name)], Some(name.to_owned()), factory)
        }
        Sessions::HandHeld { params } => (
            params.iter().map(|name| Binding::session(name)).collect(),
            None,
            None,
        ),
    };
    let mut finder = AwaitFinder {
        unit,
        factory,
        bindings,
        policy,
        errors,
    };
    finder.visit_block(body);
}

/// A name in scope: the session (or a value carrying it), or a name that
/// shadows one.
struct Binding {
    name: String,
    session: bool,
}

impl Binding {
    fn session(name: &str) -> Binding {
        Binding {
            name: name.to_owned(),
            session: true,
        }
    }
}

struct AwaitFinder<'a> {
    /// The unit's session name as the user wrote it, for messages; `None`
    /// for hand-held code.
    unit: Option<String>,
    /// The unit's factory expression, as tokens.
    factory: Option<String>,
    /// Names in scope, innermost last: the later entry of a name wins.
    bindings: Vec<Binding>,
    policy: AwaitPolicy,
    errors: &'a mut Errors,
}

impl AwaitFinder<'_> {
    /// The session open here, for messages: the unit's, or the innermost
    /// hand-held one.
    fn open_session(&self) -> Option<String> {
        if let Some(unit) = &self.unit {
            return Some(unit.clone());
        }
        self.bindings
            .iter()
            .rev()
            .find(|binding| binding.session && self.is_session(&binding.name))
            .map(|binding| binding.name.clone())
    }

    fn foreign_await(&mut self, tokens: TokenStream, base: Option<&Expr>) {
        let Some(session) = self.open_session() else {
            return;
        };
        if let (Some(base), Some(factory)) = (base, &self.factory) {
            if let Some(call) = self.call_given_factory(base, factory) {
                let message = format!(
                    "`.await` on `{call}`, which is given factory `{factory}` while session \
                     `{session}` is open: it opens a unit of work of its own, on a second \
                     connection, outside this transaction (a pool of one waits forever); \
                     compose instead: do that work through a function that takes the \
                     session (`helper(&mut *{session}, ..)`), so it joins this transaction"
                );
                self.errors.push(syn::Error::new_spanned(tokens, message));
                return;
            }
        }
        let message = match (self.policy, self.unit.is_some()) {
            (AwaitPolicy::NoAwait, _) => format!(
                "`.await` while session `{session}` is open: the connection stays checked out \
                 while this waits; move the awaited work before or after the unit of work (a \
                 separate function) and pass ids between them"
            ),
            (AwaitPolicy::SessionOnly, true) => format!(
                "`.await` on work that does not use session `{session}`: the connection stays \
                 checked out, its transaction open, while this waits; await only queries on the \
                 session (or calls passed it) here, and move this work before or after the unit \
                 of work (a separate function), passing ids between them"
            ),
            (AwaitPolicy::SessionOnly, false) => format!(
                "`.await` on work that does not use `{session}` while it holds a pooled \
                 connection: the connection stays checked out while this waits; end it first \
                 (`drop({session})`, or scope its work in a block or a `#[unit_of_work]`), or \
                 await this before checking it out"
            ),
        };
        self.errors.push(syn::Error::new_spanned(tokens, message));
    }

    /// The name of the call `base` makes when one of its arguments is the
    /// unit's factory (`other_unit(db, id)`).
    fn call_given_factory(&self, base: &Expr, factory: &str) -> Option<String> {
        let is_factory = |arg: &Expr| {
            let mut arg = arg;
            while let Expr::Reference(reference) = arg {
                arg = &reference.expr;
            }
            arg.to_token_stream().to_string() == *factory
        };
        match base {
            Expr::Try(inner) => self.call_given_factory(&inner.expr, factory),
            Expr::Paren(inner) => self.call_given_factory(&inner.expr, factory),
            Expr::Call(call) if call.args.iter().any(is_factory) => match &*call.func {
                Expr::Path(path) => path
                    .path
                    .segments
                    .last()
                    .map(|segment| segment.ident.to_string()),
                _ => None,
            },
            Expr::MethodCall(call) if call.args.iter().any(is_factory) => {
                Some(call.method.to_string())
            }
            _ => None,
        }
    }

    fn foreign_joined(&mut self, what: &str, future: &dyn ToTokens) {
        let Some(session) = self.open_session() else {
            return;
        };
        self.errors.push(syn::Error::new_spanned(
            future,
            format!(
                "`{what}` awaits this while session `{session}` is open, and it does not use the \
                 session: the connection stays checked out, its transaction open, while it \
                 waits; move this work before or after the unit of work (a separate function) \
                 and pass ids between them"
            ),
        ));
    }

    /// Whether `name` is the session or bound to it here.
    fn is_session(&self, name: &str) -> bool {
        self.bindings
            .iter()
            .rev()
            .find(|binding| binding.name == name)
            .is_some_and(|binding| binding.session)
    }

    /// Whether a session is open here.
    fn any_open(&self) -> bool {
        self.unit.is_some()
            || self
                .bindings
                .iter()
                .any(|binding| binding.session && self.is_session(&binding.name))
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

    /// Whether the future (or value) `expr` evaluates to holds the session:
    /// a call or method call it is passed to (or whose receiver it is),
    /// possibly wrapped in other calls, a struct or tuple holding it. The
    /// result of an `.await` is a value the awaited work produced, not the
    /// session.
    fn uses_session(&self, expr: &Expr) -> bool {
        match expr {
            Expr::Path(_) => self.is_session_ref(expr),
            Expr::Reference(reference) => self.uses_session(&reference.expr),
            Expr::Unary(unary) => self.uses_session(&unary.expr),
            Expr::Paren(paren) => self.uses_session(&paren.expr),
            Expr::Group(group) => self.uses_session(&group.expr),
            Expr::Field(field) => self.uses_session(&field.base),
            Expr::Try(try_expr) => self.uses_session(&try_expr.expr),
            Expr::Await(_) => false,
            Expr::Call(call) => call.args.iter().any(|arg| self.uses_session(arg)),
            Expr::MethodCall(call) => {
                self.uses_session(&call.receiver)
                    || call.args.iter().any(|arg| self.uses_session(arg))
            }
            Expr::Struct(init) => init
                .fields
                .iter()
                .any(|field| self.uses_session(&field.expr)),
            Expr::Tuple(tuple) => tuple.elems.iter().any(|elem| self.uses_session(elem)),
            Expr::Macro(mac) => self.mentions(mac.mac.tokens.clone()),
            Expr::Closure(closure) => self.mentions(closure.body.to_token_stream()),
            Expr::Async(_) | Expr::Block(_) | Expr::Unsafe(_) | Expr::If(_) | Expr::Match(_) => {
                self.mentions(expr.to_token_stream())
            }
            _ => false,
        }
    }

    /// Whether a `let` bound to `init` binds a value that carries the
    /// session: the session itself, or something computed from it without
    /// awaiting (a reborrow a helper handed back, a wrapper, a query future).
    fn carries_session(&self, init: &Expr) -> bool {
        self.is_session_ref(init)
            || (self.policy == AwaitPolicy::SessionOnly
                && (self.uses_session(init) || self.is_guard_of_session(init)))
    }

    /// `shared.lock().await` where `shared` carries the session: the guard
    /// derefs to it.
    fn is_guard_of_session(&self, init: &Expr) -> bool {
        match init {
            Expr::Try(inner) => self.is_guard_of_session(&inner.expr),
            Expr::Await(inner) => match &*inner.base {
                Expr::MethodCall(call) => {
                    call.args.is_empty()
                        && LOCKS.contains(&call.method.to_string().as_str())
                        && self.uses_session(&call.receiver)
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// Whether `init` checks a connection out: `f.checkout().await?`,
    /// `f.session()?`, `pool.get().await`.
    fn is_checkout(init: &Expr) -> bool {
        match init {
            Expr::Try(inner) => Self::is_checkout(&inner.expr),
            Expr::Await(inner) => Self::is_checkout(&inner.base),
            Expr::Paren(inner) => Self::is_checkout(&inner.expr),
            Expr::MethodCall(call) => {
                call.args.is_empty() && CHECKOUTS.contains(&call.method.to_string().as_str())
            }
            _ => false,
        }
    }

    /// Binds the names `pat` introduces: to the session when `session`, else
    /// as names that shadow it.
    fn bind(&mut self, pat: &Pat, session: bool) {
        let mut names = Vec::new();
        pattern_names(pat, &mut names);
        self.bindings
            .extend(names.into_iter().map(|name| Binding { name, session }));
    }

    /// Runs `visit` in a scope of its own: names bound inside end with it.
    fn scoped(&mut self, visit: impl FnOnce(&mut Self)) {
        let before = self.bindings.len();
        visit(self);
        self.bindings.truncate(before);
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
                Expr::Closure(closure) if passes_session => self.scoped(|this| {
                    for input in &closure.inputs {
                        this.bind(input, true);
                    }
                    this.visit_expr(&closure.body);
                }),
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
                                self.foreign_await(pair, None);
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
                let Some(session) = self.open_session() else {
                    return;
                };
                let path = &node.path;
                let bang = node.bang_token;
                self.errors.push(syn::Error::new_spanned(
                    quote!(#path #bang),
                    format!(
                        "`{}!` awaits while session `{session}` is open: the connection stays \
                         checked out while this waits; move the awaited work before or after the \
                         unit of work (a separate function) and pass ids between them",
                        last.ident
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
        let Some(session) = self.open_session() else {
            return;
        };
        let name = last.ident.to_string();
        let path = &node.path;
        let bang = node.bang_token;
        if RACING_MACROS.contains(&name.as_str()) {
            self.errors.push(syn::Error::new_spanned(
                quote!(#path #bang),
                format!(
                    "`{name}!` races futures while session `{session}` is open: only one of them \
                     can use the session, so the others hold the connection, its transaction \
                     open, while they wait; await the queries one after another, and move the \
                     other work before or after the unit of work"
                ),
            ));
            return;
        }
        let joining = name == "join" || name == "try_join";
        if !joining && !NON_AWAITING_MACROS.contains(&name.as_str()) {
            self.errors.push(syn::Error::new_spanned(
                quote!(#path #bang),
                format!(
                    "cannot see what `{name}!` expands to while session `{session}` is open: an \
                     `.await` of other work inside it would hold the connection, its transaction \
                     open; write the `.await`s in the body (a helper `async fn` that takes the \
                     session works), or use the macro before or after the unit of work"
                ),
            ));
            return;
        }
        let mut tokens = node.tokens.clone();
        if joining {
            tokens = strip_biased(tokens);
        }
        match Punctuated::<Expr, Token![,]>::parse_terminated.parse2(tokens) {
            Ok(exprs) => {
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
                             session `{session}` is open; await outside the macro (bind the \
                             result to a variable first), or move the work before or after the \
                             unit of work"
                        ),
                    ));
                }
            }
        }
    }

    /// Visits a closure or async block whose body is `tokens`. It is judged
    /// where it is written under `NoAwait`, and when it uses the session.
    /// Otherwise its future is judged where it is awaited; in hand-held code
    /// its body is still read, for connections it checks out itself, with the
    /// outer sessions out of sight (a spawned task does not hold them).
    fn visit_nested(&mut self, tokens: TokenStream, visit: impl FnOnce(&mut Self)) {
        if self.policy == AwaitPolicy::NoAwait || self.mentions(tokens) {
            visit(self);
        } else if self.unit.is_none() {
            self.scoped(|this| {
                let open: Vec<String> = this
                    .bindings
                    .iter()
                    .filter(|binding| binding.session)
                    .map(|binding| binding.name.clone())
                    .collect();
                this.bindings.extend(open.into_iter().map(|name| Binding {
                    name,
                    session: false,
                }));
                visit(this);
            });
        }
    }

    /// Ends a hand-held session named by `expr` (`drop(conn)`,
    /// `session.commit()`): the name is no longer a session after this.
    fn end_session(&mut self, expr: &Expr) {
        if self.unit.is_some() || !self.is_session_ref(expr) {
            return;
        }
        let mut expr = expr;
        while let Expr::Reference(reference) = expr {
            expr = &reference.expr;
        }
        if let Expr::Path(path) = expr {
            if let Some(ident) = path.path.get_ident() {
                self.bindings.push(Binding {
                    name: ident.to_string(),
                    session: false,
                });
            }
        }
    }
}

/// The last segment of the path a call calls (`spawn_after_commit` in
/// `dbscope::spawn_after_commit(..)`).
fn called_name(func: &Expr) -> Option<String> {
    match func {
        Expr::Path(path) => path
            .path
            .segments
            .last()
            .map(|segment| segment.ident.to_string()),
        _ => None,
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
fn pattern_names(pat: &Pat, names: &mut Vec<String>) {
    struct Names<'a>(&'a mut Vec<String>);
    impl<'ast> Visit<'ast> for Names<'_> {
        fn visit_pat_ident(&mut self, node: &'ast syn::PatIdent) {
            self.0.push(node.ident.to_string());
            visit::visit_pat_ident(self, node);
        }
        fn visit_expr(&mut self, _: &'ast Expr) {
            // Constants in patterns (`1..=N`) bind nothing.
        }
    }
    Names(names).visit_pat(pat);
}

impl<'ast> Visit<'ast> for AwaitFinder<'_> {
    fn visit_expr_await(&mut self, node: &'ast ExprAwait) {
        let forbidden = self.any_open()
            && match self.policy {
                AwaitPolicy::NoAwait => true,
                AwaitPolicy::SessionOnly => !self.uses_session(&node.base),
            };
        if forbidden {
            let dot = node.dot_token;
            let await_token = node.await_token;
            self.foreign_await(quote!(#dot #await_token), Some(&node.base));
        } else {
            self.check_joined(&node.base);
        }
        // `a.await.b().await`, `f(conn, g().await).await`: inner awaits are
        // judged on their own.
        visit::visit_expr_await(self, node);
    }

    fn visit_expr_call(&mut self, node: &'ast syn::ExprCall) {
        let called = called_name(&node.func);
        if called
            .as_deref()
            .is_some_and(|name| AFTER_COMMIT_CALLS.contains(&name))
        {
            // Runs after the transaction ended.
            return self.visit_expr(&node.func);
        }
        if self.policy == AwaitPolicy::NoAwait {
            return visit::visit_expr_call(self, node);
        }
        let passes = node.args.iter().any(|arg| self.is_session_ref(arg));
        self.visit_expr(&node.func);
        self.visit_call_args(passes, node.args.iter());
        if called.as_deref() == Some("drop") {
            if let Some(arg) = node.args.first() {
                self.end_session(arg);
            }
        }
    }

    fn visit_expr_method_call(&mut self, node: &'ast syn::ExprMethodCall) {
        if AFTER_COMMIT_CALLS.contains(&node.method.to_string().as_str()) {
            // Runs after the transaction ended.
            return self.visit_expr(&node.receiver);
        }
        if self.policy == AwaitPolicy::NoAwait {
            return visit::visit_expr_method_call(self, node);
        }
        let passes = self.is_session_ref(&node.receiver)
            || node.args.iter().any(|arg| self.is_session_ref(arg));
        self.visit_expr(&node.receiver);
        self.visit_call_args(passes, node.args.iter());
        if node.method == "commit" || node.method == "rollback" {
            // `session.commit()?` ends a hand-held blocking session.
            self.end_session(&node.receiver);
        }
    }

    fn visit_local(&mut self, node: &'ast Local) {
        let session = node.init.as_ref().is_some_and(|init| {
            self.carries_session(&init.expr)
                || (self.unit.is_none() && Self::is_checkout(&init.expr))
        }) || (self.unit.is_none() && typed_as_connection(&node.pat));
        // The initialiser runs before the names exist.
        if let Some(init) = &node.init {
            self.visit_expr(&init.expr);
            if let Some((_, diverge)) = &init.diverge {
                self.visit_expr(diverge);
            }
        }
        self.bind(&node.pat, session);
    }

    fn visit_block(&mut self, node: &'ast Block) {
        self.scoped(|this| visit::visit_block(this, node));
    }

    fn visit_expr_closure(&mut self, node: &'ast syn::ExprClosure) {
        self.visit_nested(node.body.to_token_stream(), |this| {
            this.scoped(|this| {
                for input in &node.inputs {
                    this.bind(input, false);
                }
                this.visit_expr(&node.body);
            });
        });
    }

    fn visit_expr_async(&mut self, node: &'ast syn::ExprAsync) {
        self.visit_nested(node.block.to_token_stream(), |this| {
            visit::visit_expr_async(this, node);
        });
    }

    fn visit_expr_for_loop(&mut self, node: &'ast syn::ExprForLoop) {
        self.visit_expr(&node.expr);
        self.scoped(|this| {
            this.bind(&node.pat, false);
            this.visit_block(&node.body);
        });
    }

    fn visit_arm(&mut self, node: &'ast syn::Arm) {
        self.scoped(|this| {
            this.bind(&node.pat, false);
            if let Some((_, guard)) = &node.guard {
                this.visit_expr(guard);
            }
            this.visit_expr(&node.body);
        });
    }

    fn visit_expr_if(&mut self, node: &'ast syn::ExprIf) {
        self.scoped(|this| {
            this.visit_expr(&node.cond);
            this.visit_block(&node.then_branch);
        });
        if let Some((_, else_branch)) = &node.else_branch {
            self.visit_expr(else_branch);
        }
    }

    fn visit_expr_while(&mut self, node: &'ast syn::ExprWhile) {
        self.scoped(|this| {
            this.visit_expr(&node.cond);
            this.visit_block(&node.body);
        });
    }

    fn visit_expr_let(&mut self, node: &'ast syn::ExprLet) {
        self.visit_expr(&node.expr);
        let session = self.is_session_ref(&node.expr);
        self.bind(&node.pat, session);
    }

    fn visit_item(&mut self, _nested: &'ast Item) {
        // A nested fn, impl or mod runs when it is called, not as this body.
    }

    fn visit_macro(&mut self, node: &'ast Macro) {
        if !self.any_open() {
            return;
        }
        match self.policy {
            AwaitPolicy::NoAwait => self.no_await_macro(node),
            AwaitPolicy::SessionOnly => self.session_only_macro(node),
        }
    }
}

/// `let conn: AsyncPooledConnection<..> = ..`, `let c: &mut PgConnection`.
fn typed_as_connection(pat: &Pat) -> bool {
    match pat {
        Pat::Type(typed) => is_connection_like(&typed.ty),
        _ => false,
    }
}

/// A type whose last segment names a connection or a session.
pub(crate) fn is_connection_like(ty: &Type) -> bool {
    is_async_connection(ty)
        || type_name_is(ty, |name| name.ends_with("Connection") || name == "Session")
}

#[cfg(test)]
mod tests;
