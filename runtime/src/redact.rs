//! Database URLs without their passwords, for `Debug`, `Display` and logs.
//!
//! Every connection-string form the drivers accept is covered:
//! - URLs (`postgres://`, `postgresql://`, `mysql://`, multi-host
//!   `postgres://u:pw@h1:5432,h2:5433/db`): the password of the user info,
//!   percent-encoded or not, with unencoded `@ : / ? #` in it (the user info
//!   ends at the last `@`), and the value of every secret query parameter
//!   (`?password=`, `&sslpassword=`, ...) up to the next `&`;
//! - libpq `key=value` strings (`host=h password='it\'s a secret'`): the
//!   value of every secret key, quoted or not, with backslash escapes.
//!
//! When the form is ambiguous, more is hidden rather than less. Text printed
//! by a driver (a connect error) is scrubbed of the password as written, as
//! the driver decodes it, and of its alphanumeric pieces (a driver that
//! splits the URL at an unencoded `/` or `@` echoes such a piece as a host or
//! port; a `Debug` print escapes the characters between them).

use std::fmt;

/// Query parameters and `key=value` keys whose values are secrets (compared
/// ignoring ASCII case): libpq's `password` and `sslpassword`, and the
/// spellings other drivers and tools use.
const SECRET_KEYS: &[&str] = &[
    "password",
    "pass",
    "passwd",
    "pwd",
    "sslpassword",
    "ssl_password",
];

/// Pieces of a password between URL delimiters shorter than this are not
/// scrubbed on their own: replacing every `a` in a driver's message would make
/// it unreadable and a one-letter piece says next to nothing about the secret.
const MIN_SCRUBBED_PIECE: usize = 4;

/// What replaces a secret.
const MASK: &str = "***";

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
///
/// let url = RedactedUrl::new("host=db user=app password='s3 cret' dbname=app");
/// assert_eq!(url.to_string(), "host=db user=app password=*** dbname=app");
/// ```
#[derive(Clone)]
pub struct RedactedUrl {
    full: String,
    shown: String,
    /// Every form of every secret to remove from driver text, longest first.
    secrets: Vec<String>,
}

impl RedactedUrl {
    /// Wraps `url`, working out what to hide.
    ///
    /// ```
    /// let url = dbscope_runtime::RedactedUrl::new("mysql://root@127.0.0.1:3306/test");
    /// assert_eq!(url.to_string(), "mysql://root@127.0.0.1:3306/test");
    /// let url = dbscope_runtime::RedactedUrl::new("postgres://h/d?user=u&password=pw");
    /// assert_eq!(url.to_string(), "postgres://h/d?user=u&password=***");
    /// ```
    pub fn new(url: &str) -> Self {
        let spans = if let Some(scheme_end) = url_scheme_end(url) {
            url_secret_spans(url, scheme_end)
        } else {
            key_value_secret_spans(url)
        };
        let spans = merge(spans);
        let mut shown = String::with_capacity(url.len());
        let mut secrets = Vec::new();
        let mut at = 0;
        for span in &spans {
            shown.push_str(&url[at..span.start]);
            shown.push_str(MASK);
            at = span.end;
            secret_forms(&url[span.start..span.end], &mut secrets);
        }
        shown.push_str(&url[at..]);
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        RedactedUrl {
            full: url.to_owned(),
            shown,
            secrets,
        }
    }

    /// The URL to hand to the driver, password included.
    pub(crate) fn expose(&self) -> &str {
        &self.full
    }

    /// `text` with every form of the password replaced by `***`: as written,
    /// percent-decoded, unescaped, and its alphanumeric pieces of 4 or more
    /// characters.
    ///
    /// ```
    /// let url = dbscope_runtime::RedactedUrl::new("postgres://u:pw123@h/d");
    /// assert_eq!(url.scrub("failed for postgres://u:pw123@h/d"), "failed for postgres://u:***@h/d");
    /// let url = dbscope_runtime::RedactedUrl::new("postgres://u:s3cr%40t99@h/d");
    /// assert_eq!(url.scrub("password s3cr@t99 rejected"), "password *** rejected");
    /// ```
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), MASK);
            }
        }
        text
    }
}

/// A byte range of the original string to hide.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Span {
    start: usize,
    end: usize,
}

/// The index of `://` when `url` starts with a URL scheme.
fn url_scheme_end(url: &str) -> Option<usize> {
    let end = url.find("://")?;
    let scheme = &url[..end];
    let valid = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(end)
}

/// The password of the user info and the values of secret query parameters.
fn url_secret_spans(url: &str, scheme_end: usize) -> Vec<Span> {
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let mut spans = Vec::new();
    if let Some(span) = user_info_password(rest) {
        spans.push(Span {
            start: rest_start + span.start,
            end: rest_start + span.end,
        });
    }
    // A secret parameter anywhere after the scheme: a password holding an
    // unencoded `?` may make a driver read the rest as a query.
    for (index, _) in rest.match_indices(['?', '&']) {
        let param = &rest[index + 1..];
        let Some(eq) = param.find('=') else { continue };
        let key = &param[..eq];
        if key.contains(['&', '?', '/', '@']) || !is_secret_key(&percent_decode(key)) {
            continue;
        }
        let value_start = index + 1 + eq + 1;
        let value_end = rest[value_start..]
            .find('&')
            .map_or(rest.len(), |end| value_start + end);
        spans.push(Span {
            start: rest_start + value_start,
            end: rest_start + value_end,
        });
    }
    spans
}

/// The password in `user:password@host...`: the user info ends at the last
/// `@` (a password may hold unencoded `@`, `/`, `?`, `#`), unless the user
/// name would then hold a delimiter, in which case the first `@` ends it.
fn user_info_password(rest: &str) -> Option<Span> {
    let last_at = rest.rfind('@')?;
    let user_end = rest[..last_at].find(':').unwrap_or(last_at);
    let at = if rest[..user_end].contains(['@', '/', '?', '#']) {
        rest.find('@')?
    } else {
        last_at
    };
    let colon = rest[..at].find(':')?;
    if rest[..colon].contains(['/', '?', '#']) {
        return None;
    }
    Some(Span {
        start: colon + 1,
        end: at,
    })
}

/// The values of secret keys in a libpq `key=value` string: keys and values
/// separated by whitespace, `=` optionally surrounded by spaces, values either
/// bare (to the next whitespace) or single-quoted, `\` escaping the next
/// character in both. An unterminated quote hides the rest of the string.
fn key_value_secret_spans(text: &str) -> Vec<Span> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    let skip_space = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        i = skip_space(i);
        if i >= bytes.len() {
            break;
        }
        let key_start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &text[key_start..i];
        i = skip_space(i);
        if i >= bytes.len() || bytes[i] != b'=' {
            // Not a key=value string (a file name, a malformed string):
            // nothing here is known to be a secret.
            break;
        }
        i = skip_space(i + 1);
        let value_start = i;
        if i < bytes.len() && bytes[i] == b'\'' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'\'' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(bytes.len());
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = i.min(bytes.len());
        }
        if is_secret_key(key) && i > value_start {
            spans.push(Span {
                start: value_start,
                end: i,
            });
        }
    }
    spans
}

fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS
        .iter()
        .any(|secret| secret.eq_ignore_ascii_case(key.trim()))
}

/// Sorted, overlapping and touching spans joined.
fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by_key(|span| span.start);
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => merged.push(span),
        }
    }
    merged
}

/// Adds every form in which a driver may print the secret written as `raw`.
fn secret_forms(raw: &str, forms: &mut Vec<String>) {
    let unquoted = raw
        .strip_prefix('\'')
        .map(|inner| inner.strip_suffix('\'').unwrap_or(inner))
        .unwrap_or(raw);
    let unescaped = unescape(unquoted);
    let decoded = percent_decode(raw);
    let form_decoded = percent_decode(&raw.replace('+', " "));
    for form in [raw, unquoted, &unescaped, &decoded, &form_decoded] {
        if form.is_empty() {
            continue;
        }
        forms.push(form.to_owned());
        forms.extend(
            form.split(|c: char| !c.is_alphanumeric())
                .filter(|piece| piece.chars().count() >= MIN_SCRUBBED_PIECE)
                .map(str::to_owned),
        );
    }
}

/// `\x` becomes `x` (libpq's escapes in `key=value` strings).
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `%XX` sequences decoded; invalid UTF-8 replaced, invalid escapes kept.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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

    fn shown(url: &str) -> String {
        RedactedUrl::new(url).to_string()
    }

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
            "/tmp/dir/test.db",
            "file:test.db?mode=ro&cache=shared",
            "postgres://localhost/db",
            "postgres://localhost/db?sslmode=require&application_name=a@b",
            "mysql://root@h/d",
            "mysql://root@h:3306/d?unix_socket=/run/mysqld.sock",
            "host=localhost user=postgres dbname=test",
        ] {
            assert_eq!(shown(raw), raw);
        }
    }

    #[test]
    fn unencoded_delimiters_in_the_password_are_hidden() {
        for (raw, expected) in [
            ("postgres://u:a#b?c/d@h/db", "postgres://u:***@h/db"),
            ("postgres://u:a:b:c@h:5432/db", "postgres://u:***@h:5432/db"),
            (
                "mysql://root:x/y@z#w@127.0.0.1/db",
                "mysql://root:***@127.0.0.1/db",
            ),
            ("postgres://u:p%40ss%2Fw@h/db", "postgres://u:***@h/db"),
        ] {
            assert_eq!(shown(raw), expected, "{raw}");
        }
    }

    #[test]
    fn multi_host_urls_hide_the_password_once() {
        assert_eq!(
            shown("postgres://u:pw@h1:5432,h2:5433/db?target_session_attrs=any"),
            "postgres://u:***@h1:5432,h2:5433/db?target_session_attrs=any"
        );
    }

    #[test]
    fn secret_query_parameters_are_hidden() {
        assert_eq!(
            shown("postgres://h/db?user=u&password=s%26cret&sslmode=require"),
            "postgres://h/db?user=u&password=***&sslmode=require"
        );
        assert_eq!(
            shown("postgresql:///db?host=/run/pg&sslpassword=k&PASS=x"),
            "postgresql:///db?host=/run/pg&sslpassword=***&PASS=***"
        );
    }

    #[test]
    fn key_value_strings_hide_quoted_and_escaped_values() {
        let raw = r"host=h password = 'it\'s a \\secret' sslpassword=k\ ey dbname=d";
        let url = RedactedUrl::new(raw);
        assert_eq!(
            url.to_string(),
            "host=h password = *** sslpassword=*** dbname=d"
        );
        assert_eq!(
            url.scrub(r"auth failed for it's a \secret and k ey"),
            "auth failed for *** and ***"
        );
    }

    #[test]
    fn unterminated_quote_hides_the_rest() {
        assert_eq!(
            shown("host=h password='abc def dbname=d"),
            "host=h password=***"
        );
    }

    #[test]
    fn scrub_removes_decoded_forms_and_pieces() {
        let url = RedactedUrl::new("postgres://u:firstpart/secondpart@127.0.0.1/db");
        // libpq stops the user info at the `/` and reads `firstpart` as a port.
        assert_eq!(
            url.scrub(r#"invalid integer value "firstpart" for connection option "port""#),
            r#"invalid integer value "***" for connection option "port""#
        );
        let url = RedactedUrl::new("mysql://u:p%23ss%3Aword@h/db");
        assert_eq!(url.scrub("denied for p#ss:word"), "denied for ***");
    }
}
