//! Hooks: store side (being written).

use super::Txn;
use crate::store::StoreError;

/// A change to project hooks.
#[derive(Debug, Clone)]
pub enum HookOp {
    /// Placeholder until the hooks ops land.
    Nothing,
}

/// What a [`HookOp`] produced.
#[derive(Debug, Clone)]
pub enum HookOutcome {
    Done,
}

pub fn apply(_txn: &mut Txn, op: &HookOp) -> Result<HookOutcome, StoreError> {
    match op {
        HookOp::Nothing => Ok(HookOutcome::Done),
    }
}
