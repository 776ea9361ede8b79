//! Database URLs without their passwords, for `Debug`, `Display` and logs.

use std::fmt;

/// A database URL that never shows its password.
///
/// `Debug` and `Display` print the URL with the password replaced by `***`;
/// the full URL is only handed to the driver.
///
/// ```
/// use dbscope_runtime::RedactedUrl;
/// let url = RedactedUrl::new("postgres://app:s3cret@db.internal/app");
/// assert_eq!(url.to_string(), "postgres://app:***@db.internal/app");
/// assert!(!format!("{url:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct RedactedUrl {
    full: String,
    shown: String,
    password: Option<String>,
}

impl RedactedUrl {
    /// Wraps `url`, working out what to hide.
    ///
    /// ```
    /// let url = dbscope_runtime::RedactedUrl::new("mysql://root@127.0.0.1:3306/test");
    /// assert_eq!(url.to_string(), "mysql://root@127.0.0.1:3306/test");
    /// ```
    pub fn new(url: &str) -> Self {
        let (shown, password) = split_password(url);
        RedactedUrl {
            full: url.to_owned(),
            shown,
            password,
        }
    }

    /// The URL to hand to the driver, password included.
    pub(crate) fn expose(&self) -> &str {
        &self.full
    }

    /// `text` with every occurrence of the password replaced by `***`.
    ///
    /// ```
    /// let url = dbscope_runtime::RedactedUrl::new("postgres://u:pw123@h/d");
    /// assert_eq!(url.scrub("failed for postgres://u:pw123@h/d"), "failed for postgres://u:***@h/d");
    /// ```
    pub fn scrub(&self, text: &str) -> String {
        match &self.password {
            Some(password) if !password.is_empty() => text.replace(password.as_str(), "***"),
            _ => text.to_owned(),
        }
    }
}

/// Splits `scheme://user:password@host...` into the URL shown and the password.
fn split_password(url: &str) -> (String, Option<String>) {
    let Some(scheme_end) = url.find("://") else {
        return (url.to_owned(), None);
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return (url.to_owned(), None);
    };
    let user_info = &authority[..at];
    let Some(colon) = user_info.find(':') else {
        return (url.to_owned(), None);
    };
    let password = &user_info[colon + 1..];
    let shown = format!(
        "{}://{}:***{}",
        &url[..scheme_end],
        &user_info[..colon],
        &rest[at..]
    );
    (shown, Some(password.to_owned()))
}

impl fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedactedUrl").field(&self.shown).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::RedactedUrl;

    #[test]
    fn password_with_at_sign_and_query_is_hidden() {
        let url = RedactedUrl::new("postgres://app:p@ss@db:5432/app?sslmode=require");
        assert_eq!(
            url.to_string(),
            "postgres://app:***@db:5432/app?sslmode=require"
        );
        assert_eq!(
            url.expose(),
            "postgres://app:p@ss@db:5432/app?sslmode=require"
        );
    }

    #[test]
    fn urls_without_password_are_unchanged() {
        for raw in [
            "file:test.db",
            ":memory:",
            "postgres://localhost/db",
            "mysql://root@h/d",
        ] {
            assert_eq!(RedactedUrl::new(raw).to_string(), raw);
        }
    }
}
