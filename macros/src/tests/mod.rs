//! Unit tests of the expansions through the `proc_macro2` entry points.

mod detach_snapshots;
mod robustness;
mod snapshots;
