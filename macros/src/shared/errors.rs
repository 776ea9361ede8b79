//! Collects independent errors so one expansion reports all of them at once.

/// Errors found so far, in the order they were found.
#[derive(Default)]
pub(crate) struct Errors(Vec<syn::Error>);

impl Errors {
    /// Adds one error.
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.0.push(error);
    }

    /// Adds every error of `other`.
    pub(crate) fn extend(&mut self, other: Errors) {
        self.0.extend(other.0);
    }

    /// Whether no error was found.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// All errors folded into one with [`syn::Error::combine`], if any.
    pub(crate) fn combined(self) -> Option<syn::Error> {
        let mut errors = self.0.into_iter();
        let mut first = errors.next()?;
        for error in errors {
            first.combine(error);
        }
        Some(first)
    }
}
