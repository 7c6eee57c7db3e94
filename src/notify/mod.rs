//! Outbound mail: templates, composition (mail-builder), delivery
//! (mail-send) and the outbox worker that retries until delivered or given up.

pub mod compose;
pub mod templates;
pub mod transport;
pub mod webhooks;
pub mod worker;

pub use worker::OutboxWorker;
