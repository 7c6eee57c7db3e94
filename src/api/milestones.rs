//! `milestones` routes (being written).

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response};

use super::request::Params;
use super::router::Ctx;
use super::ApiError;

/// Routes `…/milestones/…`; `rest` is the path after `milestones`.
pub async fn route(
    _ctx: &Ctx<'_>,
    _method: &Method,
    _project: &str,
    _rest: &[&str],
    _params: Params,
    _request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    Err(ApiError::NoRoute)
}
