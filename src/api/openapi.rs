//! The OpenAPI 3 document of the API, served at `GET /api/v4/openapi.json`.
//!
//! The document is `openapi.json` beside this file, compiled in. It lists
//! every (method, path) of [`super::ROUTES`] and nothing else;
//! `tests/openapi.rs` holds the two to each other and sends every route to
//! a real server, and `tests/schemathesis.rs` checks real answers against it.
//!
//! It is served without a token (GitLab would want one) so that tooling can
//! fetch it before it has one: it describes the API, not any data.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// `200 application/json` with the document.
pub fn response() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(DOCUMENT.as_bytes())));
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn document_is_json_with_openapi_3() {
        let value: serde_json::Value =
            serde_json::from_str(super::DOCUMENT).expect("openapi.json is JSON");
        assert!(value["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")));
    }
}
