//! Unit tests of the expansion through the `proc_macro2` entry point.

mod robustness;
mod snapshots;
