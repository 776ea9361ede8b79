//! Generated connection strings with known passwords, and a leak counter.
//!
//! A deterministic generator (seeded `rand` 0.9 RNG) of every connection-string
//! form the drivers accept: URLs with the password in the user info
//! (percent-encoded, or raw with unencoded `# ? / @ :`), in a secret query
//! parameter, multi-host URLs, MySQL URLs, and libpq `key=value` strings with
//! quoted, escaped and bare values. Every string points at a [`Target`]:
//! `127.0.0.1:1`, where nothing listens so a connect fails at once, or a
//! server that trusts its clients (PostgreSQL `trust` ignores the password),
//! so the whole path of a unit runs with the password in the string.
//!
//! Shared by the property test in `redaction.rs` and by
//! `benches/password_leaks.rs` (included there by path).

#![allow(dead_code)] // each includer uses a part

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Which driver family a string is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Postgres,
    Mysql,
}

/// One generated connection string and the password in it.
#[derive(Clone, Debug)]
pub struct Case {
    pub family: Family,
    /// What the form is, for messages.
    pub form: &'static str,
    /// The connection string.
    pub text: String,
    /// The password as the driver reads it (decoded, unescaped).
    pub password: String,
}

impl Case {
    /// Every string whose appearance in printed text is a leak: the
    /// password, and its pieces between the characters that split it (a
    /// driver that misreads an unencoded delimiter echoes such a piece).
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![self.password.clone()];
        secrets.extend(
            self.password
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|piece| piece.len() >= PIECE_MIN)
                .map(str::to_owned),
        );
        secrets
    }
}

/// Alphanumeric runs of the password are at least this long, so that a piece
/// in printed text is a leak and not a coincidence.
pub const PIECE_MIN: usize = 6;

/// Characters that URLs give a meaning and that passwords hold.
const URL_DELIMITERS: &[char] = &['#', '?', '/', '@', ':'];
/// More characters a password may hold in an encoded URL or a quoted value.
const OTHER_SPECIALS: &[char] = &['&', '=', '%', ' ', '\'', '\\', '+', ',', ';'];

fn alnum_run(rng: &mut StdRng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789";
    let len = rng.random_range(PIECE_MIN..=10);
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A password of 1-3 alphanumeric runs joined by characters from `specials`.
fn password(rng: &mut StdRng, specials: &[char]) -> String {
    let runs = rng.random_range(1..=3);
    let mut out = alnum_run(rng);
    for _ in 1..runs {
        out.push(specials[rng.random_range(0..specials.len())]);
        out.push_str(&alnum_run(rng));
    }
    out
}

/// Every byte outside `A-Za-z0-9-._~` as `%XX`.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A libpq quoted value: `'` and `\` escaped with `\`.
fn quote(text: &str) -> String {
    let mut out = String::from("'");
    for c in text.chars() {
        if matches!(c, '\'' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

fn all_specials() -> Vec<char> {
    URL_DELIMITERS
        .iter()
        .chain(OTHER_SPECIALS)
        .copied()
        .collect()
}

/// Where the generated strings point.
#[derive(Clone, Debug)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
}

impl Target {
    /// `127.0.0.1:1`: nothing listens, connects fail at once.
    pub fn refused() -> Self {
        Target {
            host: "127.0.0.1".into(),
            port: 1,
            user: "app".into(),
            database: "db".into(),
        }
    }

    /// The server of a URL without password, `scheme://user@host:port/db`.
    pub fn from_url(url: &str) -> Option<Self> {
        let rest = url.split_once("://")?.1;
        let (user, rest) = rest.split_once('@')?;
        let (host_port, database) = rest.split_once('/')?;
        let (host, port) = host_port.split_once(':')?;
        Some(Target {
            host: host.into(),
            port: port.parse().ok()?,
            user: user.into(),
            database: database.split('?').next()?.into(),
        })
    }
}

/// One case of each form in turn, `count` in all, from `seed`, all for
/// `target`; with `family`, only the forms of that driver family.
pub fn generate_for(seed: u64, count: usize, target: &Target, family: Option<Family>) -> Vec<Case> {
    let mut cases = Vec::with_capacity(count);
    let mut seed = seed;
    while cases.len() < count {
        cases.extend(
            generate_forms(seed, count, target)
                .into_iter()
                .filter(|case| family.is_none_or(|f| case.family == f)),
        );
        seed = seed.wrapping_add(0x9E37_79B9);
    }
    cases.truncate(count);
    cases
}

/// One case of each form in turn, `count` in all, from `seed`, pointing at
/// `127.0.0.1:1`.
pub fn generate(seed: u64, count: usize) -> Vec<Case> {
    generate_forms(seed, count, &Target::refused())
}

fn generate_forms(seed: u64, count: usize, target: &Target) -> Vec<Case> {
    let Target {
        host,
        port,
        user,
        database,
    } = target;
    let mut rng = StdRng::seed_from_u64(seed);
    let specials = all_specials();
    (0..count)
        .map(|i| {
            let secret_key = ["password", "sslpassword", "PASSWORD", "pass"][rng.random_range(0..4)];
            match i % 9 {
                0 => {
                    let pw = password(&mut rng, &specials);
                    Case {
                        family: Family::Postgres,
                        form: "pg url, encoded user info",
                        text: format!("postgres://{user}:{}@{host}:{port}/{database}?sslmode=disable", percent_encode(&pw)),
                        password: pw,
                    }
                }
                1 => {
                    let pw = password(&mut rng, URL_DELIMITERS);
                    Case {
                        family: Family::Postgres,
                        form: "pg url, unencoded delimiters in user info",
                        text: format!("postgresql://{user}:{pw}@{host}:{port}/{database}"),
                        password: pw,
                    }
                }
                2 => {
                    let pw = password(&mut rng, &specials);
                    Case {
                        family: Family::Postgres,
                        form: "pg url, secret query parameter",
                        text: format!(
                            "postgres://{host}:{port}/{database}?user={user}&{secret_key}={}&application_name=gen",
                            percent_encode(&pw)
                        ),
                        password: pw,
                    }
                }
                3 => {
                    let pw = password(&mut rng, &['?', '/', '@', ':', '#']);
                    Case {
                        family: Family::Postgres,
                        form: "pg url, unencoded query parameter",
                        text: format!("postgres://{user}@{host}:{port}/{database}?password={pw}"),
                        password: pw,
                    }
                }
                4 => {
                    let pw = password(&mut rng, &specials);
                    Case {
                        family: Family::Postgres,
                        form: "pg multi-host url",
                        text: format!(
                            "postgres://{user}:{}@{host}:{port},{host}:{port}/{database}?target_session_attrs=any",
                            percent_encode(&pw)
                        ),
                        password: pw,
                    }
                }
                5 => {
                    let pw = password(&mut rng, &specials);
                    Case {
                        family: Family::Postgres,
                        form: "libpq key=value, quoted",
                        text: format!(
                            "host={host} port={port} user={user} {secret_key} = {} dbname={database}",
                            quote(&pw)
                        ),
                        password: pw,
                    }
                }
                6 => {
                    let pw = password(&mut rng, &['#', '?', '/', '@', ':', '&', '=', '\'']);
                    let bare: String = pw
                        .chars()
                        .flat_map(|c| (c == '\'').then_some('\\').into_iter().chain([c]))
                        .collect();
                    Case {
                        family: Family::Postgres,
                        form: "libpq key=value, bare",
                        text: format!("dbname={database} password={bare} host={host} port={port} user={user}"),
                        password: pw,
                    }
                }
                7 => {
                    let pw = password(&mut rng, &specials);
                    Case {
                        family: Family::Mysql,
                        form: "mysql url, encoded user info",
                        text: format!("mysql://{user}:{}@{host}:{port}/{database}", percent_encode(&pw)),
                        password: pw,
                    }
                }
                _ => {
                    let pw = password(&mut rng, URL_DELIMITERS);
                    Case {
                        family: Family::Mysql,
                        form: "mysql url, unencoded delimiters in user info",
                        text: format!("mysql://{user}:{pw}@{host}:{port}/{database}?ssl_mode=DISABLED"),
                        password: pw,
                    }
                }
            }
        })
        .collect()
}

/// Occurrences of `case`'s password, or of a piece of it, in `printed`.
pub fn leaks(case: &Case, printed: &str) -> usize {
    case.secrets()
        .iter()
        .map(|secret| printed.matches(secret.as_str()).count())
        .sum()
}

/// Leaks of every case in what `show` prints for it.
pub fn leaks_over(cases: &[Case], mut show: impl FnMut(&Case) -> Vec<String>) -> usize {
    cases
        .iter()
        .map(|case| {
            show(case)
                .iter()
                .map(|printed| leaks(case, printed))
                .sum::<usize>()
        })
        .sum()
}
