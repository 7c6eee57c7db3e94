//! Project milestones: create, update (fields and `active`/`closed`), delete.
//!
//! Invariants:
//! - `iid` is per project, from the META counter `milestone_iid:<project>`,
//!   and never reused; `id` is global (`next_milestone_id`);
//! - a title is unique in its project (compared exactly, as GitLab does),
//!   trimmed, non-empty and at most [`Milestone::MAX_TITLE_CHARS`] characters;
//! - `due_date` and `start_date` are real calendar dates written
//!   `YYYY-MM-DD`, and a start date is not after the due date;
//! - `state` is `active` or `closed`;
//! - deleting a milestone takes it off every ticket of the project.

use redb::ReadableTable;

use super::Txn;
use crate::store::model::*;
use crate::store::tables::*;
use crate::store::{decode, encode, now_millis, StoreError};

/// A change to project milestones. Titles and dates arrive normalized (see
/// [`Milestone::normalize_title`], [`Milestone::parse_date`]); the op checks again.
#[derive(Debug, Clone)]
pub enum MilestoneOp {
    Create {
        project_id: u64,
        title: String,
        description: Option<String>,
        due_date: Option<String>,
        start_date: Option<String>,
    },
    /// `None` leaves a field as it is; `Some(None)` clears it. `close`:
    /// `Some(true)` closes, `Some(false)` activates (GitLab's `state_event`).
    Update {
        project_id: u64,
        milestone_id: u64,
        title: Option<String>,
        description: Option<Option<String>>,
        due_date: Option<Option<String>>,
        start_date: Option<Option<String>>,
        close: Option<bool>,
    },
    Delete {
        project_id: u64,
        milestone_id: u64,
    },
}

/// What a [`MilestoneOp`] produced: the milestone as stored (or as it was,
/// for a delete).
#[derive(Debug, Clone)]
pub enum MilestoneOutcome {
    Milestone(Milestone),
    Deleted(Milestone),
}

impl Milestone {
    /// GitLab's limit on milestone titles.
    pub const MAX_TITLE_CHARS: usize = 255;
    /// The store's refusal when the title is used by another milestone.
    pub const TITLE_TAKEN: &'static str = "title has already been taken";
    /// The store's refusal when the start date is after the due date.
    pub const DATES_INVERTED: &'static str = "due_date must be greater than start date";

    /// The stored form of a title (trimmed), or GitLab's reason for refusing it.
    pub fn normalize_title(raw: &str) -> Result<String, &'static str> {
        let title = raw.trim();
        if title.is_empty() {
            Err("can't be blank")
        } else if title.chars().count() > Milestone::MAX_TITLE_CHARS {
            Err("is too long (maximum is 255 characters)")
        } else {
            Ok(title.to_string())
        }
    }

    /// A calendar date written `YYYY-MM-DD` (GitLab keeps years to four
    /// digits), returned as stored; anything else is `None`.
    pub fn parse_date(text: &str) -> Option<String> {
        let text = text.trim();
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return None;
        }
        let number = |range: std::ops::Range<usize>| -> Option<u32> {
            let part = text.get(range)?;
            part.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| part.parse().ok())?
        };
        let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (year >= 1 && (1..=days).contains(&day)).then(|| text.to_string())
    }

    pub fn is_closed(&self) -> bool {
        self.state == "closed"
    }
}

pub fn apply(txn: &mut Txn, op: &MilestoneOp) -> Result<MilestoneOutcome, StoreError> {
    match op {
        MilestoneOp::Create {
            project_id,
            title,
            description,
            due_date,
            start_date,
        } => {
            txn.project(*project_id)?
                .ok_or(StoreError::NotFound("Project"))?;
            let now = now_millis();
            let mut milestone = Milestone {
                id: 0,
                iid: 0,
                project_id: *project_id,
                title: title.clone(),
                description: description.clone(),
                due_date: due_date.clone(),
                start_date: start_date.clone(),
                state: "active".into(),
                created_at: now,
                updated_at: now,
            };
            check(txn, &mut milestone)?;
            milestone.id = txn.counter("next_milestone_id")?;
            milestone.iid = txn.counter(&format!("milestone_iid:{project_id}"))?;
            save(txn, &milestone)?;
            Ok(MilestoneOutcome::Milestone(milestone))
        }
        MilestoneOp::Update {
            project_id,
            milestone_id,
            title,
            description,
            due_date,
            start_date,
            close,
        } => {
            let mut milestone =
                get(txn, *project_id, *milestone_id)?.ok_or(StoreError::NotFound("Milestone"))?;
            if let Some(title) = title {
                milestone.title = title.clone();
            }
            if let Some(description) = description {
                milestone.description = description.clone();
            }
            if let Some(due_date) = due_date {
                milestone.due_date = due_date.clone();
            }
            if let Some(start_date) = start_date {
                milestone.start_date = start_date.clone();
            }
            if let Some(close) = close {
                milestone.state = if *close { "closed" } else { "active" }.into();
            }
            check(txn, &mut milestone)?;
            milestone.updated_at = now_millis();
            save(txn, &milestone)?;
            Ok(MilestoneOutcome::Milestone(milestone))
        }
        MilestoneOp::Delete {
            project_id,
            milestone_id,
        } => {
            let milestone =
                get(txn, *project_id, *milestone_id)?.ok_or(StoreError::NotFound("Milestone"))?;
            txn.w
                .open_table(MILESTONES)?
                .remove((*project_id, *milestone_id))?;
            unset_on_tickets(txn, *project_id, *milestone_id)?;
            Ok(MilestoneOutcome::Deleted(milestone))
        }
    }
}

/// Enforces the invariants on a milestone about to be stored (normalizing
/// its title), without writing anything.
fn check(txn: &Txn, milestone: &mut Milestone) -> Result<(), StoreError> {
    milestone.title = Milestone::normalize_title(&milestone.title)
        .map_err(|reason| StoreError::Conflict(format!("title {reason}")))?;
    for date in [&milestone.due_date, &milestone.start_date]
        .into_iter()
        .flatten()
    {
        if Milestone::parse_date(date).as_deref() != Some(date.as_str()) {
            return Err(StoreError::Conflict(format!("date {date:?} is invalid")));
        }
    }
    if let (Some(start), Some(due)) = (&milestone.start_date, &milestone.due_date) {
        if start > due {
            return Err(StoreError::Conflict(Milestone::DATES_INVERTED.into()));
        }
    }
    let table = txn.w.open_table(MILESTONES)?;
    for row in table.range((milestone.project_id, 0)..=(milestone.project_id, u64::MAX))? {
        let (_, v) = row?;
        let other: Milestone = decode("milestones", v.value())?;
        if other.id != milestone.id && other.title == milestone.title {
            return Err(StoreError::Conflict(Milestone::TITLE_TAKEN.into()));
        }
    }
    Ok(())
}

fn save(txn: &Txn, milestone: &Milestone) -> Result<(), StoreError> {
    txn.w.open_table(MILESTONES)?.insert(
        (milestone.project_id, milestone.id),
        encode(milestone)?.as_slice(),
    )?;
    Ok(())
}

fn get(txn: &Txn, project_id: u64, milestone_id: u64) -> Result<Option<Milestone>, StoreError> {
    let table = txn.w.open_table(MILESTONES)?;
    let value = table.get((project_id, milestone_id))?;
    value.map(|v| decode("milestones", v.value())).transpose()
}

/// No index maps milestones to tickets, so this reads the project's tickets;
/// deleting a milestone is rare enough to pay for that.
fn unset_on_tickets(txn: &Txn, project_id: u64, milestone_id: u64) -> Result<(), StoreError> {
    let affected: Vec<Ticket> = {
        let table = txn.w.open_table(TICKETS)?;
        let mut affected = Vec::new();
        for row in table.range((project_id, 0)..=(project_id, u64::MAX))? {
            let (_, v) = row?;
            let ticket: Ticket = decode("tickets", v.value())?;
            if ticket.milestone_id == Some(milestone_id) {
                affected.push(ticket);
            }
        }
        affected
    };
    for mut ticket in affected {
        ticket.milestone_id = None;
        txn.save_ticket(&ticket)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_dates_are_accepted() {
        for good in [
            "2026-01-31",
            "2024-02-29",
            "2000-02-29",
            "0001-01-01",
            "9999-12-31",
        ] {
            assert_eq!(Milestone::parse_date(good).as_deref(), Some(good));
        }
        assert_eq!(
            Milestone::parse_date(" 2026-03-01 ").as_deref(),
            Some("2026-03-01")
        );
    }

    #[test]
    fn malformed_or_impossible_dates_are_refused() {
        for bad in [
            "",
            "2026",
            "2026-1-01",
            "2026-01-1",
            "26-01-01",
            "2026/01/01",
            "2026-13-01",
            "2026-00-10",
            "2026-01-00",
            "2026-01-32",
            "2026-04-31",
            "2023-02-29",
            "1900-02-29",
            "0000-01-01",
            "+026-01-01",
            "2026-01-01T00:00:00Z",
            "20260-01-01",
            "2026-0a-01",
            "２０２６-01-01",
            "yesterday",
        ] {
            assert_eq!(Milestone::parse_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(Milestone::normalize_title(" v1.0 ").as_deref(), Ok("v1.0"));
        assert!(Milestone::normalize_title(" \t").is_err());
        assert!(Milestone::normalize_title(&"x".repeat(256)).is_err());
        assert!(Milestone::normalize_title(&"x".repeat(255)).is_ok());
    }
}
