//! Bytes in, decisions out: turns an accepted message into what the store
//! must write. Ingest never touches redb itself (DESIGN §7).

pub mod classify;
mod parse;
mod text;
pub mod trim;

pub use parse::{
    parse_message, parse_message_from, IngestError, IngestLimits, Origin, ParsedMessage,
};
pub use text::{sanitize_header_text, trace_header};
