//! PostgresCatalog against the catalog's conformance suites, on a real PostgreSQL server
//! each test starts on loopback (a database of its own): the same suites SqliteCatalog
//! passes, and the contention suite with several nodes' handles on one database.

use pipe_lifecycle::PostgresCatalog;
use pipe_storage::testing::PostgresTestServer;

async fn connect(url: &str) -> PostgresCatalog {
    PostgresCatalog::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_catalog_conforms() {
    let server = PostgresTestServer::start();
    let catalog = connect(&server.create_database()).await;
    pipe_core::conformance::catalog::run_all(&catalog).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_recording_keys_conform() {
    let server = PostgresTestServer::start();
    let catalog = connect(&server.create_database()).await;
    pipe_core::conformance::recording_keys::run_all(&catalog, &catalog).await;
}

/// Three nodes' handles on one database (a pool each), with several claimers and writers
/// on each at once: each job runs once and no update is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_on_one_database_contend_safely() {
    let server = PostgresTestServer::start();
    let url = server.create_database();
    let (a, b, c) = (
        connect(&url).await,
        connect(&url).await,
        connect(&url).await,
    );
    pipe_core::conformance::contention::run_all(&[&a, &b, &c]).await;
}

/// Two nodes connecting at once to a new database apply its schema once, and then share
/// it: the conformance suite passes on each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_database() {
    let server = PostgresTestServer::start();
    let url = server.create_database();
    let (a, b) = tokio::join!(connect(&url), connect(&url));
    pipe_core::conformance::catalog::run_all(&a).await;
    pipe_core::conformance::catalog::run_all(&b).await;
}
