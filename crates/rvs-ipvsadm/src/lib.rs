//! ipvsadm 1.31's command line, byte for byte: the argv grammar and its checks, the error
//! texts and exit codes, every listing format, `-S` and `-R`.
//!
//! [`run`] is the whole of ipvsadm: it reads argv, talks to a [`Backend`] (rvsd's API in
//! `rvsadm`, an in-memory table in tests) and returns what ipvsadm would print and its exit
//! code. Nothing here does I/O except through the backend and the [`resolve::Resolver`].

#![deny(missing_docs)]

pub mod backend;
pub mod exec;
pub mod format;
pub mod messages;
pub mod opts;
pub mod parse;
pub mod popt;
pub mod resolve;
pub mod restore;
pub mod sort;
pub mod translate;
pub mod usage;

pub use backend::{Backend, BackendError, Outcome};
pub use exec::run;
