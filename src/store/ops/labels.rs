//! Labels: store side (being written).

use super::Txn;
use crate::store::StoreError;

/// A change to project labels.
#[derive(Debug, Clone)]
pub enum LabelOp {
    /// Placeholder until the labels ops land.
    Nothing,
}

/// What a [`LabelOp`] produced.
#[derive(Debug, Clone)]
pub enum LabelOutcome {
    Done,
}

pub fn apply(_txn: &mut Txn, op: &LabelOp) -> Result<LabelOutcome, StoreError> {
    match op {
        LabelOp::Nothing => Ok(LabelOutcome::Done),
    }
}
