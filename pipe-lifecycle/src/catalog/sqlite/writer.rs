//! Group commit for [`SqliteCatalog`](super::SqliteCatalog): the writes of the job
//! system (commits, claims, retries, leases, the delivery log) go to one connection that
//! applies every write waiting for it in one transaction, each in its own savepoint, and
//! answers them all after the one commit, so that they share one fsync.
//!
//! Measured with `cargo bench -p pipe-lifecycle --bench delivery` (one event, its claim
//! and its completion are three writes): 570 deliveries/s to one endpoint before, 1,600
//! after, with the changes below (one round trip per write). What is left per write is
//! sqlx's round trip to the connection's thread (some 70 µs here) and SQLite's own work.
//!
//! A commit in WAL mode with `synchronous = FULL` costs an fsync, and an fsync costs far
//! more than the statements of a change; one transaction per change made the disk's fsync
//! rate the job system's ceiling (eight workers claiming and completing took turns at the
//! disk). With group commit, concurrent writers wait for the writer's current batch and go
//! in the next one together: the same durability (nobody hears "done" before the fsync
//! that holds their change), and a failed write is rolled back to its savepoint without
//! touching the others in its batch. PostgreSQL does the same on its own (`commit_delay`
//! and the WAL flush that serves every waiting backend); SQLite leaves it to its user.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use pipe_core::{Error, Result};
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::warn;

use super::error::from_sqlx;

/// The most writes one transaction takes; more wait for the next.
const MAX_BATCH: usize = 256;

/// The group-commit writer's handle; clones share the writer.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    queue: mpsc::UnboundedSender<Box<dyn Op>>,
    /// Set to stop the writer: it finishes its batch, refuses what waits and closes its
    /// connection.
    stop: Arc<watch::Sender<bool>>,
    running: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Writer {
    /// Starts the writer on `connection`. It stops at [`Writer::close`] or when the last
    /// handle is dropped.
    pub(super) fn start(connection: SqliteConnection) -> Self {
        let (queue, waiting) = mpsc::unbounded_channel();
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(run(connection, waiting, stopped));
        Self {
            queue,
            stop: Arc::new(stop),
            running: Arc::new(Mutex::new(Some(running))),
        }
    }

    /// Stops the writer and waits until its connection is closed; later writes fail.
    pub(super) async fn close(&self) {
        self.stop.send_replace(true);
        let running = self.running.lock().expect("not poisoned").take();
        if let Some(running) = running {
            let _ = running.await;
        }
    }

    /// Runs `write` in the next batch and returns its result once the batch is durable.
    ///
    /// `write` runs inside a transaction the writer began (`BEGIN IMMEDIATE`): it must not
    /// begin or end one, and reaches the connection only through its [`Tx`]. Its changes
    /// are undone if it returns an error. The write runs even if the caller stops waiting.
    pub(super) async fn write<T, F>(&self, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Box::new(Pending { write, reply }))
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

fn closed() -> Error {
    Error::permanent(
        "sqlite",
        "the catalog's writer has stopped (the catalog was closed)",
    )
}

/// One write's way to the connection, inside the writer's transaction.
///
/// Each write runs in a savepoint of its own, so that a failed one can be undone alone.
/// Beginning the savepoint would be a round trip of its own; instead it goes in front of
/// the write's first statements ([`Tx::first_statements`]), or is begun before the
/// connection is handed out ([`Tx::connection`]).
pub(super) struct Tx<'c> {
    connection: &'c mut SqliteConnection,
    /// Set once the write's savepoint is sent.
    began: &'c AtomicBool,
}

impl Tx<'_> {
    /// What must run before the write's first statement, the first time it is asked; the
    /// caller sends it in front of that statement, in the same call. (Always the same
    /// text, so that sqlx's cache of prepared statements keeps one entry per write.)
    pub(super) fn first_statements(&mut self) -> &'static str {
        if self.began.swap(true, Ordering::Relaxed) {
            ""
        } else {
            "SAVEPOINT write;\n"
        }
    }

    /// The connection, for statements of the write's own (its savepoint begun first).
    pub(super) async fn connection(&mut self) -> Result<&mut SqliteConnection> {
        let first = self.first_statements();
        if !first.is_empty() {
            sqlx::Executor::execute(&mut *self.connection, first)
                .await
                .map_err(from_sqlx)?;
        }
        Ok(&mut *self.connection)
    }

    /// The connection without the savepoint: for a statement sent with
    /// [`Tx::first_statements`] in front.
    pub(super) fn raw(&mut self) -> &mut SqliteConnection {
        debug_assert!(
            self.began.load(Ordering::Relaxed),
            "the savepoint is not begun"
        );
        self.connection
    }
}

/// A write waiting in the queue, with whom to tell how it went.
trait Op: Send {
    /// Runs the write; what it returns tells its caller once the batch's fate is known.
    fn run<'c>(self: Box<Self>, tx: Tx<'c>) -> BoxFuture<'c, Ran>;
    /// Tells the caller that the write never ran.
    fn refuse(self: Box<Self>, error: Error);
}

impl std::fmt::Debug for dyn Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Op")
    }
}

/// A write that ran: whether it succeeded (else its savepoint is rolled back), and the
/// answer to give once the batch committed (`Ok`) or did not (`Err`).
struct Ran {
    succeeded: bool,
    answer: Box<dyn FnOnce(Result<()>) + Send>,
}

struct Pending<T, F> {
    write: F,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Op for Pending<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, Result<T>> + Send + 'static,
{
    fn run<'c>(self: Box<Self>, tx: Tx<'c>) -> BoxFuture<'c, Ran> {
        let Pending { write, reply } = *self;
        Box::pin(async move {
            let result = write(tx).await;
            Ran {
                succeeded: result.is_ok(),
                answer: Box::new(move |batch: Result<()>| {
                    let _ = reply.send(batch.and(result));
                }),
            }
        })
    }

    fn refuse(self: Box<Self>, error: Error) {
        let _ = self.reply.send(Err(error));
    }
}

async fn run(
    mut connection: SqliteConnection,
    mut queue: mpsc::UnboundedReceiver<Box<dyn Op>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let received = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            received = queue.recv_many(&mut batch, MAX_BATCH) => received,
        };
        if received == 0 {
            break;
        }
        apply(&mut connection, batch.drain(..)).await;
    }
    queue.close();
    while let Ok(op) = queue.try_recv() {
        op.refuse(closed());
    }
    if let Err(e) = connection.close().await {
        warn!(error = %e, "cannot close the catalog writer's connection");
    }
}

/// Applies `ops` in one transaction and answers each.
async fn apply(connection: &mut SqliteConnection, ops: impl Iterator<Item = Box<dyn Op>>) {
    // Every write runs in a savepoint named `write`, begun by its first statements (see
    // `Tx`). A failed write that began its savepoint is rolled back to it (the most recent
    // savepoint of that name, its own); one that failed before its first statement did
    // nothing to undo. The savepoints of kept writes stay open: the commit ends them all.
    if let Err(e) = execute(connection, "BEGIN IMMEDIATE").await {
        let why = e.to_string();
        for op in ops {
            op.refuse(batch_failed(&why));
        }
        return;
    }
    let mut ran: Vec<Ran> = Vec::with_capacity(MAX_BATCH);
    let mut ops = ops.into_iter();
    let mut broken = None;
    for op in ops.by_ref() {
        let began = AtomicBool::new(false);
        let tx = Tx {
            connection: &mut *connection,
            began: &began,
        };
        let done = op.run(tx).await;
        let undo = !done.succeeded && began.load(Ordering::Relaxed);
        ran.push(done);
        if undo && let Err(e) = execute(connection, "ROLLBACK TO write").await {
            // The transaction is gone (SQLite rolls back the whole of it after some
            // errors, such as a full disk): nothing of this batch holds.
            broken = Some(e);
            break;
        }
    }
    let outcome = match broken {
        None => execute(connection, "COMMIT").await,
        Some(e) => Err(e),
    };
    match outcome {
        Ok(()) => {
            for done in ran {
                (done.answer)(Ok(()));
            }
        }
        Err(e) => {
            warn!(error = %e, writes = ran.len(), "a batch of catalog writes failed; none of it was kept");
            if let Err(e) = execute(connection, "ROLLBACK").await {
                warn!(error = %e, "cannot roll back the failed batch");
            }
            let why = e.to_string();
            for done in ran {
                (done.answer)(Err(batch_failed(&why)));
            }
            for op in ops {
                op.refuse(batch_failed(&why));
            }
        }
    }
}

/// Runs `sql`, one or more statements without parameters.
async fn execute(connection: &mut SqliteConnection, sql: &'static str) -> Result<()> {
    sqlx::Executor::execute(connection, sql)
        .await
        .map(drop)
        .map_err(from_sqlx)
}

/// The error each write of a failed batch gets: temporary, as the write itself was not
/// at fault (a busy database, a full disk) and may go through in another batch.
fn batch_failed(why: &str) -> Error {
    Error::temporary(
        "sqlite",
        format!("the transaction holding this write failed and was rolled back: {why}"),
    )
}
