//! Service desk settings (`GET/PUT /projects/:id/service_desk`, with
//! mxdesk's template overrides) and the unauthenticated unsubscribe page
//! (`/-/sent_notifications/:token/unsubscribe`, RFC 8058 one-click).

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::projects;
use super::request::{json_response, Params};
use super::router::Ctx;
use super::{ApiError, ApiState};
use crate::notify::templates;
use crate::store::{MailTemplate, Project, ServiceDeskSettings, WriteOp, WriteOutcome};

/// Longest template body accepted.
const MAX_TEMPLATE_CHARS: usize = 100_000;

fn settings_json(state: &ApiState, project: &Project) -> Value {
    let sd = &project.service_desk;
    let templates: serde_json::Map<String, Value> = templates::NAMES
        .iter()
        .map(|name| {
            let custom = sd.templates.get(*name);
            (
                name.to_string(),
                json!({
                    "custom": custom.is_some(),
                    "subject": custom.and_then(|t| t.subject.clone()),
                    "text": custom.map(|t| t.text.clone()),
                    "html": custom.and_then(|t| t.html.clone()),
                }),
            )
        })
        .collect();
    json!({
        "service_desk_enabled": true,
        "service_desk_address": format!("{}@{}", project.path, state.config.primary_domain()),
        "outgoing_name": sd.outgoing_name,
        "project_key": null,
        "issue_template_key": null,
        "reopen_issue_on_external_participant_note": sd.reopen_issue_on_external_participant_note,
        "add_external_participants_from_cc": sd.add_external_participants_from_cc,
        "send_close_email": sd.send_close_email,
        "templates": templates,
    })
}

pub async fn get(ctx: &Ctx<'_>, id: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    let project = projects::find(ctx, id).await?;
    Ok(json_response(
        StatusCode::OK,
        &settings_json(ctx.state, &project),
    ))
}

fn parse_template(name: &str, value: &Value) -> Result<Option<MailTemplate>, ApiError> {
    let invalid = || ApiError::BadRequest(format!("templates[{name}] is invalid"));
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(MailTemplate {
            subject: None,
            text: text.clone(),
            html: None,
        })),
        Value::Object(map) => {
            let field = |key: &str| -> Result<Option<String>, ApiError> {
                match map.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    Some(_) => Err(invalid()),
                }
            };
            let text = field("text")?.ok_or_else(invalid)?;
            let template = MailTemplate {
                subject: field("subject")?,
                text,
                html: field("html")?,
            };
            let size = template.text.len()
                + template.html.as_ref().map_or(0, String::len)
                + template.subject.as_ref().map_or(0, String::len);
            if size > MAX_TEMPLATE_CHARS {
                return Err(ApiError::BadRequest(format!(
                    "templates[{name}] is too long"
                )));
            }
            Ok(Some(template))
        }
        _ => Err(invalid()),
    }
}

pub async fn update(
    ctx: &Ctx<'_>,
    id: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    ctx.caller.require_write()?;
    let access = projects::access(ctx, id).await?;
    // Mail templates and behaviour are project settings: Maintainer+.
    access.require(crate::store::access_level::MAINTAINER)?;
    let project = access.project;
    let mut settings: ServiceDeskSettings = project.service_desk.clone();
    if let Some(name) = params.string("outgoing_name")? {
        let name = crate::ingest::sanitize_header_text(&name, 128);
        settings.outgoing_name = (!name.is_empty()).then_some(name);
    }
    if let Some(value) = params.bool("reopen_issue_on_external_participant_note")? {
        settings.reopen_issue_on_external_participant_note = value;
    }
    if let Some(value) = params.bool("add_external_participants_from_cc")? {
        settings.add_external_participants_from_cc = value;
    }
    if let Some(value) = params.bool("send_close_email")? {
        settings.send_close_email = value;
    }
    match params.value("templates") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                if !templates::NAMES.contains(&name.as_str()) {
                    return Err(ApiError::BadRequest(format!(
                        "unknown template {name:?}; known: {}",
                        templates::NAMES.join(", ")
                    )));
                }
                match parse_template(name, value)? {
                    Some(template) => settings.templates.insert(name.clone(), template),
                    None => settings.templates.remove(name),
                };
            }
        }
        Some(_) => return Err(ApiError::BadRequest("templates must be an object".into())),
    }
    let outcome = ctx
        .state
        .store
        .write(WriteOp::UpdateServiceDesk {
            project_id: project.id,
            settings,
        })
        .await?;
    let WriteOutcome::ServiceDeskUpdated(project) = outcome else {
        return Err(ApiError::Internal("unexpected write outcome".into()));
    };
    Ok(json_response(
        StatusCode::OK,
        &settings_json(ctx.state, &project),
    ))
}

fn html_page(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Unsubscribe</title></head><body>{body}</body></html>"
    );
    let mut response = Response::new(Full::new(Bytes::from(page)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// GET shows a confirmation form and changes nothing (link scanners follow GETs).
pub async fn unsubscribe_page(
    state: &ApiState,
    token: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let lookup = token.to_string();
    let ticket = state
        .read(move |store| store.ticket_by_token(&lookup))
        .await?;
    let Some(ticket) = ticket else {
        return Ok(html_page(
            StatusCode::NOT_FOUND,
            "<p>This unsubscribe link is not valid.</p>".into(),
        ));
    };
    let title = templates::html_escape(&ticket.title);
    Ok(html_page(
        StatusCode::OK,
        format!(
            "<p>Stop receiving mail about <strong>{title}</strong>?</p>\
             <form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button type=\"submit\">Unsubscribe</button></form>"
        ),
    ))
}

/// POST confirms (also RFC 8058's one-click POST from mail clients).
pub async fn unsubscribe_confirm(
    state: &ApiState,
    token: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    match state
        .store
        .write(WriteOp::Unsubscribe {
            token: token.to_string(),
        })
        .await
    {
        Ok(WriteOutcome::Unsubscribed { email, .. }) => Ok(html_page(
            StatusCode::OK,
            format!(
                "<p>{} will receive no more mail about this ticket.</p>",
                templates::html_escape(&email)
            ),
        )),
        Ok(_) => Err(ApiError::Internal("unexpected write outcome".into())),
        Err(crate::store::StoreError::NotFound(_)) => Ok(html_page(
            StatusCode::NOT_FOUND,
            "<p>This unsubscribe link is not valid.</p>".into(),
        )),
        Err(error) => Err(error.into()),
    }
}
