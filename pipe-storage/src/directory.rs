//! [`EnvironmentSinks`]: each environment's sinks, made from its settings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pipe_core::{
    EnvironmentId, EnvironmentSettings, EnvironmentStore, NamedSink, Result, SinkDirectory, SinkSet,
};

use crate::crypt::Crypt;
use crate::sink_url::SinkUrl;

/// A [`SinkDirectory`] that reads each environment's settings from an
/// [`EnvironmentStore`]: the server's own storage first (unless the environment says "do
/// not store"), then the environment's sinks, each made from its URL
/// ([`crate::sink_url`]) and its secrets.
///
/// Sinks are made once per version of an environment and kept (an S3 sink keeps its
/// connection pool); a settings change makes them anew for the next recording.
///
/// ```no_run
/// # async fn example(store: std::sync::Arc<dyn pipe_core::EnvironmentStore>,
/// #     own: std::sync::Arc<dyn pipe_core::StorageSink>) -> pipe_core::Result<()> {
/// use pipe_core::{EnvironmentId, KeyLayout, NamedSink, SinkDirectory, SinkId};
/// use pipe_storage::EnvironmentSinks;
///
/// let sinks = EnvironmentSinks::new(store)
///     .with_own_storage(NamedSink::new(SinkId::new("pipe"), own, KeyLayout::ByRecording));
/// let production = sinks.sinks(&EnvironmentId::default()).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct EnvironmentSinks {
    store: Arc<dyn EnvironmentStore>,
    own: Option<NamedSink>,
    crypt: Option<Crypt>,
    made: Mutex<HashMap<EnvironmentId, (i64, Arc<SinkSet>)>>,
}

impl EnvironmentSinks {
    /// Sinks as the environments in `store` say, with no storage of the server's own.
    pub fn new(store: Arc<dyn EnvironmentStore>) -> Self {
        Self {
            store,
            own: None,
            crypt: None,
            made: Mutex::default(),
        }
    }

    /// Copies every recording to `own` first, unless its environment says "do not
    /// store".
    #[must_use]
    pub fn with_own_storage(mut self, own: NamedSink) -> Self {
        self.own = Some(own);
        self
    }

    /// Encrypts at rest with `crypt` in sinks whose URL says `encrypt=true` (without it,
    /// such a sink is refused).
    #[must_use]
    pub fn with_crypt(mut self, crypt: Crypt) -> Self {
        self.crypt = Some(crypt);
        self
    }

    fn make(&self, settings: &EnvironmentSettings) -> Result<SinkSet> {
        let mut set = SinkSet::default();
        if let Some(own) = self.own.as_ref().filter(|_| !settings.do_not_store) {
            set.insert(own.clone());
        }
        for sink in &settings.sinks {
            let url = SinkUrl::of_settings(sink)?;
            let made = url.open(self.crypt.as_ref())?;
            set.insert(NamedSink::new(sink.id.clone(), made, url.layout));
        }
        Ok(set)
    }
}

#[async_trait]
impl SinkDirectory for EnvironmentSinks {
    async fn sinks(&self, environment: &EnvironmentId) -> Result<Arc<SinkSet>> {
        let env = self.store.environment(environment).await?;
        if let Some((version, set)) = self.made.lock().expect("not poisoned").get(environment)
            && *version == env.version
        {
            return Ok(Arc::clone(set));
        }
        let set = Arc::new(self.make(&env.settings)?);
        for sink in &set.sinks {
            tracing::debug!(%environment, sink = %sink.id, location = ?sink.sink.location(), "sink made");
        }
        self.made
            .lock()
            .expect("not poisoned")
            .insert(environment.clone(), (env.version, Arc::clone(&set)));
        Ok(set)
    }

    fn check(&self, settings: &EnvironmentSettings) -> Result<()> {
        let own = self
            .own
            .as_ref()
            .map_or_else(|| pipe_core::SinkId::new("pipe"), |own| own.id.clone());
        settings.check_sinks(&own)?;
        self.make(settings).map(|_| ())
    }
}
