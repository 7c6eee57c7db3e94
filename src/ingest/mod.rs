//! Bytes in, decisions out: turns an accepted message into what the store
//! must write. Ingest never touches redb itself (DESIGN §7).

mod parse;
mod text;

pub use parse::{parse_message, IngestError, IngestLimits, ParsedMessage};
pub use text::{sanitize_header_text, trace_header};
