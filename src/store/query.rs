//! Ticket queries for the issue lists: filters as GitLab's, answered from the
//! index tables so the common filters (state, label, assignee, updated_at)
//! never scan every ticket, with offset and keyset pagination.

use redb::{ReadTransaction, ReadableDatabase};

use super::model::*;
use super::tables::*;
use super::{decode, Store, StoreError};

/// Counting stops here; past it the total is unknown (GitLab does the same
/// above 10,000 and omits `X-Total`).
pub const COUNT_CAP: u64 = 10_000;

/// GitLab's `labels` filter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LabelFilter {
    #[default]
    Ignore,
    /// `None`: no label at all.
    NoLabel,
    /// `Any`: at least one label.
    AnyLabel,
    /// Every one of these (case-insensitive).
    All(Vec<String>),
}

/// A filter on a user or milestone id: `None`, `Any`, or one id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdFilter {
    #[default]
    Ignore,
    NoneSet,
    AnySet,
    Is(u64),
}

/// Sort field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderBy {
    #[default]
    CreatedAt,
    UpdatedAt,
}

/// Where keyset pagination resumes: strictly after this ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub updated_at: i64,
    pub number: u64,
}

/// One issue-list query.
#[derive(Debug, Clone, Default)]
pub struct TicketQuery {
    pub project_id: u64,
    pub state: Option<TicketState>,
    pub labels: LabelFilter,
    pub assignee: IdFilter,
    pub milestone: IdFilter,
    pub author_id: Option<u64>,
    /// Lower-cased; matched in title and description.
    pub search: Option<String>,
    pub confidential: Option<bool>,
    pub iids: Option<Vec<u64>>,
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    pub updated_after: Option<i64>,
    pub updated_before: Option<i64>,
    pub order_by: OrderBy,
    pub ascending: bool,
    pub after: Option<Cursor>,
}

/// A page of results.
#[derive(Debug)]
pub struct QueryPage {
    pub tickets: Vec<Ticket>,
    /// Matching tickets in all, when at most [`COUNT_CAP`].
    pub total: Option<u64>,
    /// More tickets follow this page.
    pub more: bool,
}

impl TicketQuery {
    fn matches(&self, t: &Ticket) -> bool {
        if self.state.is_some_and(|s| s != t.state) {
            return false;
        }
        match &self.labels {
            LabelFilter::Ignore => {}
            LabelFilter::NoLabel if !t.labels.is_empty() => return false,
            LabelFilter::AnyLabel if t.labels.is_empty() => return false,
            LabelFilter::All(wanted)
                if !wanted
                    .iter()
                    .all(|w| t.labels.iter().any(|l| l.eq_ignore_ascii_case(w))) =>
            {
                return false
            }
            _ => {}
        }
        let id_ok = |filter: IdFilter, ids: &[u64]| match filter {
            IdFilter::Ignore => true,
            IdFilter::NoneSet => ids.is_empty(),
            IdFilter::AnySet => !ids.is_empty(),
            IdFilter::Is(id) => ids.contains(&id),
        };
        if !id_ok(self.assignee, &t.assignee_ids)
            || !id_ok(self.milestone, t.milestone_id.as_slice())
        {
            return false;
        }
        if self.author_id.is_some_and(|a| a != t.author_id) {
            return false;
        }
        if self.confidential.is_some_and(|c| c != t.confidential) {
            return false;
        }
        if self
            .iids
            .as_ref()
            .is_some_and(|iids| !iids.contains(&t.number))
        {
            return false;
        }
        if self.created_after.is_some_and(|x| t.created_at < x)
            || self.created_before.is_some_and(|x| t.created_at > x)
            || self.updated_after.is_some_and(|x| t.updated_at < x)
            || self.updated_before.is_some_and(|x| t.updated_at > x)
        {
            return false;
        }
        if let Some(search) = &self.search {
            if !t.title.to_lowercase().contains(search)
                && !t.description.to_lowercase().contains(search)
            {
                return false;
            }
        }
        true
    }
}

impl Store {
    /// Runs `query`; `visible` is the caller's confidentiality rule, applied
    /// before counting so hidden tickets are absent from totals too.
    pub fn query_tickets(
        &self,
        query: &TicketQuery,
        visible: &dyn Fn(&Ticket) -> bool,
        offset: u64,
        limit: u64,
    ) -> Result<QueryPage, StoreError> {
        let txn = self.db.begin_read()?;
        let numbers = candidates(&txn, query)?;
        let tickets = txn.open_table(TICKETS)?;
        let mut page = Vec::new();
        let mut matched = 0u64;
        let mut more = false;
        for number in numbers {
            let number = number?;
            let Some(raw) = tickets.get((query.project_id, number))? else {
                continue;
            };
            let ticket: Ticket = decode("tickets", raw.value())?;
            if !query.matches(&ticket) || !visible(&ticket) {
                continue;
            }
            if matched >= offset && (page.len() as u64) < limit {
                page.push(ticket);
            } else if matched >= offset {
                more = true;
            }
            matched += 1;
            if matched > offset + limit && matched >= COUNT_CAP {
                return Ok(QueryPage {
                    tickets: page,
                    total: None,
                    more: true,
                });
            }
        }
        Ok(QueryPage {
            tickets: page,
            total: Some(matched),
            more,
        })
    }
}

type Numbers = Box<dyn Iterator<Item = Result<u64, StoreError>>>;

/// Ticket numbers to examine, in the requested order, from the narrowest index.
fn candidates(txn: &ReadTransaction, q: &TicketQuery) -> Result<Numbers, StoreError> {
    let p = q.project_id;
    let asc = q.ascending;
    fn ordered<I>(iter: I, ascending: bool) -> Numbers
    where
        I: DoubleEndedIterator<Item = Result<u64, StoreError>> + 'static,
    {
        if ascending {
            Box::new(iter)
        } else {
            Box::new(iter.rev())
        }
    }
    if q.order_by == OrderBy::UpdatedAt {
        let table = txn.open_table(TICKETS_BY_UPDATED)?;
        let low = q.updated_after.unwrap_or(i64::MIN);
        let high = q.updated_before.unwrap_or(i64::MAX);
        let (low, high) = match q.after {
            Some(c) if asc => (
                (c.updated_at, c.number.saturating_add(1)).max((low, 0)),
                (high, u64::MAX),
            ),
            Some(c) if c.number == 0 => (
                (low, 0),
                (c.updated_at.saturating_sub(1), u64::MAX).min((high, u64::MAX)),
            ),
            Some(c) => ((low, 0), (c.updated_at, c.number - 1).min((high, u64::MAX))),
            None => ((low, 0), (high, u64::MAX)),
        };
        if low > high {
            return Ok(Box::new(std::iter::empty()));
        }
        let range = table.range((p, low.0, low.1)..=(p, high.0, high.1))?;
        return Ok(ordered(
            range.map(|r| r.map(|(k, _)| k.value().2).map_err(StoreError::from)),
            asc,
        ));
    }
    // Created order is ticket-number order within a project.
    let (from, to) = match q.after {
        Some(c) if asc => (c.number.saturating_add(1), u64::MAX),
        Some(c) => (0, c.number.saturating_sub(1)),
        None => (0, u64::MAX),
    };
    if from > to || (q.after.is_some_and(|c| c.number == 0) && !asc) {
        return Ok(Box::new(std::iter::empty()));
    }
    if let LabelFilter::All(labels) = &q.labels {
        if let Some(first) = labels.first() {
            let label = first.to_lowercase();
            let table = txn.open_table(TICKETS_BY_LABEL)?;
            let range = table.range((p, label.as_str(), from)..=(p, label.as_str(), to))?;
            return Ok(ordered(
                range.map(|r| r.map(|(k, _)| k.value().2).map_err(StoreError::from)),
                asc,
            ));
        }
    }
    if let IdFilter::Is(user) = q.assignee {
        let table = txn.open_table(TICKETS_BY_ASSIGNEE)?;
        let range = table.range((p, user, from)..=(p, user, to))?;
        return Ok(ordered(
            range.map(|r| r.map(|(k, _)| k.value().2).map_err(StoreError::from)),
            asc,
        ));
    }
    if let Some(iids) = &q.iids {
        let mut iids: Vec<u64> = iids
            .iter()
            .copied()
            .filter(|n| (from..=to).contains(n))
            .collect();
        iids.sort_unstable();
        iids.dedup();
        return Ok(ordered(iids.into_iter().map(Ok), asc));
    }
    // An updated_at window, however ordered, is read from its index: only
    // the tickets inside the window are collected, then put in number order.
    if q.updated_after.is_some() || q.updated_before.is_some() {
        let table = txn.open_table(TICKETS_BY_UPDATED)?;
        let low = q.updated_after.unwrap_or(i64::MIN);
        let high = q.updated_before.unwrap_or(i64::MAX);
        if low > high {
            return Ok(Box::new(std::iter::empty()));
        }
        let mut numbers = Vec::new();
        for row in table.range((p, low, 0)..=(p, high, u64::MAX))? {
            let number = row?.0.value().2;
            if (from..=to).contains(&number) {
                numbers.push(number);
            }
        }
        numbers.sort_unstable();
        return Ok(ordered(numbers.into_iter().map(Ok), asc));
    }
    if let Some(state) = q.state {
        let key = match state {
            TicketState::Opened => 0u8,
            TicketState::Closed => 1u8,
        };
        let table = txn.open_table(TICKETS_BY_STATE)?;
        let range = table.range((p, key, from)..=(p, key, to))?;
        return Ok(ordered(
            range.map(|r| r.map(|(k, _)| k.value().2).map_err(StoreError::from)),
            asc,
        ));
    }
    let table = txn.open_table(TICKETS)?;
    let range = table.range((p, from)..=(p, to))?;
    Ok(ordered(
        range.map(|r| r.map(|(k, _)| k.value().1).map_err(StoreError::from)),
        asc,
    ))
}
