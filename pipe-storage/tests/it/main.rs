//! The integration tests of pipe-storage: one binary (`cargo test -p pipe-storage --test it`).
//!
//! Everything runs against real directories in temporary folders; the crash test kills a
//! real writer process.

#[cfg(feature = "test-servers")]
mod azure;
mod crash;
mod crypt;
#[cfg(feature = "test-servers")]
mod dropbox;
mod encrypted;
#[cfg(feature = "test-servers")]
mod ftps;
#[cfg(feature = "test-servers")]
mod gcs;
#[cfg(feature = "test-servers")]
mod object_spool;
#[cfg(feature = "test-servers")]
mod postgres;
#[cfg(feature = "test-servers")]
mod s3;
#[cfg(feature = "test-servers")]
mod sftp;
mod sink;
mod spool;

/// The byte the crash and restart tests expect at `offset` of a recording: a pattern that
/// any process can recompute, so a reader can check bytes a killed writer left behind.
pub fn pattern_at(offset: u64) -> u8 {
    (offset.wrapping_mul(131) ^ (offset >> 11)) as u8
}

/// `len` bytes of the pattern from `offset`.
pub fn pattern(offset: u64, len: usize) -> bytes::Bytes {
    (offset..offset + len as u64)
        .map(pattern_at)
        .collect::<Vec<_>>()
        .into()
}

/// Every file under `dir`, recursively (a server's files, for what a test left there).
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}
