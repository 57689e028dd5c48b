//! rvsd, the director daemon: it holds the one table, keeps it durable, serves the control API
//! on a Unix socket (and on TCP with a bearer token when asked), and hands the table's changes
//! to a data plane.

#![deny(missing_docs)]

pub mod api;
pub mod demo;
pub mod director;
pub mod health;
pub mod http;
pub mod plane;
pub mod server;
pub mod state;
