//! The [`AuditLog`] contract. The suite may share its log with other users (it tells its
//! entries apart by an actor of its own), but not with another run of [`expire`]: that
//! removes every entry older than the ones it makes.

use futures::future::join_all;

use crate::{AuditEntry, AuditFilter, AuditLog, EnvironmentId, Timestamp};

/// Runs every function of this suite, one after another.
pub async fn run_all(log: &dyn AuditLog) {
    append_numbers_chains_and_reads_back(log).await;
    appends_at_once_are_numbered_without_gaps(log).await;
    filters_select_and_pages_continue(log).await;
    expire(log).await;
}

/// The whole log holds as a chain ([`crate::verify_log`]).
async fn chain_holds(log: &dyn AuditLog, when: &str) {
    match crate::verify_log(log).await {
        Ok(Ok(_)) => {}
        Ok(Err(broken)) => panic!("audit: the chain does not hold {when}: {broken}"),
        Err(e) => panic!("audit: the log cannot be read {when}: {e}"),
    }
}

fn actor() -> String {
    format!("conformance:{}", crate::RecordingId::generate())
}

/// `append_audit` numbers an entry one past the last and chains it to its hash; it reads
/// back as it was appended.
pub async fn append_numbers_chains_and_reads_back(log: &dyn AuditLog) {
    let actor = actor();
    let environment = EnvironmentId::generate();
    let first = log
        .append_audit(
            AuditEntry::new(&actor, "recordings.delete", "recording:r1", "202")
                .with_role("editor")
                .in_environment(environment.clone())
                .with_ip("192.0.2.1")
                .with_detail("conformance"),
        )
        .await
        .expect("audit: append failed");
    let second = log
        .append_audit(AuditEntry::new(
            &actor,
            "files.download",
            "recording:r1",
            "200",
        ))
        .await
        .expect("audit: append failed");
    assert!(first.seq >= 1, "audit: entries are numbered from 1");
    assert!(
        second.seq > first.seq,
        "audit: the later entry has the lower number"
    );
    assert_eq!(
        first.hash,
        first.expected_hash(),
        "audit: the hash is not the one its fields give"
    );
    let read = log
        .audit_entries(AuditFilter::default().actor(actor.clone()))
        .await
        .expect("audit: audit_entries failed");
    assert_eq!(read, vec![first, second], "audit: read back differs");
    chain_holds(log, "after two appends").await;
}

/// Appends made at once are each numbered once, without gaps, and the chain holds.
pub async fn appends_at_once_are_numbered_without_gaps(log: &dyn AuditLog) {
    let actor = actor();
    let appended = join_all((0..32).map(|n| {
        log.append_audit(AuditEntry::new(
            &actor,
            "recordings.get",
            format!("recording:{n}"),
            "200",
        ))
    }))
    .await;
    let mut numbers: Vec<u64> = appended
        .into_iter()
        .map(|r| r.expect("audit: a concurrent append failed").seq)
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), 32, "audit: two appends got one number");
    chain_holds(log, "after appends made at once").await;
}

/// Filters by actor, action, target, environment and time select exactly their entries;
/// `after` continues a page where the last one ended.
pub async fn filters_select_and_pages_continue(log: &dyn AuditLog) {
    let actor = actor();
    let environment = EnvironmentId::generate();
    let base = Timestamp::from_millis(Timestamp::now().as_millis() - 60_000);
    let mut made = Vec::new();
    for n in 0..6i64 {
        let mut entry = AuditEntry::new(
            &actor,
            if n % 2 == 0 {
                "keys.create"
            } else {
                "keys.revoke"
            },
            format!("key:{}", n % 3),
            "201",
        )
        .at(base.plus(std::time::Duration::from_millis(n as u64 * 1_000)));
        if n < 3 {
            entry = entry.in_environment(environment.clone());
        }
        made.push(log.append_audit(entry).await.expect("audit: append failed"));
    }
    let actor = &actor;
    let select = |filter: AuditFilter| async move {
        log.audit_entries(filter.actor(actor.clone()))
            .await
            .expect("audit: audit_entries failed")
            .into_iter()
            .map(|r| r.seq)
            .collect::<Vec<u64>>()
    };
    let seqs = |picked: &[usize]| picked.iter().map(|&i| made[i].seq).collect::<Vec<u64>>();
    assert_eq!(
        select(AuditFilter::default().action("keys.revoke")).await,
        seqs(&[1, 3, 5]),
        "audit: filter by action"
    );
    assert_eq!(
        select(AuditFilter::default().target("key:0")).await,
        seqs(&[0, 3]),
        "audit: filter by target"
    );
    assert_eq!(
        select(AuditFilter::default().environments(vec![environment])).await,
        seqs(&[0, 1, 2]),
        "audit: filter by environment"
    );
    assert_eq!(
        select(AuditFilter::default().between(Some(made[2].entry.at), Some(made[4].entry.at)))
            .await,
        seqs(&[2, 3]),
        "audit: filter by time"
    );
    let first_page = select(AuditFilter::default().limit(4)).await;
    let next_page = select(AuditFilter::default().after(made[3].seq)).await;
    assert_eq!(first_page, seqs(&[0, 1, 2, 3]), "audit: a page of 4");
    assert_eq!(next_page, seqs(&[4, 5]), "audit: the page after");
}

/// `expire_audit` removes the entries made before the cutoff, from the start of the log
/// only, appends `audit.expired` naming the last one removed, and the chain still holds.
pub async fn expire(log: &dyn AuditLog) {
    let actor = actor();
    let old = Timestamp::from_millis(1_000_000);
    // Entries of a long time ago: expiry takes everything up to the newest of them (and
    // anything older that others appended).
    for n in 0..3i64 {
        log.append_audit(
            AuditEntry::new(&actor, "recordings.get", "recording:old", "200")
                .at(Timestamp::from_millis(old.as_millis() + n)),
        )
        .await
        .expect("audit: append failed");
    }
    let kept = log
        .append_audit(AuditEntry::new(
            &actor,
            "recordings.get",
            "recording:new",
            "200",
        ))
        .await
        .expect("audit: append failed");
    let cutoff = Timestamp::from_millis(old.as_millis() + 1_000);
    let removed = log
        .expire_audit(cutoff)
        .await
        .expect("audit: expire_audit failed");
    assert!(
        removed >= 3,
        "audit: expiry removed {removed} of 3 old entries"
    );
    let mine = log
        .audit_entries(AuditFilter::default().actor(actor.clone()))
        .await
        .expect("audit: audit_entries failed");
    assert_eq!(
        mine,
        vec![kept.clone()],
        "audit: expiry kept the wrong entries"
    );
    let expired = log
        .audit_entries(
            AuditFilter::default()
                .action("audit.expired")
                .after(kept.seq),
        )
        .await
        .expect("audit: audit_entries failed");
    assert!(
        expired
            .first()
            .and_then(|e| e.entry.detail.as_deref())
            .is_some_and(|d| d.contains("removed")),
        "audit: no audit.expired entry after the expiry: {expired:?}"
    );
    chain_holds(log, "after an expiry").await;
    assert_eq!(
        log.expire_audit(cutoff)
            .await
            .expect("audit: expire_audit failed"),
        0,
        "audit: a second expiry removed more"
    );
}
