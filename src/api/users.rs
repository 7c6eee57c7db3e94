//! Users, personal access tokens and project members, as GitLab's
//! `/users`, `/personal_access_tokens` and `/projects/:id/members`.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::json;
use super::pagination::Page;
use super::projects;
use super::request::{json_response, Params};
use super::router::Ctx;
use super::ApiError;
use crate::store::{
    access_level, new_secret_token, ApiToken, Scope, User, UserOp, UserOutcome, WriteOp,
    WriteOutcome,
};

async fn apply(ctx: &Ctx<'_>, op: UserOp) -> Result<UserOutcome, ApiError> {
    match ctx.state.store.write(WriteOp::Users(op)).await? {
        WriteOutcome::Users(outcome) => Ok(outcome),
        _ => Err(ApiError::Internal("unexpected write outcome".into())),
    }
}

fn no_content() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// Users are listed to any authenticated caller, as in GitLab.
pub async fn list(ctx: &Ctx<'_>, params: &Params) -> Result<Response<Full<Bytes>>, ApiError> {
    let page = Page::from_params(params)?;
    let username = params.string("username")?.map(|u| u.to_lowercase());
    let search = params.string("search")?.map(|s| s.to_lowercase());
    let users: Vec<User> = ctx
        .state
        .read(|store| store.users())
        .await?
        .into_iter()
        .filter(|u| {
            username
                .as_ref()
                .is_none_or(|name| u.username.to_lowercase() == *name)
        })
        .filter(|u| {
            search.as_ref().is_none_or(|s| {
                u.username.to_lowercase().contains(s) || u.name.to_lowercase().contains(s)
            })
        })
        .collect();
    let total = users.len() as u64;
    let items: Vec<Value> = users
        .iter()
        .skip(page.offset() as usize)
        .take(page.per_page as usize)
        .map(|u| user_json(ctx, u))
        .collect();
    let mut response = json_response(StatusCode::OK, &Value::Array(items));
    page.decorate(&mut response, &ctx.url("users"), ctx.query, total);
    Ok(response)
}

fn user_json(ctx: &Ctx<'_>, user: &User) -> Value {
    let mut value = json::user(&ctx.state.config, user);
    if let Value::Object(map) = &mut value {
        map.insert("bot".into(), json!(user.bot));
        map.insert("created_at".into(), json!(json::timestamp(user.created_at)));
        if ctx.caller.user.is_admin {
            map.insert("is_admin".into(), json!(user.is_admin));
            map.insert("email".into(), json!(user.email));
        }
        map.insert(
            "state".into(),
            json!(if user.blocked { "blocked" } else { "active" }),
        );
    }
    value
}

async fn user_by_id(ctx: &Ctx<'_>, id: &str) -> Result<User, ApiError> {
    let id = id.parse::<u64>().map_err(|_| ApiError::NotFound("User"))?;
    ctx.state
        .read(move |store| store.user(id))
        .await?
        .ok_or(ApiError::NotFound("User"))
}

pub async fn get(ctx: &Ctx<'_>, id: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    let user = user_by_id(ctx, id).await?;
    Ok(json_response(StatusCode::OK, &user_json(ctx, &user)))
}

fn valid_username(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

pub async fn create(ctx: &Ctx<'_>, params: &Params) -> Result<Response<Full<Bytes>>, ApiError> {
    ctx.caller.require_write()?;
    ctx.caller.require_admin()?;
    let username = params
        .string("username")?
        .ok_or_else(|| ApiError::BadRequest("username is missing".into()))?;
    let name = params
        .string("name")?
        .ok_or_else(|| ApiError::BadRequest("name is missing".into()))?;
    let email = params.string("email")?;
    if !valid_username(&username) {
        return Err(ApiError::Validation {
            field: "username",
            reason: "can contain only letters, digits, '_', '-' and '.'".into(),
        });
    }
    let name = crate::ingest::sanitize_header_text(&name, 255);
    if name.is_empty() {
        return Err(ApiError::Validation {
            field: "name",
            reason: "can't be blank".into(),
        });
    }
    if let Some(email) = &email {
        if crate::address::parse(email).is_none() {
            return Err(ApiError::Validation {
                field: "email",
                reason: "is invalid".into(),
            });
        }
    }
    let is_admin = params.bool("admin")?.unwrap_or(false);
    let outcome = apply(
        ctx,
        UserOp::Create {
            username,
            name,
            email,
            is_admin,
        },
    )
    .await;
    match outcome {
        Ok(UserOutcome::User(user)) => {
            Ok(json_response(StatusCode::CREATED, &user_json(ctx, &user)))
        }
        Ok(_) => Err(ApiError::Internal("unexpected outcome".into())),
        Err(ApiError::Conflict(_)) => {
            Err(ApiError::Conflict("Username has already been taken".into()))
        }
        Err(error) => Err(error),
    }
}

fn token_json(token: &ApiToken, value: Option<&str>) -> Value {
    let scopes: Vec<&str> = token
        .scopes
        .iter()
        .map(|s| match s {
            Scope::Api => "api",
            Scope::ReadApi => "read_api",
        })
        .collect();
    let expired = token.expires_at.as_deref().is_some_and(is_past_date);
    let mut value_json = json!({
        "id": token.id,
        "name": token.name,
        "revoked": token.revoked,
        "created_at": json::timestamp(token.created_at),
        "scopes": scopes,
        "user_id": token.user_id,
        "last_used_at": null,
        "active": !token.revoked && !expired,
        "expires_at": token.expires_at,
    });
    if let (Some(v), Value::Object(map)) = (value, &mut value_json) {
        map.insert("token".into(), json!(v));
    }
    value_json
}

/// Whether a `YYYY-MM-DD` date has begun (UTC): tokens expire at its start.
pub fn is_past_date(date: &str) -> bool {
    super::request::parse_datetime(date).is_some_and(|start| start <= crate::store::now_millis())
}

pub async fn create_token(
    ctx: &Ctx<'_>,
    user_id: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    ctx.caller.require_write()?;
    let user = user_by_id(ctx, user_id).await?;
    if !ctx.caller.user.is_admin && ctx.caller.user.id != user.id {
        return Err(ApiError::Forbidden);
    }
    let name = params
        .string("name")?
        .ok_or_else(|| ApiError::BadRequest("name is missing".into()))?;
    let name = crate::ingest::sanitize_header_text(&name, 255);
    let scopes = params
        .list("scopes")?
        .ok_or_else(|| ApiError::BadRequest("scopes is missing".into()))?;
    let scopes = scopes
        .iter()
        .map(|s| match s.as_str() {
            "api" => Ok(Scope::Api),
            "read_api" => Ok(Scope::ReadApi),
            _ => Err(ApiError::BadRequest(
                "scopes does not have a valid value".into(),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if scopes.is_empty() {
        return Err(ApiError::BadRequest("scopes is empty".into()));
    }
    let expires_at = params.string("expires_at")?;
    if let Some(date) = &expires_at {
        if date.len() != 10 || super::request::parse_datetime(date).is_none() {
            return Err(ApiError::BadRequest("expires_at is invalid".into()));
        }
    }
    let value = new_secret_token();
    let outcome = apply(
        ctx,
        UserOp::CreateToken {
            user_id: user.id,
            name,
            scopes,
            expires_at,
            value: value.clone(),
        },
    )
    .await?;
    let UserOutcome::Token(token) = outcome else {
        return Err(ApiError::Internal("unexpected outcome".into()));
    };
    Ok(json_response(
        StatusCode::CREATED,
        &token_json(&token, Some(&value)),
    ))
}

pub async fn list_tokens(
    ctx: &Ctx<'_>,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let user_id = match params.id("user_id")? {
        Some(id) if ctx.caller.user.is_admin || id == ctx.caller.user.id => id,
        Some(_) => return Err(ApiError::Forbidden),
        None => ctx.caller.user.id,
    };
    let tokens = ctx
        .state
        .read(move |store| store.tokens_of(user_id))
        .await?;
    let items: Vec<Value> = tokens.iter().map(|t| token_json(t, None)).collect();
    Ok(json_response(StatusCode::OK, &Value::Array(items)))
}

pub async fn revoke_token(
    ctx: &Ctx<'_>,
    token_id: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    ctx.caller.require_write()?;
    let token_id = token_id
        .parse::<u64>()
        .map_err(|_| ApiError::NotFound("Token"))?;
    let caller_id = ctx.caller.user.id;
    let own = ctx
        .state
        .read(move |store| store.tokens_of(caller_id))
        .await?;
    if !ctx.caller.user.is_admin && !own.iter().any(|t| t.id == token_id) {
        return Err(ApiError::NotFound("Token"));
    }
    apply(ctx, UserOp::RevokeToken { token_id }).await?;
    Ok(no_content())
}

fn member_json(ctx: &Ctx<'_>, user: &User, level: u8) -> Value {
    let mut value = json::user(&ctx.state.config, user);
    if let Value::Object(map) = &mut value {
        map.insert("access_level".into(), json!(level));
        map.insert("created_at".into(), json!(json::timestamp(user.created_at)));
        map.insert("expires_at".into(), Value::Null);
        map.insert("membership_state".into(), json!("active"));
    }
    value
}

pub async fn list_members(
    ctx: &Ctx<'_>,
    id: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let access = projects::access(ctx, id).await?;
    let page = Page::from_params(params)?;
    let project_id = access.project.id;
    let members = ctx
        .state
        .read(move |store| store.members(project_id))
        .await?;
    let total = members.len() as u64;
    let items: Vec<Value> = members
        .iter()
        .skip(page.offset() as usize)
        .take(page.per_page as usize)
        .map(|(user, level)| member_json(ctx, user, *level))
        .collect();
    let mut response = json_response(StatusCode::OK, &Value::Array(items));
    page.decorate(
        &mut response,
        &ctx.url(&format!("projects/{project_id}/members")),
        ctx.query,
        total,
    );
    Ok(response)
}

pub async fn get_member(
    ctx: &Ctx<'_>,
    id: &str,
    user_id: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let access = projects::access(ctx, id).await?;
    let user_id = user_id
        .parse::<u64>()
        .map_err(|_| ApiError::NotFound("Member"))?;
    let project_id = access.project.id;
    let members = ctx
        .state
        .read(move |store| store.members(project_id))
        .await?;
    let (user, level) = members
        .iter()
        .find(|(u, _)| u.id == user_id)
        .ok_or(ApiError::NotFound("Member"))?;
    Ok(json_response(
        StatusCode::OK,
        &member_json(ctx, user, *level),
    ))
}

fn parse_level(params: &Params) -> Result<u8, ApiError> {
    let level = params
        .id("access_level")?
        .ok_or_else(|| ApiError::BadRequest("access_level is missing".into()))?;
    u8::try_from(level)
        .ok()
        .filter(|l| access_level::is_valid(*l))
        .ok_or_else(|| ApiError::BadRequest("access_level does not have a valid value".into()))
}

pub async fn set_member(
    ctx: &Ctx<'_>,
    id: &str,
    user_id: Option<&str>,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    ctx.caller.require_write()?;
    let access = projects::access(ctx, id).await?;
    access.require(access_level::MAINTAINER)?;
    let level = parse_level(params)?;
    if level == access_level::OWNER && !access.admin && access.level < access_level::OWNER {
        return Err(ApiError::Forbidden);
    }
    let user_id = match user_id {
        Some(id) => id
            .parse::<u64>()
            .map_err(|_| ApiError::NotFound("Member"))?,
        None => params
            .id("user_id")?
            .ok_or_else(|| ApiError::BadRequest("user_id is missing".into()))?,
    };
    let target = ctx
        .state
        .read(move |store| store.user(user_id))
        .await?
        .ok_or(ApiError::NotFound("User"))?;
    if target.bot {
        return Err(ApiError::BadRequest("bots cannot be members".into()));
    }
    let outcome = apply(
        ctx,
        UserOp::SetMember {
            project_id: access.project.id,
            user_id,
            access_level: level,
        },
    )
    .await?;
    let UserOutcome::Member { user, access_level } = outcome else {
        return Err(ApiError::Internal("unexpected outcome".into()));
    };
    let status = if user_id_given(params) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_response(
        status,
        &member_json(ctx, &user, access_level),
    ))
}

fn user_id_given(params: &Params) -> bool {
    params.value("user_id").is_some()
}

pub async fn remove_member(
    ctx: &Ctx<'_>,
    id: &str,
    user_id: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    ctx.caller.require_write()?;
    let access = projects::access(ctx, id).await?;
    access.require(access_level::MAINTAINER)?;
    let user_id = user_id
        .parse::<u64>()
        .map_err(|_| ApiError::NotFound("Member"))?;
    apply(
        ctx,
        UserOp::RemoveMember {
            project_id: access.project.id,
            user_id,
        },
    )
    .await?;
    Ok(no_content())
}
