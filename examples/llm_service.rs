//! An HTTP service shaped like an LLM app's runner (PROBLEMS.md sections 1 and 2).
//!
//! `POST /ask {"prompt": ".."}` stores the question (one unit of work), calls a
//! slow model with no database session held, then stores the answer (a second
//! unit of work). `GET /answers/{id}` reads one back; `GET /stats` shows the
//! pool. Storage is a repository that holds a session factory, never a session.
//!
//! ```sh
//! cargo run --example llm_service                      # serves on 127.0.0.1:3000
//! curl -s localhost:3000/ask -H 'content-type: application/json' -d '{"prompt":"hi"}'
//! cargo run --example llm_service -- --load 400 --concurrency 100   # load test, then exit
//! ```
//!
//! Options: `--model-ms N` (the model's latency, default 300), `--pool N`
//! (connections, default 5), `--port N` (default 3000), `--load N` and
//! `--concurrency C` (default 50: run the server on a free port, send it N
//! requests from C concurrent keep-alive clients over loopback HTTP, print
//! throughput, latency and the pool's stats, exit). Embedded SQLite (a file in a temp dir) unless
//! `DATABASE_URL` names PostgreSQL or MariaDB (build with `--features postgres`
//! or `--features mysql`).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dbscope::{Error, PoolStats};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One question and, once the model has replied, its answer.
#[derive(Debug, Serialize, diesel::Queryable)]
struct Record {
    id: i32,
    prompt: String,
    answer: Option<String>,
    created_at: String,
}

/// What the HTTP layer needs from storage. The handlers know nothing of the
/// database; `main` picks the backend and injects the repository.
trait Store: Send + Sync + 'static {
    /// Stores a question; returns its id and the server-set `created_at`.
    fn create(&self, prompt: &str) -> impl Future<Output = Result<(i32, String), Error>> + Send;
    /// Stores the answer to question `id`.
    fn answer(&self, id: i32, answer: &str) -> impl Future<Output = Result<(), Error>> + Send;
    /// Reads question `id`, if it exists.
    fn get(&self, id: i32) -> impl Future<Output = Result<Option<Record>, Error>> + Send;
    /// The pool's statistics.
    fn stats(&self) -> PoolStats;
    /// The database (password hidden) and pool size.
    fn describe(&self) -> String;
}

/// The repository for one backend: the same code for each, `$key` being the
/// backend's auto-increment column and `$last_id` the id of this connection's
/// last insert.
macro_rules! answers_repository {
    ($name:ident, $conn:ty, $key:literal, $last_id:literal) => {
        mod $name {
            use super::{Record, Store};
            use dbscope::{unit_of_work, Error, PoolStats, SessionFactory, SessionSource};
            use diesel::connection::SimpleConnection;
            use diesel::prelude::*;
            use diesel::sql_types::Integer;

            diesel::table! {
                llm_answers (id) {
                    id -> Integer,
                    prompt -> Text,
                    answer -> Nullable<Text>,
                    created_at -> Text,
                }
            }

            /// Holds a factory (any `SessionSource`: the factory, an `Arc` of
            /// it, a rollback-only one in tests) and opens one short session
            /// per operation.
            pub(crate) struct Answers<F: SessionSource> {
                db: F,
            }

            /// Connects, creates the table if needed, and returns the repository.
            pub(crate) fn open(
                url: &str,
                pool: usize,
            ) -> Result<Answers<SessionFactory<$conn>>, Error> {
                let db = SessionFactory::<$conn>::builder(url)
                    .max_size(pool)
                    .build()?;
                db.checkout()?.batch_execute(concat!(
                    "CREATE TABLE IF NOT EXISTS llm_answers (id ",
                    $key,
                    ", prompt TEXT NOT NULL, answer TEXT,",
                    " created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
                ))?;
                Ok(Answers { db })
            }

            impl<F> Store for Answers<F>
            where
                F: SessionSource<Connection = $conn> + Send + Sync + 'static,
            {
                /// Create: insert, read back the server's `created_at`, return the id.
                #[unit_of_work(factory = self.db)]
                async fn create(
                    &self,
                    conn: &mut $conn,
                    prompt: &str,
                ) -> Result<(i32, String), Error> {
                    diesel::insert_into(llm_answers::table)
                        .values(llm_answers::prompt.eq(prompt))
                        .execute(conn)?;
                    let new_row = llm_answers::id.eq(diesel::dsl::sql::<Integer>($last_id));
                    Ok(llm_answers::table
                        .filter(new_row)
                        .select((llm_answers::id, llm_answers::created_at))
                        .first(conn)?)
                }

                /// Update: set the answer of row `id`.
                #[unit_of_work(factory = self.db)]
                async fn answer(
                    &self,
                    conn: &mut $conn,
                    id: i32,
                    answer: &str,
                ) -> Result<(), Error> {
                    diesel::update(llm_answers::table.find(id))
                        .set(llm_answers::answer.eq(answer))
                        .execute(conn)?;
                    Ok(())
                }

                /// Fetch: row `id`, read-only.
                #[unit_of_work(factory = self.db, read_only)]
                async fn get(&self, conn: &mut $conn, id: i32) -> Result<Option<Record>, Error> {
                    Ok(llm_answers::table.find(id).first(conn).optional()?)
                }

                fn stats(&self) -> PoolStats {
                    self.db.session_factory().stats()
                }

                fn describe(&self) -> String {
                    let db = self.db.session_factory();
                    format!("{}, pool of {}", db.url(), db.stats().max_size)
                }
            }
        }
    };
}

answers_repository!(
    sqlite,
    diesel::SqliteConnection,
    "INTEGER PRIMARY KEY",
    "last_insert_rowid()"
);
#[cfg(feature = "postgres")]
answers_repository!(
    postgres,
    diesel::PgConnection,
    "SERIAL PRIMARY KEY",
    "lastval()"
);
#[cfg(feature = "mysql")]
answers_repository!(
    mysql,
    diesel::MysqlConnection,
    "INT AUTO_INCREMENT PRIMARY KEY",
    "LAST_INSERT_ID()"
);

// --- the HTTP service ---------------------------------------------------------

/// What every handler shares.
struct App<S> {
    store: S,
    model_latency: Duration,
}

#[derive(Deserialize)]
struct Question {
    prompt: String,
}

/// The slow part: an LLM generation. Nothing here touches the database.
async fn fake_model(prompt: &str, latency: Duration) -> String {
    tokio::time::sleep(latency).await;
    format!(
        "{} characters in, one fake answer out",
        prompt.chars().count()
    )
}

/// `POST /ask`: two short units of work around the slow model call.
async fn ask<S: Store>(
    State(app): State<Arc<App<S>>>,
    Json(question): Json<Question>,
) -> Result<Json<Record>, ApiError> {
    let (id, created_at) = app.store.create(&question.prompt).await?; // connection back in the pool
    let answer = fake_model(&question.prompt, app.model_latency).await; // no connection held
    app.store.answer(id, &answer).await?;
    Ok(Json(Record {
        id,
        prompt: question.prompt,
        answer: Some(answer),
        created_at,
    }))
}

/// `GET /answers/{id}`.
async fn get_answer<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<i32>,
) -> Result<Json<Record>, ApiError> {
    match app.store.get(id).await? {
        Some(record) => Ok(Json(record)),
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("no answer {id}"))),
    }
}

/// `GET /stats`: the pool's gauges and counters.
async fn stats<S: Store>(State(app): State<Arc<App<S>>>) -> Json<serde_json::Value> {
    let s = app.store.stats();
    Json(serde_json::json!({
        "max_size": s.max_size, "open": s.open, "idle": s.idle, "in_use": s.in_use,
        "waiting": s.waiting, "max_in_use": s.max_in_use, "checkouts": s.checkouts,
        "checkout_timeouts": s.checkout_timeouts, "connections_created": s.connections_created,
        "connections_closed": s.connections_closed, "validations": s.validations,
        "closed_dirty": s.closed_dirty, "begin_retries": s.begin_retries,
        "held_total_ms": s.held_total.as_secs_f64() * 1e3,
    }))
}

/// A failed request: 503 when no connection came in time, else 500.
struct ApiError(StatusCode, String);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let status = if error.is_checkout_timeout() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        ApiError(status, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

fn router<S: Store>(store: S, model_latency: Duration) -> Router {
    Router::new()
        .route("/ask", post(ask::<S>))
        .route("/answers/{id}", get(get_answer::<S>))
        .route("/stats", get(stats::<S>))
        .with_state(Arc::new(App {
            store,
            model_latency,
        }))
}

// --- command line -------------------------------------------------------------

struct Options {
    model_ms: u64,
    pool: usize,
    port: u16,
    load: Option<usize>,
    concurrency: usize,
}

fn options() -> Options {
    let mut options = Options {
        model_ms: 300,
        pool: 5,
        port: 3000,
        load: None,
        concurrency: 50,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            let value = args.next().unwrap_or_default();
            value.parse::<u64>().unwrap_or_else(|_| {
                eprintln!("{flag} needs a number, got {value:?}");
                std::process::exit(2)
            })
        };
        match flag.as_str() {
            "--model-ms" => options.model_ms = value(),
            "--pool" => options.pool = value() as usize,
            "--port" => options.port = value() as u16,
            "--load" => options.load = Some(value() as usize),
            "--concurrency" => options.concurrency = (value() as usize).max(1),
            _ => {
                eprintln!("unknown argument {flag:?}; see examples/llm_service.rs");
                std::process::exit(2)
            }
        }
    }
    options
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = options();
    let temp = std::env::temp_dir().join(format!("dbscope-llm-service-{}", std::process::id()));
    let url = match std::env::var("DATABASE_URL") {
        Ok(url) => url,
        Err(_) => {
            std::fs::create_dir_all(&temp)?;
            temp.join("answers.db").display().to_string()
        }
    };
    let result = match url.split_once("://").map_or("file", |(scheme, _)| scheme) {
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => serve(postgres::open(&url, options.pool)?, &options).await,
        #[cfg(feature = "mysql")]
        "mysql" => serve(mysql::open(&url, options.pool)?, &options).await,
        "file" | "sqlite" => serve(sqlite::open(&url, options.pool)?, &options).await,
        scheme => {
            Err(format!("{scheme}:// needs `--features postgres` or `--features mysql`").into())
        }
    };
    let _ = std::fs::remove_dir_all(&temp);
    result
}

/// Serves until killed, or runs the load test against itself and returns.
async fn serve<S: Store>(store: S, options: &Options) -> Result<(), Box<dyn std::error::Error>> {
    let backend = store.describe();
    let model = Duration::from_millis(options.model_ms);
    let app = router(store, model);
    let Some(requests) = options.load else {
        let listener = TcpListener::bind(("127.0.0.1", options.port)).await?;
        println!(
            "llm_service on http://{} ({backend}, model {model:?})",
            listener.local_addr()?
        );
        println!("  POST /ask {{\"prompt\": \"..\"}}   GET /answers/{{id}}   GET /stats");
        axum::serve(listener, app).await?;
        return Ok(());
    };
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!("llm_service: {backend}");
    load(address, requests, options.concurrency, model).await
}

// --- load mode: a small HTTP/1.1 keep-alive client over loopback ---------------

/// One keep-alive HTTP/1.1 connection.
struct Client {
    stream: BufReader<TcpStream>,
}

impl Client {
    async fn connect(address: std::net::SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream: BufReader::new(stream),
        })
    }

    /// Sends one request; returns the status and body of the response.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> std::io::Result<(u16, String)> {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.get_mut().write_all(request.as_bytes()).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status = line.split(' ').nth(1).and_then(|s| s.parse().ok());
        let status =
            status.ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut length = 0;
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 || line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().map_err(std::io::Error::other)?;
                }
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// Sends `requests` `POST /ask` from `concurrency` clients, then prints what
/// happened and what the pool saw.
async fn load(
    address: std::net::SocketAddr,
    requests: usize,
    concurrency: usize,
    model: Duration,
) -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "load: {requests} requests to POST /ask from {concurrency} concurrent HTTP/1.1 \
         clients on http://{address}, model {model:?}"
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..concurrency.min(requests))
        .map(|_| {
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                let mut client = Client::connect(address).await?;
                let (mut latencies, mut failures, mut last_id) = (Vec::new(), Vec::new(), None);
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    let begun = Instant::now();
                    let body = r#"{"prompt": "How long should a database session live?"}"#;
                    let (status, body) = client.send("POST", "/ask", body).await?;
                    if status == 200 {
                        latencies.push(begun.elapsed());
                        last_id = serde_json::from_str::<serde_json::Value>(&body)?["id"].as_i64();
                    } else {
                        failures.push(format!("{status} {body}"));
                    }
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>((latencies, failures, last_id))
            })
        })
        .collect();
    let (mut latencies, mut failures, mut last_id) = (Vec::new(), Vec::new(), None);
    for client in clients {
        let (l, f, id) = client.await?.map_err(|e| e.to_string())?;
        latencies.extend(l);
        failures.extend(f);
        last_id = last_id.or(id);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let percentile = |p: f64| {
        let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
        latencies
            .get(rank.clamp(1, latencies.len().max(1)) - 1)
            .copied()
            .unwrap_or_default()
    };
    let ideal = concurrency.min(requests) as f64 / model.as_secs_f64();
    println!(
        "  {} of {requests} requests succeeded, {} failed, in {:.2} s: {:.1} req/s \
         (ideal {ideal:.1}: clients / model latency)",
        latencies.len(),
        failures.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
    );
    println!(
        "  latency p50 {:.1?}, p99 {:.1?}",
        percentile(50.0),
        percentile(99.0)
    );
    for failure in failures.iter().take(3) {
        println!("  failed: {failure}");
    }

    let mut client = Client::connect(address).await?;
    if let Some(id) = last_id {
        let (status, body) = client.send("GET", &format!("/answers/{id}"), "").await?;
        println!("  GET /answers/{id} -> {status} {body}");
    }
    let (_, body) = client.send("GET", "/stats", "").await?;
    println!("  GET /stats -> {body}");
    let stats: serde_json::Value = serde_json::from_str(&body)?;
    let model_total = model.as_secs_f64() * latencies.len() as f64;
    println!(
        "pool: max_in_use {} of {}, checkout_timeouts: {}, {} checkouts; connections held \
         {:.2} s in all while requests spent {model_total:.2} s waiting on the model",
        stats["max_in_use"],
        stats["max_size"],
        stats["checkout_timeouts"],
        stats["checkouts"],
        stats["held_total_ms"].as_f64().unwrap_or_default() / 1e3,
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{} requests failed", failures.len()).into())
    }
}
