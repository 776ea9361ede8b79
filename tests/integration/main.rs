//! Integration and fault tests of the runtime against real databases: SQLite
//! (files in temporary directories), PostgreSQL and MariaDB/MySQL.
//!
//! One test binary, so diesel is linked once. Servers come from
//! `PG_DATABASE_URL` and `MYSQL_DATABASE_URL` (fault tests:
//! `PG_FAULTS_DATABASE_URL` and `MYSQL_FAULTS_DATABASE_URL`); see `support`.
//! Each scenario is written once, generic over the backend, and instantiated
//! for every backend by `all_backends!`.
#![allow(missing_docs, unreachable_pub)]

mod support;

#[cfg(feature = "tokio")]
mod async_units;
mod checkout;
mod classify;
#[cfg(all(feature = "async", any(feature = "postgres", feature = "mysql")))]
mod commit_faults;
#[cfg(all(feature = "async", any(feature = "postgres", feature = "mysql")))]
mod commit_outcomes;
#[cfg(feature = "async")]
mod composition;
mod conn_strings;
#[cfg(all(feature = "tokio", feature = "serde"))]
mod detach;
#[cfg(feature = "tokio")]
mod detach_flows;
mod fault_proxy;
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod faults;
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod lost_connections;
mod redaction;
#[cfg(all(feature = "async", feature = "postgres", feature = "mysql"))]
mod restart_load;
#[cfg(all(feature = "async", feature = "postgres", feature = "mysql"))]
mod restart_scenario;
mod retry;
#[cfg(feature = "async")]
mod scenarios;
#[cfg(feature = "sqlite")]
mod sqlite_writers;
mod test_database;
#[cfg(all(feature = "async", feature = "sqlite"))]
mod unit_spans;
mod units;
#[cfg(feature = "tokio")]
mod uow_after_commit_awaits;
#[cfg(feature = "tokio")]
mod uow_async;
#[cfg(feature = "tokio")]
mod uow_budget;
mod uow_failures;
#[cfg(feature = "async")]
mod uow_native;
mod uow_options;
mod uow_patterns;
#[cfg(feature = "tokio")]
mod uow_repository;
mod uow_retry;
mod uow_support;
