//! Procedural macros of dbscope.
