//! [`ObjectStoreSink`] on a directory of the local file system.

use std::io;
use std::path::Path;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use pipe_core::{Error, Result, SinkKind};

use super::error::BACKEND;
use super::{ObjectStoreSink, ObjectStoreSinkConfig};

impl ObjectStoreSink {
    /// A sink of `kind` in directory `root` of the local file system, created if needed.
    /// Keys are paths below `root`.
    ///
    /// Besides what every sink promises, a put here is durable when it returns: the
    /// object and its directory are fsync'd. Content types are not kept (the file system
    /// has nowhere to put them).
    ///
    /// A put is staged in a file next to the key (`<key>#<n>`) and renamed into place.
    /// object_store does not sync the staged file before the rename, so a power loss
    /// (not a process crash) in the instant around it may leave a short file under the
    /// key on some file systems; the put had not returned, so the job that made it runs
    /// again and replaces the file.
    #[cfg_attr(docsrs, doc(cfg(feature = "sink-local")))]
    pub fn local(root: impl AsRef<Path>, kind: SinkKind) -> Result<Self> {
        Self::local_with_config(root, ObjectStoreSinkConfig::new(kind))
    }

    /// [`ObjectStoreSink::local`] with `config`; content types are turned off.
    #[cfg_attr(docsrs, doc(cfg(feature = "sink-local")))]
    pub fn local_with_config(
        root: impl AsRef<Path>,
        config: ObjectStoreSinkConfig,
    ) -> Result<Self> {
        let root = root.as_ref();
        let dir_error = |e: io::Error| {
            let detail = format!("the sink directory {}: {e}", root.display());
            if Error::is_permanent_io(e.kind()) {
                Error::permanent(BACKEND, detail)
            } else {
                Error::temporary(BACKEND, detail)
            }
        };
        std::fs::create_dir_all(root).map_err(dir_error)?;
        let root = std::fs::canonicalize(root).map_err(dir_error)?;
        let store =
            LocalFileSystem::new_with_prefix(&root).map_err(|e| Error::permanent(BACKEND, e))?;
        Ok(Self {
            store: Arc::new(store),
            config: config.with_content_types(false),
            local_root: Some(root),
            location: pipe_core::SinkLocation::default(),
            #[cfg(feature = "sink-s3")]
            signer: None,
        })
    }
}
