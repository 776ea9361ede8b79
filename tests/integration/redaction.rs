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
