//! `/projects`: create (admins), list, get by id or URL-encoded path.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use serde_json::Value;

use super::json::{self, NAMESPACE};
use super::pagination::Page;
use super::request::{json_response, Params};
use super::router::Ctx;
use super::ApiError;
use crate::store::{Project, WriteOp, WriteOutcome};

/// Whether the caller may see `project` at all. Until project membership
/// exists, only administrators can.
pub fn visible(ctx: &Ctx<'_>, _project: &Project) -> bool {
    ctx.caller.user.is_admin
}

/// Resolves `:id`: a numeric id, a path, or `namespace/path`.
pub async fn find(ctx: &Ctx<'_>, id: &str) -> Result<Project, ApiError> {
    let id = id.to_string();
    let project = if let Ok(number) = id.parse::<u64>() {
        ctx.state.read(move |store| store.project(number)).await?
    } else {
        let path = id
            .strip_prefix(&format!("{NAMESPACE}/"))
            .unwrap_or(&id)
            .to_ascii_lowercase();
        ctx.state
            .read(move |store| store.project_by_path(&path))
            .await?
    };
    project
        .filter(|p| visible(ctx, p))
        .ok_or(ApiError::NotFound("Project"))
}

pub async fn get(ctx: &Ctx<'_>, id: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    let project = find(ctx, id).await?;
    Ok(json_response(
        StatusCode::OK,
        &json::project(&ctx.state.config, &project),
    ))
}

pub async fn list(ctx: &Ctx<'_>, params: &Params) -> Result<Response<Full<Bytes>>, ApiError> {
    let page = Page::from_params(params)?;
    let search = params.string("search")?.map(|s| s.to_lowercase());
    let mut projects: Vec<Project> = ctx
        .state
        .read(|store| store.projects())
        .await?
        .into_iter()
        .filter(|p| visible(ctx, p))
        .filter(|p| {
            search.as_ref().is_none_or(|s| {
                p.path.contains(s.as_str()) || p.name.to_lowercase().contains(s.as_str())
            })
        })
        .collect();
    // GitLab lists newest first by default.
    projects.reverse();
    let total = projects.len() as u64;
    let items: Vec<Value> = projects
        .iter()
        .skip(page.offset() as usize)
        .take(page.per_page as usize)
        .map(|p| json::project(&ctx.state.config, p))
        .collect();
    let mut response = json_response(StatusCode::OK, &Value::Array(items));
    page.decorate(&mut response, &ctx.url("projects"), ctx.query, total);
    Ok(response)
}

pub async fn create(ctx: &Ctx<'_>, params: &Params) -> Result<Response<Full<Bytes>>, ApiError> {
    ctx.caller.require_write()?;
    ctx.caller.require_admin()?;
    let name = params
        .string("name")?
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    let path = params
        .string("path")?
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty());
    let (name, path) = match (name, path) {
        (None, None) => return Err(ApiError::BadRequest("name or path is missing".into())),
        (Some(name), None) => {
            let path = slug(&name);
            (name, path)
        }
        (None, Some(path)) => (path.clone(), path),
        (Some(name), Some(path)) => (name, path),
    };
    if name.chars().count() > 255 || name.chars().any(char::is_control) {
        return Err(ApiError::Validation {
            field: "name",
            reason: "is invalid".into(),
        });
    }
    if !crate::address::is_valid_project_path(&path) {
        return Err(ApiError::Validation {
            field: "path",
            reason: "can contain only letters, digits, '_', '-' and '.', and must start with a letter or digit".into(),
        });
    }
    let outcome = ctx
        .state
        .store
        .write(WriteOp::CreateProject { name, path })
        .await?;
    let WriteOutcome::ProjectCreated(project) = outcome else {
        return Err(ApiError::Internal("unexpected write outcome".into()));
    };
    Ok(json_response(
        StatusCode::CREATED,
        &json::project(&ctx.state.config, &project),
    ))
}

/// GitLab's path from a name: lower case, runs of other characters as `-`.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn slug_from_name() {
        assert_eq!(super::slug("Acme Support!"), "acme-support");
        assert_eq!(super::slug("  --"), "");
    }
}
