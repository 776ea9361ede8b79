//! Errors and factories never print passwords. Port 1 refuses connections, so
//! these need no server.

use std::time::Duration;

use dbscope::{Phase, PoolableConnection, SessionFactory};

const PASSWORD: &str = "supersecret";

fn password_never_printed<C: PoolableConnection>(url: &str) {
    assert!(url.contains(PASSWORD));
    let error = SessionFactory::<C>::builder(url)
        .checkout_timeout(Duration::from_secs(2))
        .build()
        .expect_err("port 1 refuses connections");
    assert_eq!(error.phase(), Phase::Connect, "{error}");
    for shown in [
        error.to_string(),
        format!("{error:?}"),
        format!("{error:#?}"),
    ] {
        assert!(!shown.contains(PASSWORD), "password printed: {shown}");
    }

    let factory = SessionFactory::<C>::builder(url)
        .checkout_timeout(Duration::from_secs(2))
        .build_lazy();
    for shown in [
        format!("{factory:?}"),
        format!("{factory:#?}"),
        factory.url().to_string(),
    ] {
        assert!(!shown.contains(PASSWORD), "password printed: {shown}");
        assert!(
            shown.contains("***"),
            "the URL should show where the password was: {shown}"
        );
    }
    let error = factory
        .session()
        .expect_err("connect fails at first checkout");
    assert_eq!(error.phase(), Phase::Connect);
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(!shown.contains(PASSWORD), "password printed: {shown}");
    }
    assert_eq!(
        factory.stats().open,
        0,
        "a failed connect must give its slot back"
    );
}

#[cfg(feature = "postgres")]
#[test]
fn pg_errors_never_print_passwords() {
    password_never_printed::<diesel::PgConnection>("postgres://postgres:supersecret@127.0.0.1:1/x");
}

#[cfg(feature = "mysql")]
#[test]
fn mysql_errors_never_print_passwords() {
    password_never_printed::<diesel::MysqlConnection>("mysql://root:supersecret@127.0.0.1:1/x");
}

/// Property: over generated connection strings of every form, neither the
/// redacted URL (`Display`, `Debug`) nor driver text scrubbed by it shows the
/// password or a piece of it, and the host stays visible.
#[test]
fn generated_connection_strings_never_show_their_password() {
    use crate::conn_strings::{generate, leaks, leaks_over};
    use dbscope::RedactedUrl;

    for seed in 0..20 {
        let cases = generate(seed, 450);
        let leaked = leaks_over(&cases, |case| {
            let url = RedactedUrl::new(&case.text);
            let shown = url.to_string();
            assert!(
                shown.contains("127.0.0.1") && shown.contains("***"),
                "{}: {:?} shown as {shown:?}",
                case.form,
                case.text
            );
            // A driver echoing the whole string, the password, and the
            // password inside a message.
            let echoed = url.scrub(&format!(
                "error for {} with password {} ({:?})",
                case.text, case.password, case.password
            ));
            vec![shown, format!("{url:?}"), format!("{url:#?}"), echoed]
        });
        if leaked > 0 {
            let first = cases.iter().find_map(|case| {
                let url = RedactedUrl::new(&case.text);
                let echoed = url.scrub(&format!(
                    "{} {} {:?}",
                    case.text, case.password, case.password
                ));
                (leaks(case, &url.to_string()) + leaks(case, &echoed) > 0)
                    .then(|| format!("{case:?} shown as {url}, echoed as {echoed}"))
            });
            panic!("seed {seed}: {leaked} leaks; first: {first:?}");
        }
    }
}

/// The leak counter is not blind: a redactor that only knows
/// `user:password@host` (what dbscope had before issue 12) leaks on the
/// generated strings.
#[test]
fn leak_counter_catches_a_redactor_that_knows_only_user_info() {
    use crate::conn_strings::{generate, leaks_over};

    fn user_info_only(text: &str) -> String {
        let Some(start) = text.find("://").map(|i| i + 3) else {
            return text.to_owned();
        };
        let rest = &text[start..];
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        match (rest[..end].rfind('@'), rest[..end].find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                format!("{}{}***{}", &text[..start], &rest[..=colon], &rest[at..])
            }
            _ => text.to_owned(),
        }
    }

    let cases = generate(7, 450);
    let leaked = leaks_over(&cases, |case| vec![user_info_only(&case.text)]);
    assert!(leaked > 100, "only {leaked} leaks counted");
    // And hiding nothing leaks every case at least once.
    assert!(leaks_over(&cases, |case| vec![case.text.clone()]) >= cases.len());
}
