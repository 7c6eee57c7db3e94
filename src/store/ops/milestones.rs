//! Milestones: store side (being written).

use super::Txn;
use crate::store::StoreError;

/// A change to project milestones.
#[derive(Debug, Clone)]
pub enum MilestoneOp {
    /// Placeholder until the milestones ops land.
    Nothing,
}

/// What a [`MilestoneOp`] produced.
#[derive(Debug, Clone)]
pub enum MilestoneOutcome {
    Done,
}

pub fn apply(_txn: &mut Txn, op: &MilestoneOp) -> Result<MilestoneOutcome, StoreError> {
    match op {
        MilestoneOp::Nothing => Ok(MilestoneOutcome::Done),
    }
}
