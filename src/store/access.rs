//! Read side of users, tokens and membership: who may see what.

use redb::{ReadableDatabase, ReadableTable};

use super::model::*;
use super::tables::*;
use super::{decode, Store, StoreError};

impl Store {
    /// The caller's access level in a project (0 = not a member).
    pub fn access_level(&self, project_id: u64, user_id: u64) -> Result<u8, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(MEMBERS)?;
        Ok(table
            .get((project_id, user_id))?
            .map(|v| v.value())
            .unwrap_or(access_level::NONE))
    }

    /// Every project the user is a member of, with the level.
    pub fn memberships(&self, user_id: u64) -> Result<Vec<(u64, u8)>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(MEMBERSHIPS)?;
        let mut out = Vec::new();
        for row in table.range((user_id, 0)..=(user_id, u64::MAX))? {
            let (k, v) = row?;
            out.push((k.value().1, v.value()));
        }
        Ok(out)
    }

    /// The members of a project with their levels.
    pub fn members(&self, project_id: u64) -> Result<Vec<(User, u8)>, StoreError> {
        let txn = self.db.begin_read()?;
        let members = txn.open_table(MEMBERS)?;
        let users = txn.open_table(USERS)?;
        let mut out = Vec::new();
        for row in members.range((project_id, 0)..=(project_id, u64::MAX))? {
            let (k, v) = row?;
            if let Some(user) = users.get(k.value().1)? {
                out.push((decode("users", user.value())?, v.value()));
            }
        }
        Ok(out)
    }

    /// Every user, by id.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(USERS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (_, v) = row?;
            out.push(decode("users", v.value())?);
        }
        Ok(out)
    }

    /// A user by (case-insensitive) username.
    pub fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let txn = self.db.begin_read()?;
        let names = txn.open_table(USERNAMES)?;
        let Some(id) = names
            .get(username.to_lowercase().as_str())?
            .map(|v| v.value())
        else {
            return Ok(None);
        };
        let users = txn.open_table(USERS)?;
        let user = users.get(id)?;
        user.map(|v| decode("users", v.value())).transpose()
    }

    /// The tokens of a user (without their values, which are not stored).
    pub fn tokens_of(&self, user_id: u64) -> Result<Vec<ApiToken>, StoreError> {
        let txn = self.db.begin_read()?;
        let ids = txn.open_table(TOKEN_IDS)?;
        let tokens = txn.open_table(API_TOKENS)?;
        let mut out = Vec::new();
        for row in ids.iter()? {
            let (_, hash) = row?;
            if let Some(v) = tokens.get(hash.value())? {
                let token: ApiToken = decode("api_tokens", v.value())?;
                if token.user_id == user_id {
                    out.push(token);
                }
            }
        }
        Ok(out)
    }
}
