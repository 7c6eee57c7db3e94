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
use crate::store::{access_level, Project, Ticket, WriteOp, WriteOutcome};

/// What the caller may do in one project (GitLab's role rules).
#[derive(Debug, Clone)]
pub struct ProjectAccess {
    pub project: Project,
    /// The member's access level; administrators count as owners.
    pub level: u8,
    pub admin: bool,
    pub user_id: u64,
}

impl ProjectAccess {
    /// GitLab's rule: confidential issues are visible to Reporter+ members,
    /// administrators, their author and their assignees; others to Guest+.
    pub fn can_see(&self, ticket: &Ticket) -> bool {
        if self.admin || self.level >= access_level::REPORTER {
            return true;
        }
        if self.level < access_level::GUEST {
            return false;
        }
        !ticket.confidential
            || ticket.author_id == self.user_id
            || ticket.assignee_ids.contains(&self.user_id)
    }

    /// 403 unless the caller has at least `level` (administrators always do).
    pub fn require(&self, level: u8) -> Result<(), ApiError> {
        if self.admin || self.level >= level {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

async fn resolve(ctx: &Ctx<'_>, id: &str) -> Result<Option<Project>, ApiError> {
    let id = id.to_string();
    if let Ok(number) = id.parse::<u64>() {
        ctx.state.read(move |store| store.project(number)).await
    } else {
        let path = id
            .strip_prefix(&format!("{NAMESPACE}/"))
            .unwrap_or(&id)
            .to_ascii_lowercase();
        ctx.state
            .read(move |store| store.project_by_path(&path))
            .await
    }
}

/// Resolves `:id` (a numeric id, a path, or `namespace/path`) and the
/// caller's rights there; a project the caller may not see does not exist (404).
pub async fn access(ctx: &Ctx<'_>, id: &str) -> Result<ProjectAccess, ApiError> {
    let project = resolve(ctx, id)
        .await?
        .ok_or(ApiError::NotFound("Project"))?;
    let user = &ctx.caller.user;
    let admin = user.is_admin;
    let level = if admin {
        access_level::OWNER
    } else {
        let (project_id, user_id) = (project.id, user.id);
        ctx.state
            .read(move |store| store.access_level(project_id, user_id))
            .await?
    };
    if !admin && level < access_level::GUEST {
        return Err(ApiError::NotFound("Project"));
    }
    Ok(ProjectAccess {
        project,
        level,
        admin,
        user_id: user.id,
    })
}

/// The project at `:id`, if the caller may see it.
pub async fn find(ctx: &Ctx<'_>, id: &str) -> Result<Project, ApiError> {
    Ok(access(ctx, id).await?.project)
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
    let user = ctx.caller.user.clone();
    let visible: Option<Vec<u64>> = if user.is_admin {
        None
    } else {
        let user_id = user.id;
        let memberships = ctx
            .state
            .read(move |store| store.memberships(user_id))
            .await?;
        Some(
            memberships
                .into_iter()
                .map(|(project, _)| project)
                .collect(),
        )
    };
    let mut projects: Vec<Project> = ctx
        .state
        .read(|store| store.projects())
        .await?
        .into_iter()
        .filter(|p| visible.as_ref().is_none_or(|ids| ids.contains(&p.id)))
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
