//! Read side of labels and milestones: what the label and milestone API
//! shows, and what the issue code looks up when a label or milestone is set.

use redb::{ReadTransaction, ReadableDatabase};

use super::model::*;
use super::tables::*;
use super::{decode, Store, StoreError};

/// Issues carrying one label, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabelIssueCounts {
    pub open: u64,
    pub closed: u64,
}

impl Store {
    /// Every label of a project, ordered by name (case-insensitively), as
    /// GitLab lists them.
    pub fn labels(&self, project_id: u64) -> Result<Vec<Label>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LABELS)?;
        let mut out: Vec<Label> = Vec::new();
        for row in table.range((project_id, 0)..=(project_id, u64::MAX))? {
            let (_, v) = row?;
            out.push(decode("labels", v.value())?);
        }
        out.sort_by_cached_key(|l| (l.name.to_lowercase(), l.id));
        Ok(out)
    }

    /// One label by id.
    pub fn label(&self, project_id: u64, label_id: u64) -> Result<Option<Label>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LABELS)?;
        let value = table.get((project_id, label_id))?;
        value.map(|v| decode("labels", v.value())).transpose()
    }

    /// The project's label called `name`, compared case-insensitively (names
    /// are unique that way, so there is at most one).
    pub fn label_by_name(&self, project_id: u64, name: &str) -> Result<Option<Label>, StoreError> {
        let wanted = name.trim().to_lowercase();
        Ok(self
            .labels(project_id)?
            .into_iter()
            .find(|l| l.name.to_lowercase() == wanted))
    }

    /// Open and closed issues carrying each of `names`, from the label index.
    /// `visible` is the caller's confidentiality rule; `None` means the caller
    /// sees every ticket, which spares reading the tickets themselves.
    pub fn label_issue_counts(
        &self,
        project_id: u64,
        names: &[String],
        visible: Option<&dyn Fn(&Ticket) -> bool>,
    ) -> Result<Vec<LabelIssueCounts>, StoreError> {
        let txn = self.db.begin_read()?;
        names
            .iter()
            .map(|name| count_label(&txn, project_id, name, visible))
            .collect()
    }

    /// Every milestone of a project, oldest first.
    pub fn milestones(&self, project_id: u64) -> Result<Vec<Milestone>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(MILESTONES)?;
        let mut out = Vec::new();
        for row in table.range((project_id, 0)..=(project_id, u64::MAX))? {
            let (_, v) = row?;
            out.push(decode("milestones", v.value())?);
        }
        Ok(out)
    }

    /// One milestone by its global id, if it belongs to the project.
    pub fn milestone(
        &self,
        project_id: u64,
        milestone_id: u64,
    ) -> Result<Option<Milestone>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(MILESTONES)?;
        let value = table.get((project_id, milestone_id))?;
        value.map(|v| decode("milestones", v.value())).transpose()
    }
}

fn count_label(
    txn: &ReadTransaction,
    project_id: u64,
    name: &str,
    visible: Option<&dyn Fn(&Ticket) -> bool>,
) -> Result<LabelIssueCounts, StoreError> {
    let key = name.to_lowercase();
    let index = txn.open_table(TICKETS_BY_LABEL)?;
    let states = txn.open_table(TICKETS_BY_STATE)?;
    let tickets = txn.open_table(TICKETS)?;
    let mut counts = LabelIssueCounts::default();
    for row in index.range((project_id, key.as_str(), 0)..=(project_id, key.as_str(), u64::MAX))? {
        let number = row?.0.value().2;
        let open = match visible {
            None => states.get((project_id, 0u8, number))?.is_some(),
            Some(visible) => {
                let Some(raw) = tickets.get((project_id, number))? else {
                    continue;
                };
                let ticket: Ticket = decode("tickets", raw.value())?;
                if !visible(&ticket) {
                    continue;
                }
                ticket.state == TicketState::Opened
            }
        };
        if open {
            counts.open += 1;
        } else {
            counts.closed += 1;
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::super::ops::{labels::ensure_label, Txn};
    use super::super::{
        LabelOp, LabelOutcome, MilestoneOp, MilestoneOutcome, StoreSettings, WriteOp, WriteOutcome,
    };
    use super::*;

    /// A ticket from JSON, so fields added later with defaults need no edit here.
    fn ticket(
        project_id: u64,
        number: u64,
        labels: &[&str],
        open: bool,
        confidential: bool,
    ) -> Ticket {
        serde_json::from_value(serde_json::json!({
            "id": number, "project_id": project_id, "number": number,
            "title": "t", "description": "", "state": if open { "opened" } else { "closed" },
            "confidential": confidential, "author_id": 1, "labels": labels,
            "attachments": [], "created_at": 0, "updated_at": number,
        }))
        .expect("ticket JSON")
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Store,
        project_id: u64,
        runtime: tokio::runtime::Runtime,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = Store::open(&dir.path().join("db.redb"), StoreSettings::default())
                .expect("open store");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let mut fixture = Fixture {
                _dir: dir,
                store,
                project_id: 0,
                runtime,
            };
            let WriteOutcome::ProjectCreated(project) = fixture.write(WriteOp::CreateProject {
                name: "Acme".into(),
                path: "acme".into(),
            }) else {
                panic!("project not created");
            };
            fixture.project_id = project.id;
            fixture
        }

        fn write(&self, op: WriteOp) -> WriteOutcome {
            self.runtime
                .block_on(self.store.write(op))
                .expect("write succeeds")
        }

        /// Runs `f` in a write transaction of its own, as the writer would.
        fn direct<T>(&self, f: impl FnOnce(&Txn) -> Result<T, StoreError>) -> T {
            let w = self.store.db.begin_write().expect("begin write");
            let settings = StoreSettings::default();
            let value = f(&Txn::new(&w, &settings)).expect("direct write");
            w.commit().expect("commit");
            value
        }

        fn labels_of(&self, number: u64) -> Vec<String> {
            self.store
                .ticket(self.project_id, number)
                .expect("read")
                .expect("ticket")
                .labels
        }
    }

    #[test]
    fn issue_counts_come_from_the_index_and_respect_visibility() {
        let f = Fixture::new();
        let p = f.project_id;
        f.direct(|txn| {
            txn.save_ticket(&ticket(p, 1, &["Bug"], true, false))?;
            txn.save_ticket(&ticket(p, 2, &["bug", "x"], false, false))?;
            txn.save_ticket(&ticket(p, 3, &["BUG"], true, true))
        });
        let names = vec!["bug".to_string(), "x".to_string(), "none".to_string()];
        let all = f.store.label_issue_counts(p, &names, None).expect("counts");
        assert_eq!(all[0], LabelIssueCounts { open: 2, closed: 1 });
        assert_eq!(all[1], LabelIssueCounts { open: 0, closed: 1 });
        assert_eq!(all[2], LabelIssueCounts::default());
        let public = |t: &Ticket| !t.confidential;
        let seen = f
            .store
            .label_issue_counts(p, &names, Some(&public))
            .expect("counts");
        assert_eq!(seen[0], LabelIssueCounts { open: 1, closed: 1 });
    }

    #[test]
    fn renaming_and_deleting_a_label_rewrites_its_tickets() {
        let f = Fixture::new();
        let p = f.project_id;
        f.direct(|txn| {
            txn.save_ticket(&ticket(p, 1, &["Bug", "ops"], true, false))?;
            txn.save_ticket(&ticket(p, 2, &["ops"], true, false))
        });
        let WriteOutcome::Labels(LabelOutcome::Label(bug)) =
            f.write(WriteOp::Labels(LabelOp::Create {
                project_id: p,
                name: "bug".into(),
                color: "#d9534f".into(),
                description: None,
            }))
        else {
            panic!("label not created");
        };
        f.write(WriteOp::Labels(LabelOp::Update {
            project_id: p,
            label_id: bug.id,
            new_name: Some("defect".into()),
            color: None,
            description: None,
        }));
        assert_eq!(f.labels_of(1), ["defect", "ops"]);
        assert_eq!(f.labels_of(2), ["ops"]);
        let counts = f
            .store
            .label_issue_counts(p, &["defect".into(), "bug".into()], None)
            .expect("counts");
        assert_eq!((counts[0].open, counts[1].open), (1, 0));
        f.write(WriteOp::Labels(LabelOp::Delete {
            project_id: p,
            label_id: bug.id,
        }));
        assert_eq!(f.labels_of(1), ["ops"]);
        assert!(f.store.label(p, bug.id).expect("read").is_none());
    }

    #[test]
    fn ensure_label_finds_or_creates_case_insensitively() {
        let f = Fixture::new();
        let p = f.project_id;
        let created = f.direct(|txn| ensure_label(txn, p, " Needs Info "));
        assert_eq!(created.name, "Needs Info");
        assert_eq!(created.color, Label::DEFAULT_COLOR);
        let again = f.direct(|txn| ensure_label(txn, p, "needs info"));
        assert_eq!(again, created);
        assert_eq!(f.store.labels(p).expect("labels"), vec![created.clone()]);
        assert_eq!(
            f.store.label_by_name(p, "NEEDS INFO").expect("read"),
            Some(created)
        );
        assert!(f.store.label_by_name(p, "other").expect("read").is_none());
        let w = f.store.db.begin_write().expect("begin");
        let settings = StoreSettings::default();
        assert!(ensure_label(&Txn::new(&w, &settings), p, "a,b").is_err());
        assert!(ensure_label(&Txn::new(&w, &settings), 9999, "new").is_err());
    }

    #[test]
    fn deleting_a_milestone_takes_it_off_tickets() {
        let f = Fixture::new();
        let p = f.project_id;
        let WriteOutcome::Milestones(MilestoneOutcome::Milestone(m)) =
            f.write(WriteOp::Milestones(MilestoneOp::Create {
                project_id: p,
                title: "v1".into(),
                description: None,
                due_date: Some("2026-03-01".into()),
                start_date: None,
            }))
        else {
            panic!("milestone not created");
        };
        assert_eq!(f.store.milestone(p, m.id).expect("read"), Some(m.clone()));
        assert_eq!(f.store.milestones(p).expect("read"), vec![m.clone()]);
        assert!(f.store.milestone(p + 1, m.id).expect("read").is_none());
        f.direct(|txn| {
            let mut t = ticket(p, 1, &[], true, false);
            t.milestone_id = Some(m.id);
            txn.save_ticket(&t)
        });
        f.write(WriteOp::Milestones(MilestoneOp::Delete {
            project_id: p,
            milestone_id: m.id,
        }));
        let t = f.store.ticket(p, 1).expect("read").expect("ticket");
        assert_eq!(t.milestone_id, None);
        assert!(f.store.milestones(p).expect("read").is_empty());
    }
}
