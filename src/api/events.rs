//! `/service_desk/events`: mxdesk's own feed of every change, for agents.
//!
//! The feed is the durable event log read from a cursor: a long-poll
//! (`GET …/events?after=&limit=&wait=`) answers at once when events exist
//! after the cursor and otherwise waits, woken by the writer's commit, for
//! the first one; the same feed streams as Server-Sent Events
//! (`GET …/events/stream`, or `Accept: text/event-stream`) and resumes from
//! `Last-Event-ID`.
//!
//! Promises:
//! - a caller sees only events of projects it may see, and an event about a
//!   ticket only if it may see that ticket *as it is now*
//!   ([`ProjectAccess::can_see`]); internal notes only as Reporter+ or admin;
//! - events filtered out still move the cursor, so they are never rescanned
//!   and the returned cursor is always safe to resume from;
//! - cursors are opaque strings; the one returned resumes after everything
//!   the answer covered, exactly once and in log order.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::{HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::json::timestamp;
use super::projects::ProjectAccess;
use super::request::{authenticate, json_response, Caller, Params};
use super::router::Ctx;
use super::{issues, ApiBody, ApiError, ApiState};
use crate::store::{
    access_level, event_cursor as cursor, parse_event_cursor as parse_cursor, Event, EventItem,
    EventPage, Ticket,
};

/// Events per answer unless `limit` says otherwise, and the most allowed.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// The longest long-poll (`wait`), in seconds.
const MAX_WAIT_SECS: f64 = 60.0;
/// Events examined per read, visible or not: bounds one read transaction
/// when a caller may see little of a busy log.
const MAX_SCAN: usize = 10_000;
/// Events per SSE batch.
const STREAM_BATCH: usize = 100;
/// A comment line this often keeps proxies and clients from timing out an
/// idle stream, and notices clients that went away.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// Frames buffered for a slow SSE client before the reader waits.
const STREAM_BUFFER: usize = 16;
/// What the client waits before reconnecting a dropped stream (SSE `retry`).
const RECONNECT_MILLIS: u32 = 3000;

/// Routes `…/service_desk/events/…`; `rest` is the path after `events`.
/// The stream never gets here: [`is_stream`] takes it before the router.
pub async fn route(
    ctx: &Ctx<'_>,
    method: &Method,
    _project: &str,
    rest: &[&str],
    params: Params,
    _request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    match (method, rest) {
        (&Method::GET, []) => poll(ctx, &params).await,
        (_, []) | (_, ["stream"]) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NoRoute),
    }
}

/// What a feed request asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
struct FeedQuery {
    after: u64,
    limit: usize,
    wait: Duration,
}

impl FeedQuery {
    fn from_params(params: &Params) -> Result<FeedQuery, ApiError> {
        let after = match params.string("after")? {
            None => 0,
            Some(text) => parse_cursor(&text)
                .ok_or_else(|| ApiError::BadRequest("after is not a valid cursor".into()))?,
        };
        let limit = match params.i64("limit")? {
            None => DEFAULT_LIMIT,
            Some(n) if n >= 1 => (n as u64).min(MAX_LIMIT as u64) as usize,
            Some(_) => return Err(ApiError::BadRequest("limit must be at least 1".into())),
        };
        let wait = match params.string("wait")? {
            None => Duration::ZERO,
            Some(text) if text.trim().is_empty() => Duration::ZERO,
            Some(text) => parse_wait(&text).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "wait must be a number of seconds from 0 to {MAX_WAIT_SECS}"
                ))
            })?,
        };
        Ok(FeedQuery { after, limit, wait })
    }
}

/// `wait` in seconds, fractions allowed, 0 to [`MAX_WAIT_SECS`].
fn parse_wait(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().parse().ok()?;
    (secs.is_finite() && (0.0..=MAX_WAIT_SECS).contains(&secs))
        .then(|| Duration::from_secs_f64(secs))
}

/// The long-poll: events after the cursor at once, or the first ones
/// committed within `wait`, or none and the (possibly advanced) cursor.
async fn poll(ctx: &Ctx<'_>, params: &Params) -> Result<Response<Full<Bytes>>, ApiError> {
    let query = FeedQuery::from_params(params)?;
    let viewer = Arc::new(Viewer::load(ctx).await?);
    let deadline = Instant::now() + query.wait;
    let wakeup = ctx.state.store.events_wakeup();
    let mut after = query.after;
    loop {
        let notified = wakeup.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let page = read_page(ctx, &viewer, after, query.limit).await?;
        after = page.last_seq;
        if !page.items.is_empty() {
            let mut events = Vec::with_capacity(page.items.len());
            for item in &page.items {
                events.push(event_json(ctx, &viewer, item).await?);
            }
            return Ok(feed_response(events, after));
        }
        if page.more {
            continue;
        }
        if Instant::now() >= deadline || ctx.state.shutdown.is_cancelled() {
            return Ok(feed_response(Vec::new(), after));
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = ctx.state.shutdown.cancelled() => {}
        }
    }
}

fn feed_response(events: Vec<Value>, after: u64) -> Response<Full<Bytes>> {
    json_response(
        StatusCode::OK,
        &json!({ "events": events, "cursor": cursor(after) }),
    )
}

/// What one caller may see, by project: GitLab's role rules, loaded once
/// per read so membership changes apply to the next answer.
struct Viewer {
    projects: HashMap<u64, ProjectAccess>,
}

impl Viewer {
    async fn load(ctx: &Ctx<'_>) -> Result<Viewer, ApiError> {
        let user = ctx.caller.user.clone();
        let projects = ctx
            .state
            .read(move |store| {
                let mut out = HashMap::new();
                if user.is_admin {
                    for project in store.projects()? {
                        let access = ProjectAccess {
                            project,
                            level: access_level::OWNER,
                            admin: true,
                            user_id: user.id,
                        };
                        out.insert(access.project.id, access);
                    }
                } else {
                    for (project_id, level) in store.memberships(user.id)? {
                        if level < access_level::GUEST {
                            continue;
                        }
                        if let Some(project) = store.project(project_id)? {
                            let access = ProjectAccess {
                                project,
                                level,
                                admin: false,
                                user_id: user.id,
                            };
                            out.insert(project_id, access);
                        }
                    }
                }
                Ok(out)
            })
            .await?;
        Ok(Viewer { projects })
    }

    /// Whether the caller may see `event`, given its ticket as it is now.
    fn may_see(&self, event: &Event, ticket: Option<&Ticket>) -> bool {
        let Some(access) = self.projects.get(&event.project_id) else {
            return false;
        };
        if event.ticket_number.is_some() {
            // A ticket that no longer exists shows nothing either.
            match ticket {
                Some(ticket) if access.can_see(ticket) => {}
                _ => return false,
            }
        }
        !event.internal || access.admin || access.level >= access_level::REPORTER
    }
}

async fn read_page(
    ctx: &Ctx<'_>,
    viewer: &Arc<Viewer>,
    after: u64,
    limit: usize,
) -> Result<EventPage, ApiError> {
    let viewer = viewer.clone();
    ctx.state
        .read(move |store| {
            store.event_page(after, limit, MAX_SCAN, None, |event, ticket| {
                viewer.may_see(event, ticket)
            })
        })
        .await
}

/// One event as the feed shows it: the log entry plus the issue (GitLab's
/// issue JSON) and note it is about, as they are now.
async fn event_json(ctx: &Ctx<'_>, viewer: &Viewer, item: &EventItem) -> Result<Value, ApiError> {
    let event = &item.event;
    let project = viewer.projects.get(&event.project_id).map(|a| &a.project);
    let issue = match (project, &item.ticket) {
        (Some(project), Some(ticket)) => issues::issue_json(ctx, project, ticket).await?,
        _ => Value::Null,
    };
    let note = match (&item.ticket, &item.note) {
        (Some(ticket), Some(note)) => issues::note_json(ctx, ticket, note).await?,
        _ => Value::Null,
    };
    Ok(json!({
        "id": cursor(event.seq),
        "seq": event.seq,
        "type": event.kind,
        "project_id": event.project_id,
        "issue_iid": event.ticket_number,
        "issue_id": item.ticket.as_ref().map(|t| t.id),
        "note_id": event.note_id,
        "internal": event.internal,
        "actor_id": event.actor_id,
        "detail": event.detail,
        "created_at": timestamp(event.created_at),
        "issue": issue,
        "note": note,
    }))
}

// ---------------------------------------------------------------------------
// Server-Sent Events
// ---------------------------------------------------------------------------

/// Whether `request` asks for the event stream: `GET …/events/stream`, or
/// `GET …/events` with `Accept: text/event-stream`.
pub fn is_stream(request: &Request<Incoming>) -> bool {
    if request.method() != Method::GET {
        return false;
    }
    match request.uri().path().trim_end_matches('/') {
        "/api/v4/service_desk/events/stream" => true,
        "/api/v4/service_desk/events" => request
            .headers()
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("text/event-stream")),
        _ => false,
    }
}

/// Starts an event stream: checks the caller and the resume point, then
/// answers `200 text/event-stream` whose body a task fills as events commit.
pub async fn stream(
    state: Arc<ApiState>,
    request: Request<Incoming>,
) -> Result<Response<ApiBody>, ApiError> {
    let caller = authenticate(&state, &request).await?;
    let params = Params::from_query(request.uri().query());
    let resume = request
        .headers()
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("\u{0}").to_string());
    let after = match resume {
        Some(id) => parse_cursor(&id)
            .ok_or_else(|| ApiError::BadRequest("Last-Event-ID is not a valid cursor".into()))?,
        None => FeedQuery::from_params(&params)?.after,
    };
    let (frames, receiver) = mpsc::channel(STREAM_BUFFER);
    let span = tracing::Span::current();
    tokio::spawn(tracing::Instrument::instrument(
        feed_stream(state, caller, after, frames),
        span,
    ));
    let mut response = Response::new(BodyExt::boxed(SseBody { frames: receiver }));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// Feeds one stream until the client goes away or the server shuts down.
async fn feed_stream(
    state: Arc<ApiState>,
    caller: Caller,
    mut after: u64,
    frames: mpsc::Sender<Bytes>,
) {
    let hello = format!("retry: {RECONNECT_MILLIS}\n: connected\n\n");
    if frames.send(Bytes::from(hello)).await.is_err() {
        return;
    }
    let ctx = Ctx {
        state: &state,
        caller: &caller,
        query: None,
    };
    let wakeup = state.store.events_wakeup();
    let mut keepalive = tokio::time::interval_at(Instant::now() + KEEPALIVE, KEEPALIVE);
    loop {
        let notified = wakeup.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let more = match next_frames(&ctx, after).await {
            Ok((batch, last_seq, more)) => {
                after = last_seq;
                for frame in batch {
                    if frames.send(frame).await.is_err() {
                        return;
                    }
                }
                more
            }
            Err(error) => {
                tracing::warn!(%error, "event stream ended by a read error");
                return;
            }
        };
        if more {
            continue;
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = keepalive.tick() => {
                if frames.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                    return;
                }
            }
            _ = frames.closed() => return,
            _ = state.shutdown.cancelled() => return,
        }
    }
}

/// The SSE frames of the next batch after `after`, the new cursor, and
/// whether more is waiting to be read at once.
async fn next_frames(ctx: &Ctx<'_>, after: u64) -> Result<(Vec<Bytes>, u64, bool), ApiError> {
    let viewer = Arc::new(Viewer::load(ctx).await?);
    let page = read_page(ctx, &viewer, after, STREAM_BATCH).await?;
    let mut batch = Vec::with_capacity(page.items.len() + 1);
    for item in &page.items {
        let value = event_json(ctx, &viewer, item).await?;
        batch.push(Bytes::from(sse_frame(
            &cursor(item.event.seq),
            &item.event.kind,
            &value,
        )));
    }
    let last_sent = page.items.last().map(|i| i.event.seq);
    if page.last_seq != after && last_sent != Some(page.last_seq) {
        // Events the caller may not see were passed over: move the client's
        // Last-Event-ID past them without dispatching anything (an `id`
        // field with no data sets it; HTML Living Standard §9.2.6).
        batch.push(Bytes::from(format!("id: {}\n\n", cursor(page.last_seq))));
    }
    Ok((batch, page.last_seq, page.more))
}

/// One SSE event; JSON has no raw newlines, so `data` is a single line.
fn sse_frame(id: &str, kind: &str, data: &Value) -> String {
    let kind: String = kind.chars().filter(|c| !c.is_control()).collect();
    format!("id: {id}\nevent: {kind}\ndata: {data}\n\n")
}

/// A response body fed by a channel: each message is one chunk, the end of
/// the channel is the end of the body.
struct SseBody {
    frames: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .frames
            .poll_recv(cx)
            .map(|frame| frame.map(|bytes| Ok(Frame::data(bytes))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(parse_cursor(&cursor(0)), Some(0));
        assert_eq!(parse_cursor(&cursor(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_cursor(""), Some(0));
        assert_eq!(parse_cursor(" e42 "), Some(42));
        for bad in [
            "42",
            "e",
            "e-1",
            "e+1",
            "x1",
            "e1.5",
            "e99999999999999999999999",
        ] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn wait_is_bounded() {
        assert_eq!(parse_wait("0"), Some(Duration::ZERO));
        assert_eq!(parse_wait("60"), Some(Duration::from_secs(60)));
        assert_eq!(parse_wait("0.5"), Some(Duration::from_millis(500)));
        for bad in ["61", "-1", "NaN", "inf", "soon"] {
            assert_eq!(parse_wait(bad), None, "{bad}");
        }
    }

    #[test]
    fn feed_query_defaults_and_limits() {
        let q = FeedQuery::from_params(&Params::from_query(None)).unwrap();
        assert_eq!(
            (q.after, q.limit, q.wait),
            (0, DEFAULT_LIMIT, Duration::ZERO)
        );
        let q = FeedQuery::from_params(&Params::from_query(Some("after=e7&limit=5000&wait=2")))
            .unwrap();
        assert_eq!(
            (q.after, q.limit, q.wait),
            (7, MAX_LIMIT, Duration::from_secs(2))
        );
        for bad in ["limit=0", "limit=-3", "limit=x", "wait=99", "after=7"] {
            assert!(
                FeedQuery::from_params(&Params::from_query(Some(bad))).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn sse_frames_are_single_events() {
        let frame = sse_frame("e3", "note\nadded", &json!({"a": "x\ny"}));
        assert_eq!(
            frame,
            "id: e3\nevent: noteadded\ndata: {\"a\":\"x\\ny\"}\n\n"
        );
    }
}
