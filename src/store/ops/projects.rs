//! Creating projects and changing their service desk settings.

use redb::ReadableTable;

use super::Txn;
use crate::store::model::*;
use crate::store::tables::*;
use crate::store::{now_millis, StoreError, RESERVED_PATHS};

pub fn create(txn: &mut Txn, name: &str, path: &str) -> Result<Project, StoreError> {
    let path = path.to_ascii_lowercase();
    if RESERVED_PATHS.contains(&path.as_str()) {
        return Err(StoreError::PathReserved(path));
    }
    if txn
        .w
        .open_table(PROJECT_PATHS)?
        .get(path.as_str())?
        .is_some()
    {
        return Err(StoreError::PathTaken(path));
    }
    let project = Project {
        id: txn.counter("next_project_id")?,
        name: name.to_string(),
        path: path.clone(),
        confidential_by_default: true,
        created_at: now_millis(),
        service_desk: ServiceDeskSettings::default(),
    };
    txn.w
        .open_table(PROJECT_PATHS)?
        .insert(path.as_str(), project.id)?;
    txn.save_project(&project)?;
    txn.event("project_created", project.id, None)?;
    Ok(project)
}

pub fn update_service_desk(
    txn: &mut Txn,
    project_id: u64,
    settings: &ServiceDeskSettings,
) -> Result<Project, StoreError> {
    let mut project = txn
        .project(project_id)?
        .ok_or(StoreError::NotFound("Project"))?;
    project.service_desk = settings.clone();
    txn.save_project(&project)?;
    Ok(project)
}
