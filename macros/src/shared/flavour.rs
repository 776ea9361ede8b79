//! How a function's body runs relative to its caller.

/// How the body runs relative to the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavour {
    /// A plain `fn`: the body runs on the caller's thread.
    Sync,
    /// An `async fn` over a blocking connection: the wait for a connection is
    /// async, the body runs in one synchronous stretch.
    Async,
    /// An `async fn` over a diesel-async connection: the body awaits its
    /// queries inside the transaction (chosen by the expansion from the
    /// session's [`AwaitPolicy`](crate::await_check::AwaitPolicy)).
    Native,
}

impl Flavour {
    /// [`Flavour::Async`] for an `async fn`, [`Flavour::Sync`] otherwise.
    pub(crate) fn of(sig: &syn::Signature) -> Flavour {
        if sig.asyncness.is_some() {
            Flavour::Async
        } else {
            Flavour::Sync
        }
    }
}
