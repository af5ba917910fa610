//! The audit log: who did what to which thing, when, and what came of it. Append-only,
//! and tamper-evident: every entry is chained to the one before it by SHA-256, so a
//! changed, removed or reordered entry breaks the chain at that entry, and the chain's
//! head, written to the server's log output from time to time, shows a cut-off tail.
//!
//! The chain is described on [`AuditLog`].

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{EnvironmentId, Result, Timestamp};

/// The `prev` of the first entry: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Something that happened, to be appended to the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditEntry {
    /// When.
    pub at: Timestamp,
    /// Who: `key:<id>` (an API key), `link` (a signed download link), `system` (the
    /// server itself: retention, erasures), `cli` (a command on the server's machine).
    pub actor: String,
    /// The actor's role, when it has one (`admin`, `editor`, `viewer`).
    pub role: Option<String>,
    /// What, as a dotted name: `recordings.delete`, `files.download`, `keys.create`,
    /// `recording.erased`, `audit.expired`, … (the API's entries are the operation).
    pub action: String,
    /// On what: `recording:<id>`, `environment:<id>`, `key:<id>`, `endpoint:<id>`, or
    /// empty.
    pub target: String,
    /// What came of it: the HTTP status for API calls (`200`, `403`, …), `ok` otherwise.
    pub outcome: String,
    /// The environment the target belongs to, when there is one.
    pub environment: Option<EnvironmentId>,
    /// The caller's IP address: only where the environment collects IP addresses.
    pub ip: Option<String>,
    /// A few more words where the action needs them (an erasure's reason, the artifact a
    /// link fetched); never personal data.
    pub detail: Option<String>,
}

impl AuditEntry {
    /// `actor` did `action` on `target`, now, with `outcome`; nothing else known.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
        outcome: impl Into<String>,
    ) -> Self {
        Self {
            at: Timestamp::now(),
            actor: actor.into(),
            role: None,
            action: action.into(),
            target: target.into(),
            outcome: outcome.into(),
            environment: None,
            ip: None,
            detail: None,
        }
    }

    /// At `at` instead of now.
    #[must_use]
    pub fn at(mut self, at: Timestamp) -> Self {
        self.at = at;
        self
    }

    /// With the actor's role.
    #[must_use]
    pub fn with_role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// In `environment`.
    #[must_use]
    pub fn in_environment(mut self, environment: EnvironmentId) -> Self {
        self.environment = Some(environment);
        self
    }

    /// With the caller's IP address (only where the environment collects them).
    #[must_use]
    pub fn with_ip(mut self, ip: impl Into<String>) -> Self {
        self.ip = Some(ip.into());
        self
    }

    /// With a few more words.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// An entry as the log keeps it: numbered and chained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditRecord {
    /// Its number: 1 for the first entry ever, one more for each after it.
    pub seq: u64,
    /// What happened.
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// The hash of the entry before it ([`GENESIS`] for the first).
    pub prev: String,
    /// Its own hash (see [`AuditLog`]).
    pub hash: String,
}

impl AuditRecord {
    /// `entry` as entry `seq`, after the entry whose hash is `prev`.
    pub fn chained(seq: u64, entry: AuditEntry, prev: impl Into<String>) -> Self {
        let prev = prev.into();
        let hash = chain_hash(&prev, seq, &entry);
        Self {
            seq,
            entry,
            prev,
            hash,
        }
    }

    /// An entry as a log stored it, its `hash` as stored (which [`ChainCheck`] compares
    /// with the one its fields give).
    pub fn stored(seq: u64, entry: AuditEntry, prev: String, hash: String) -> Self {
        Self {
            seq,
            entry,
            prev,
            hash,
        }
    }

    /// The hash its fields give, which is its `hash` unless it was changed.
    pub fn expected_hash(&self) -> String {
        chain_hash(&self.prev, self.seq, &self.entry)
    }
}

/// The fields hashed, in their order.
#[derive(Serialize)]
struct Canonical<'a> {
    seq: u64,
    at: i64,
    actor: &'a str,
    role: Option<&'a str>,
    action: &'a str,
    target: &'a str,
    outcome: &'a str,
    environment: Option<&'a str>,
    ip: Option<&'a str>,
    detail: Option<&'a str>,
}

fn chain_hash(prev: &str, seq: u64, entry: &AuditEntry) -> String {
    let canonical = Canonical {
        seq,
        at: entry.at.as_millis(),
        actor: &entry.actor,
        role: entry.role.as_deref(),
        action: &entry.action,
        target: &entry.target,
        outcome: &entry.outcome,
        environment: entry.environment.as_ref().map(EnvironmentId::as_str),
        ip: entry.ip.as_deref(),
        detail: entry.detail.as_deref(),
    };
    let json = serde_json::to_vec(&canonical).expect("plain fields serialize");
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(b"\n");
    hasher.update(&json);
    hex::encode(hasher.finalize())
}

/// Where a chain does not hold, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChainBreak {
    /// The entry (its number as stored) at which the chain breaks.
    pub seq: u64,
    /// What is wrong there.
    pub why: String,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entry {}: {}", self.seq, self.why)
    }
}

impl std::error::Error for ChainBreak {}

/// Checks a chain as it is read, in order, a page at a time: feed it every record with
/// [`ChainCheck::check`], then ask [`ChainCheck::finish`].
#[derive(Clone, Debug, Default)]
pub struct ChainCheck {
    last: Option<(u64, String)>,
    checked: u64,
}

impl ChainCheck {
    /// A check that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next record: that it follows the one before without a gap, names its
    /// hash as `prev`, and that its own hash is what its fields give. The first record
    /// must be entry 1 after [`GENESIS`], unless entries before it were expired: then
    /// its `prev` is taken as it stands (the expiry's own entry names it).
    pub fn check(&mut self, record: &AuditRecord) -> std::result::Result<(), ChainBreak> {
        let broken = |why: String| ChainBreak {
            seq: record.seq,
            why,
        };
        match &self.last {
            None if record.seq == 1 && record.prev != GENESIS => {
                return Err(broken("the first entry does not start the chain".into()));
            }
            None => {}
            Some((seq, hash)) => {
                if record.seq != seq + 1 {
                    return Err(broken(if record.seq <= *seq {
                        format!("out of order: it comes after entry {seq}")
                    } else if record.seq == seq + 2 {
                        format!("entry {} is missing", seq + 1)
                    } else {
                        format!("entries {} to {} are missing", seq + 1, record.seq - 1)
                    }));
                }
                if &record.prev != hash {
                    return Err(broken(format!(
                        "it does not follow entry {seq}: its `prev` is not that entry's hash \
                         (entries removed, reordered or changed)"
                    )));
                }
            }
        }
        if record.expected_hash() != record.hash {
            return Err(broken(
                "its content does not match its hash (the entry was changed)".into(),
            ));
        }
        self.last = Some((record.seq, record.hash.clone()));
        self.checked += 1;
        Ok(())
    }

    /// How many records were checked, and the last one's number and hash (the head).
    pub fn finish(self) -> (u64, Option<(u64, String)>) {
        (self.checked, self.last)
    }
}

/// Checks a whole chain (see [`ChainCheck`]); the number of records and the head.
pub fn verify_chain<'a>(
    records: impl IntoIterator<Item = &'a AuditRecord>,
) -> std::result::Result<(u64, Option<(u64, String)>), ChainBreak> {
    let mut check = ChainCheck::new();
    for record in records {
        check.check(record)?;
    }
    Ok(check.finish())
}

/// Reads the whole of `log`, a page at a time, and checks its chain ([`ChainCheck`]):
/// `Ok(Ok((entries, head)))` when it holds, `Ok(Err(break))` naming the first entry where
/// it does not; `Err` if the log cannot be read.
pub async fn verify_log(
    log: &dyn AuditLog,
) -> Result<std::result::Result<(u64, Option<(u64, String)>), ChainBreak>> {
    const PAGE: u32 = 1_000;
    let mut check = ChainCheck::new();
    let mut after = None;
    loop {
        let mut filter = AuditFilter::default().limit(PAGE);
        if let Some(after) = after {
            filter = filter.after(after);
        }
        let page = log.audit_entries(filter).await?;
        for record in &page {
            if let Err(broken) = check.check(record) {
                return Ok(Err(broken));
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = Some(last.seq),
            _ => return Ok(Ok(check.finish())),
        }
    }
}

/// Which entries [`AuditLog::audit_entries`] returns: every filter given must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditFilter {
    /// Only entries after this number (the next page).
    pub after: Option<u64>,
    /// Only this actor's.
    pub actor: Option<String>,
    /// Only this action's.
    pub action: Option<String>,
    /// Only about this target.
    pub target: Option<String>,
    /// Only in these environments (empty: any, and none).
    pub environments: Vec<EnvironmentId>,
    /// Only entries at or after this time.
    pub from: Option<Timestamp>,
    /// Only entries before this time.
    pub until: Option<Timestamp>,
    /// At most this many (default 100).
    pub limit: Option<u32>,
}

impl AuditFilter {
    /// Entries after number `seq`.
    #[must_use]
    pub fn after(mut self, seq: u64) -> Self {
        self.after = Some(seq);
        self
    }

    /// Entries of `actor`.
    #[must_use]
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Entries of `action`.
    #[must_use]
    pub fn action(mut self, action: impl Into<String>) -> Self {
        self.action = Some(action.into());
        self
    }

    /// Entries about `target`.
    #[must_use]
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Entries in `environments`.
    #[must_use]
    pub fn environments(mut self, environments: Vec<EnvironmentId>) -> Self {
        self.environments = environments;
        self
    }

    /// Entries at or after `from` and before `until`.
    #[must_use]
    pub fn between(mut self, from: Option<Timestamp>, until: Option<Timestamp>) -> Self {
        self.from = from;
        self.until = until;
        self
    }

    /// At most `limit` entries.
    #[must_use]
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// Where audit entries are kept.
///
/// # The chain
///
/// Entry `n` (numbered from 1, without gaps) carries `prev`, the `hash` of entry `n - 1`
/// ([`GENESIS`] for entry 1), and its own `hash`:
///
/// ```text
/// hash = hex(SHA-256(prev ‖ "\n" ‖ canonical JSON of {seq, at, actor, role, action,
///                                                      target, outcome, environment,
///                                                      ip, detail}))
/// ```
///
/// The canonical JSON is the entry's fields in that order, `at` in milliseconds since the
/// Unix epoch, absent values as `null`, no spaces. [`verify_chain`] recomputes every hash
/// and names the first entry that does not hold. Entries past their retention are
/// removed from the start of the chain only, and the removal is itself an entry; the
/// first entry left then vouches for its `prev` (the removed entry's hash, which the
/// removal's entry also names).
///
/// # Contract
///
/// - **Append-only, chained.** [`AuditLog::append_audit`] numbers the entry one past the last
///   and chains it to the last one's hash ([`AuditRecord::chained`]); appends made at
///   once are numbered in some order, without gaps. Once it returns, the entry survives a
///   crash. Nothing changes or removes an entry but [`AuditLog::expire_audit`].
/// - **Order.** [`AuditLog::audit_entries`] returns entries in the order of their
///   numbers.
/// - **Expiry** removes only the oldest entries, and appends an `audit.expired` entry
///   naming the last one removed and its hash.
#[async_trait::async_trait]
pub trait AuditLog: Send + Sync + fmt::Debug + 'static {
    /// Appends `entry`; returns it as kept (numbered and chained).
    async fn append_audit(&self, entry: AuditEntry) -> Result<AuditRecord>;

    /// Entries matching `filter`, by number.
    async fn audit_entries(&self, filter: AuditFilter) -> Result<Vec<AuditRecord>>;

    /// The last entry, the chain's head; `None` while the log is empty.
    async fn audit_head(&self) -> Result<Option<AuditRecord>>;

    /// Removes the entries made before `before` and appends an `audit.expired` entry
    /// saying so; how many went. Nothing is appended when none was due.
    async fn expire_audit(&self, before: Timestamp) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditRecord> {
        let mut records: Vec<AuditRecord> = Vec::new();
        for seq in 1..=n {
            let prev = records
                .last()
                .map_or(GENESIS.to_owned(), |r| r.hash.clone());
            let entry = AuditEntry::new(
                "key:abc",
                "recordings.get",
                format!("recording:{seq}"),
                "200",
            )
            .at(Timestamp::from_millis(1_000 + seq as i64));
            records.push(AuditRecord::chained(seq, entry, prev));
        }
        records
    }

    #[test]
    fn an_untouched_chain_holds() {
        let records = chain(5);
        let (count, head) = verify_chain(&records).unwrap();
        assert_eq!(count, 5);
        assert_eq!(head, Some((5, records[4].hash.clone())));
    }

    #[test]
    fn a_changed_field_breaks_the_chain_at_its_entry() {
        let mut records = chain(5);
        records[2].entry.outcome = "403".into();
        assert_eq!(verify_chain(&records).unwrap_err().seq, 3);
    }

    #[test]
    fn a_removed_entry_is_named() {
        let mut records = chain(5);
        records.remove(2);
        let broken = verify_chain(&records).unwrap_err();
        assert_eq!(broken.seq, 4);
        assert!(broken.why.contains("entry 3 is missing"), "{broken}");
    }

    #[test]
    fn swapped_entries_break_the_chain_where_the_first_moved() {
        // Swapped with their numbers: the order is wrong.
        let mut records = chain(5);
        records.swap(1, 3);
        assert_eq!(verify_chain(&records).unwrap_err().seq, 4);
        // Swapped contents under the numbers kept in place: the chain does not follow.
        let mut records = chain(5);
        let (a, b) = (records[1].clone(), records[3].clone());
        records[1] = AuditRecord { seq: 2, ..b };
        records[3] = AuditRecord { seq: 4, ..a };
        assert_eq!(verify_chain(&records).unwrap_err().seq, 2);
    }

    #[test]
    fn a_chain_whose_start_expired_holds_from_its_first_entry() {
        let records = chain(5);
        assert!(verify_chain(&records[2..]).is_ok());
        // But an entry 1 that does not start from the genesis is a forgery.
        let mut records = chain(2);
        records[0] = AuditRecord::chained(1, records[0].entry.clone(), "f".repeat(64));
        assert_eq!(verify_chain(&records).unwrap_err().seq, 1);
    }
}
