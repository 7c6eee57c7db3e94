//! mxdesk: a self-hosted service desk that is its own mail server.
//!
//! Data flows one way: [`smtp`] → [`ingest`] → [`store`] → [`api`].
//! See DESIGN.md in the shared folder for the whole picture.

#![forbid(unsafe_code)]

pub mod address;
pub mod api;
pub mod config;
pub mod desk;
pub mod fsutil;
pub mod fuzzing;
pub mod ingest;
pub mod notify;
pub mod server;
pub mod smtp;
pub mod store;
pub mod tls;
