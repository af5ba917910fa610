//! [`SinkDirectory`]: which sinks a recording is copied to, decided by its environment.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{EnvironmentId, EnvironmentSettings, Error, KeyLayout, Result, SinkId, StorageSink};

/// One sink of a [`SinkSet`]: its id (unique in the set), the sink, and how a
/// recording's files are named in it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NamedSink {
    /// Its id, as copies and events name it.
    pub id: SinkId,
    /// The sink.
    pub sink: Arc<dyn StorageSink>,
    /// How files are named in it.
    pub layout: KeyLayout,
}

impl NamedSink {
    /// `sink` under `id`, its files named by `layout`.
    pub fn new(id: SinkId, sink: Arc<dyn StorageSink>, layout: KeyLayout) -> Self {
        Self { id, sink, layout }
    }
}

/// The sinks an environment's recordings are copied to, in order: a recording is done
/// (and its local files deleted) when every one holds a verified copy.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct SinkSet {
    /// The sinks.
    pub sinks: Vec<NamedSink>,
}

impl SinkSet {
    /// A set of `sinks`; a later sink with the id of an earlier one replaces it.
    pub fn new(sinks: impl IntoIterator<Item = NamedSink>) -> Self {
        let mut set = Self::default();
        for sink in sinks {
            set.insert(sink);
        }
        set
    }

    /// Adds `sink`, replacing one with its id.
    pub fn insert(&mut self, sink: NamedSink) {
        match self.sinks.iter_mut().find(|s| s.id == sink.id) {
            Some(existing) => *existing = sink,
            None => self.sinks.push(sink),
        }
    }

    /// The sink with `id`.
    pub fn get(&self, id: &SinkId) -> Option<&NamedSink> {
        self.sinks.iter().find(|s| &s.id == id)
    }

    /// Whether there is no sink at all.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }
}

/// Where the recordings of each environment go: the server's own storage (unless the
/// environment says "do not store") and the environment's sinks.
///
/// # Contract
///
/// - `sinks` reflects the environment's settings as stored when it is called (a change
///   through the API applies to the next recording without a restart); an implementation
///   may cache by the environment's version.
/// - `check` accepts settings only if `sinks` could make every sink of them: a settings
///   change that `check` refused is never saved, so a recording never meets a sink URL
///   that cannot be made.
#[async_trait]
pub trait SinkDirectory: Send + Sync + Debug + 'static {
    /// The sinks recordings of `environment` are copied to.
    async fn sinks(&self, environment: &EnvironmentId) -> Result<Arc<SinkSet>>;

    /// Checks `settings` before they are saved; `Invalid` says what is wrong.
    fn check(&self, settings: &EnvironmentSettings) -> Result<()>;
}

/// The same sinks for every environment, whatever its settings say: for a pipeline
/// built in code. Settings that name sinks of their own are refused by `check`.
#[derive(Clone, Debug, Default)]
pub struct StaticSinks(Arc<SinkSet>);

impl StaticSinks {
    /// Every environment's recordings go to `set`.
    pub fn new(set: SinkSet) -> Self {
        Self(Arc::new(set))
    }

    /// The set.
    pub fn set(&self) -> &SinkSet {
        &self.0
    }
}

#[async_trait]
impl SinkDirectory for StaticSinks {
    async fn sinks(&self, _environment: &EnvironmentId) -> Result<Arc<SinkSet>> {
        Ok(Arc::clone(&self.0))
    }

    fn check(&self, settings: &EnvironmentSettings) -> Result<()> {
        if settings.sinks.is_empty() && !settings.do_not_store {
            Ok(())
        } else {
            Err(Error::invalid(
                "sinks",
                "this server copies every environment's recordings to the same sinks; \
                 an environment cannot have sinks or \"do not store\" of its own",
            ))
        }
    }
}
