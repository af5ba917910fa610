//! The query of [`Catalog::list_recordings`](pipe_core::Catalog::list_recordings): every
//! filter of [`ListOptions`] and keyset pages, on the indexes ordered `created DESC, id
//! DESC`.
//!
//! A page after a cursor is the row-value range `(created, id) < (?, ?)`: SQLite seeks to
//! the cursor in the index and reads `limit` rows from there, so the thousandth page
//! costs what the first does (an `OFFSET` would read and skip every row before it). With
//! one environment the query reads `recordings_by_environment` from the cursor on; with
//! several, SQLite reads each environment's range of that index and merges them (it
//! stops each range once it cannot beat the rows it has); with none, it reads
//! `recordings_by_created` (or `recordings_by_state` when filtering by state).

use sqlx::{Database, Encode, QueryBuilder, Type};

use pipe_core::ListOptions;

use super::RECORDING_COLUMNS;

/// Recordings in a page when [`ListOptions::limit`] is `None`.
const DEFAULT_LIMIT: u32 = 100;

/// The query for `options`, with `prefix` in front of it (`""`, or `EXPLAIN QUERY PLAN `
/// in the tests that check which index it uses):
///
/// ```sql
/// SELECT <columns> FROM recordings
/// WHERE erased IS NULL
///   AND environment = ?            -- or environment IN (?, ?, …), or nothing
///   AND state = ?
///   AND created >= ?               -- created_from
///   AND created < ?                -- created_until
///   AND (created, id) < (?, ?)     -- after
/// ORDER BY created DESC, id DESC
/// LIMIT ?
/// ```
///
/// Conditions whose option is unset are left out.
pub(crate) fn query<'a, DB>(prefix: &str, options: &'a ListOptions) -> QueryBuilder<'a, DB>
where
    DB: Database,
    DB::Arguments<'a>: Default,
    &'a str: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    let mut q = QueryBuilder::new(format!(
        "{prefix}SELECT {RECORDING_COLUMNS} FROM recordings"
    ));
    let mut and = Conjunction::default();
    // An erased recording's row is its tombstone, which no list shows.
    and.next(&mut q).push("erased IS NULL");
    match options.environments.as_slice() {
        [] => {}
        [one] => {
            and.next(&mut q)
                .push("environment = ")
                .push_bind(one.as_str());
        }
        several => {
            and.next(&mut q).push("environment IN (");
            let mut list = q.separated(", ");
            for environment in several {
                list.push_bind(environment.as_str());
            }
            q.push(")");
        }
    }
    if let Some(state) = options.state {
        and.next(&mut q).push("state = ").push_bind(state.as_str());
    }
    if let Some(from) = options.created_from {
        and.next(&mut q)
            .push("created >= ")
            .push_bind(from.as_millis());
    }
    if let Some(until) = options.created_until {
        and.next(&mut q)
            .push("created < ")
            .push_bind(until.as_millis());
    }
    match options.deleting {
        Some(true) => {
            and.next(&mut q).push("deleting IS NOT NULL");
        }
        Some(false) => {
            and.next(&mut q).push("deleting IS NULL");
        }
        None => {}
    }
    if let Some(after) = &options.after {
        and.next(&mut q)
            .push("(created, id) < (")
            .push_bind(after.created.as_millis())
            .push(", ")
            .push_bind(after.id.as_str())
            .push(")");
    }
    q.push(" ORDER BY created DESC, id DESC LIMIT ")
        .push_bind(i64::from(options.limit.unwrap_or(DEFAULT_LIMIT)));
    q
}

/// Writes ` WHERE ` before the first condition and ` AND ` before every later one.
#[derive(Default)]
struct Conjunction {
    started: bool,
}

impl Conjunction {
    fn next<'q, 'a, DB: Database>(
        &mut self,
        q: &'q mut QueryBuilder<'a, DB>,
    ) -> &'q mut QueryBuilder<'a, DB> {
        q.push(if self.started { " AND " } else { " WHERE " });
        self.started = true;
        q
    }
}

#[cfg(all(test, feature = "catalog-sqlite"))]
mod tests {
    use std::collections::HashSet;
    use std::time::Instant;

    use pipe_core::{
        Catalog, EnvironmentId, ListOptions, Recording, RecordingCursor, RecordingId,
        RecordingState, Timestamp,
    };
    use sqlx::Row;

    use super::query;
    use crate::SqliteCatalog;

    /// Recordings in the large catalog.
    const RECORDINGS: i64 = 100_000;
    /// The first `created` of the large catalog; seven recordings share each millisecond.
    const BASE: i64 = 1_700_000_000_000;

    /// 100,000 recordings in `production` (80 %), `staging` and `acme` (10 % each), seven
    /// per millisecond, one in five `failed`; written in one statement.
    async fn large_catalog(dir: &std::path::Path) -> SqliteCatalog {
        let catalog = SqliteCatalog::open(dir.join("catalog.db")).await.unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1) \
             INSERT INTO recordings (id, environment, state, version, created, updated) \
             SELECT printf('r%07d', i), \
                    CASE i % 10 WHEN 0 THEN 'staging' WHEN 1 THEN 'acme' ELSE 'production' END, \
                    CASE i % 5 WHEN 0 THEN 'failed' ELSE 'copied' END, \
                    0, ?2 + i / 7, ?2 + i / 7 \
             FROM n",
        )
        .bind(RECORDINGS)
        .bind(BASE)
        .execute(&catalog.pool)
        .await
        .unwrap();
        catalog
    }

    async fn plan(catalog: &SqliteCatalog, options: &ListOptions) -> String {
        let rows = query::<sqlx::Sqlite>("EXPLAIN QUERY PLAN ", options)
            .build()
            .fetch_all(&catalog.pool)
            .await
            .unwrap();
        rows.iter()
            .map(|row| row.get::<String, _>("detail"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn env(name: &str) -> EnvironmentId {
        name.parse().unwrap()
    }

    /// Every page of `options` after another, `limit` each, until one comes back short.
    async fn every_page(catalog: &SqliteCatalog, options: ListOptions) -> (Vec<Recording>, u32) {
        let mut all = Vec::new();
        let mut pages = 0;
        let mut options = options;
        loop {
            let page = catalog.list_recordings(options.clone()).await.unwrap();
            pages += 1;
            let full = page.len() == options.limit.unwrap() as usize;
            if let Some(last) = page.last() {
                options = options.with_after(RecordingCursor::after(last));
            }
            all.extend(page);
            if !full {
                return (all, pages);
            }
        }
    }

    #[tokio::test]
    async fn every_filter_seeks_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = large_catalog(dir.path()).await;
        let cursor = RecordingCursor::new(
            Timestamp::from_millis(BASE + 5_000),
            RecordingId::try_from("r0035003".to_owned()).unwrap(),
        );
        let one = ListOptions::default()
            .with_environment(env("acme"))
            .with_after(cursor.clone());
        let plan_one = plan(&catalog, &one).await;
        assert!(
            plan_one.contains("recordings_by_environment (environment=? AND (created,id)<(?,?))"),
            "one environment after a cursor must seek recordings_by_environment: {plan_one}"
        );
        let ranged = one.clone().with_created(
            Some(Timestamp::from_millis(BASE + 1_000)),
            Some(Timestamp::from_millis(BASE + 9_000)),
        );
        let plan_ranged = plan(&catalog, &ranged).await;
        assert!(
            plan_ranged.contains("recordings_by_environment (environment=? AND "),
            "a created range in one environment must use recordings_by_environment: {plan_ranged}"
        );
        let everything = ListOptions::default().with_after(cursor.clone());
        let plan_everything = plan(&catalog, &everything).await;
        assert!(
            plan_everything.contains("recordings_by_created ((created,id)<(?,?))"),
            "no environment after a cursor must seek recordings_by_created: {plan_everything}"
        );
        let by_state = ListOptions::default()
            .with_state(RecordingState::Failed)
            .with_after(cursor);
        let plan_state = plan(&catalog, &by_state).await;
        assert!(
            plan_state.contains("recordings_by_state (state=? AND (created,id)<(?,?))"),
            "a state after a cursor must seek recordings_by_state: {plan_state}"
        );
        for (what, plan) in [
            ("one environment", &plan_one),
            ("a created range", &plan_ranged),
            ("every environment", &plan_everything),
            ("a state", &plan_state),
        ] {
            assert!(
                !plan.contains("TEMP B-TREE") && !plan.contains("SCAN recordings"),
                "listing {what} sorts or scans the table: {plan}"
            );
        }
        let several = ListOptions::default()
            .with_environment(env("acme"))
            .with_environment(env("staging"));
        let plan_several = plan(&catalog, &several).await;
        // Merged through a sorter that stops reading each environment's range once it
        // cannot beat the rows it holds: still `limit` rows per environment, not all.
        assert!(
            plan_several.contains("recordings_by_environment (environment=?)")
                && !plan_several.contains("SCAN recordings"),
            "several environments must seek recordings_by_environment: {plan_several}"
        );
    }

    #[tokio::test]
    async fn pages_of_100_000_recordings_list_each_once_in_order_and_fast() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = large_catalog(dir.path()).await;

        // The expected order, computed here from (created, id) alone.
        let mut expected: Vec<(i64, String, String)> =
            sqlx::query("SELECT created, id, environment FROM recordings")
                .fetch_all(&catalog.pool)
                .await
                .unwrap()
                .iter()
                .map(|row| (row.get("created"), row.get("id"), row.get("environment")))
                .collect();
        expected.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));

        for environments in [vec![], vec!["acme"], vec!["acme", "staging"]] {
            let mut options = ListOptions::default().with_limit(100);
            for name in &environments {
                options = options.with_environment(env(name));
            }
            let start = Instant::now();
            let (listed, pages) = every_page(&catalog, options).await;
            let elapsed = start.elapsed();
            let want: Vec<&str> = expected
                .iter()
                .filter(|(_, _, e)| environments.is_empty() || environments.contains(&e.as_str()))
                .map(|(_, id, _)| id.as_str())
                .collect();
            let got: Vec<&str> = listed.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(
                got.len(),
                want.len(),
                "pages of {environments:?} listed {} recordings, expected {}",
                got.len(),
                want.len()
            );
            assert_eq!(
                got.iter().collect::<HashSet<_>>().len(),
                got.len(),
                "pages of {environments:?} listed a recording twice"
            );
            assert!(
                got == want,
                "pages of {environments:?} are not in the order created DESC, id DESC"
            );
            eprintln!(
                "measured: {} recordings of {environments:?} in {pages} pages of 100 out of {RECORDINGS}: {elapsed:?} ({:.3} ms per page)",
                got.len(),
                elapsed.as_secs_f64() * 1000.0 / f64::from(pages),
            );
        }

        // The last page of one environment costs what the first does.
        let first = ListOptions::default()
            .with_environment(env("acme"))
            .with_limit(100);
        let last = first.clone().with_after(RecordingCursor::new(
            Timestamp::from_millis(BASE + 200),
            RecordingId::try_from("r0001401".to_owned()).unwrap(),
        ));
        for (what, options) in [("first", first), ("last", last)] {
            let start = Instant::now();
            for _ in 0..20 {
                catalog.list_recordings(options.clone()).await.unwrap();
            }
            eprintln!(
                "measured: the {what} page of acme: {:.3} ms",
                start.elapsed().as_secs_f64() * 1000.0 / 20.0
            );
        }
    }
}
