//! `#[detach_ids]`: a function that crosses a boundary (a spawned task, a
//! queued job, a long async flow) holds no session and carries no row.
//!
//! Phases: [`options`] (`factory`, `crate`), [`analysis`] (parameter markers,
//! `#[load]` parameters, which types to probe), [`peel`] (containers peeled
//! down to leaf types, each with the span of its tokens), [`expand`] (the
//! probes, the load unit, the caller-facing signature).

mod analysis;
mod expand;
mod options;
mod peel;

pub(crate) use expand::detach_ids;
