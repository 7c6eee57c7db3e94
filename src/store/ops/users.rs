//! Users, personal access tokens and project membership.

use redb::ReadableTable;
use sha2::{Digest, Sha256};

use super::Txn;
use crate::store::model::*;
use crate::store::tables::*;
use crate::store::{decode, encode, now_millis, StoreError};

/// A change to users, tokens or members.
#[derive(Debug, Clone)]
pub enum UserOp {
    Create {
        username: String,
        name: String,
        email: Option<String>,
        is_admin: bool,
    },
    /// Stores a new token; only its hash is kept (the caller shows the value once).
    CreateToken {
        user_id: u64,
        name: String,
        scopes: Vec<Scope>,
        expires_at: Option<String>,
        value: String,
    },
    RevokeToken {
        token_id: u64,
    },
    /// Adds or changes a membership.
    SetMember {
        project_id: u64,
        user_id: u64,
        access_level: u8,
    },
    RemoveMember {
        project_id: u64,
        user_id: u64,
    },
}

/// What a [`UserOp`] produced.
#[derive(Debug, Clone)]
pub enum UserOutcome {
    User(User),
    Token(ApiToken),
    Member { user: User, access_level: u8 },
    Done,
}

pub fn apply(txn: &mut Txn, op: &UserOp) -> Result<UserOutcome, StoreError> {
    match op {
        UserOp::Create {
            username,
            name,
            email,
            is_admin,
        } => {
            let key = username.to_lowercase();
            if txn.w.open_table(USERNAMES)?.get(key.as_str())?.is_some() {
                return Err(StoreError::Conflict(
                    "username has already been taken".into(),
                ));
            }
            let user = User {
                id: txn.counter("next_user_id")?,
                username: username.clone(),
                name: name.clone(),
                is_admin: *is_admin,
                bot: false,
                created_at: now_millis(),
                email: email.clone(),
                blocked: false,
            };
            txn.w.open_table(USERNAMES)?.insert(key.as_str(), user.id)?;
            txn.w
                .open_table(USERS)?
                .insert(user.id, encode(&user)?.as_slice())?;
            Ok(UserOutcome::User(user))
        }
        UserOp::CreateToken {
            user_id,
            name,
            scopes,
            expires_at,
            value,
        } => {
            let user = user(txn, *user_id)?.ok_or(StoreError::NotFound("User"))?;
            if user.bot {
                return Err(StoreError::Conflict("bots cannot own tokens".into()));
            }
            let token = ApiToken {
                id: txn.counter("next_token_id")?,
                user_id: *user_id,
                name: name.clone(),
                scopes: scopes.clone(),
                revoked: false,
                created_at: now_millis(),
                expires_at: expires_at.clone(),
            };
            let hash = Sha256::digest(value.as_bytes());
            txn.w
                .open_table(API_TOKENS)?
                .insert(hash.as_slice(), encode(&token)?.as_slice())?;
            txn.w
                .open_table(TOKEN_IDS)?
                .insert(token.id, hash.as_slice())?;
            Ok(UserOutcome::Token(token))
        }
        UserOp::RevokeToken { token_id } => {
            let hash = txn
                .w
                .open_table(TOKEN_IDS)?
                .get(*token_id)?
                .map(|v| v.value().to_vec())
                .ok_or(StoreError::NotFound("Token"))?;
            let mut tokens = txn.w.open_table(API_TOKENS)?;
            let mut token: ApiToken = match tokens.get(hash.as_slice())? {
                Some(v) => decode("api_tokens", v.value())?,
                None => return Err(StoreError::NotFound("Token")),
            };
            token.revoked = true;
            tokens.insert(hash.as_slice(), encode(&token)?.as_slice())?;
            Ok(UserOutcome::Token(token))
        }
        UserOp::SetMember {
            project_id,
            user_id,
            access_level,
        } => {
            let user = user(txn, *user_id)?.ok_or(StoreError::NotFound("User"))?;
            txn.project(*project_id)?
                .ok_or(StoreError::NotFound("Project"))?;
            txn.w
                .open_table(MEMBERS)?
                .insert((*project_id, *user_id), *access_level)?;
            txn.w
                .open_table(MEMBERSHIPS)?
                .insert((*user_id, *project_id), *access_level)?;
            Ok(UserOutcome::Member {
                user,
                access_level: *access_level,
            })
        }
        UserOp::RemoveMember {
            project_id,
            user_id,
        } => {
            let removed = txn
                .w
                .open_table(MEMBERS)?
                .remove((*project_id, *user_id))?
                .is_some();
            txn.w
                .open_table(MEMBERSHIPS)?
                .remove((*user_id, *project_id))?;
            if removed {
                Ok(UserOutcome::Done)
            } else {
                Err(StoreError::NotFound("Member"))
            }
        }
    }
}

fn user(txn: &Txn, id: u64) -> Result<Option<User>, StoreError> {
    let table = txn.w.open_table(USERS)?;
    let value = table.get(id)?;
    value.map(|v| decode("users", v.value())).transpose()
}
