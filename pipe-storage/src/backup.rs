//! Backups of a server's state: named files (the catalog's snapshot, its secrets, its
//! key-encryption keys) in one archive, encrypted under a key derived from a passphrase.
//!
//! # Format
//!
//! ```text
//! "PIPEBAK1" (8 bytes)
//! Argon2id parameters: memory in KiB, iterations, lanes (u32 little-endian each)
//! salt (16 random bytes)
//! the archive, encrypted as one object of ENCRYPTION.md (AES-256-GCM in segments, a
//! random data key wrapped under the key Argon2id derives from the passphrase and salt,
//! key id `backup-passphrase`)
//! ```
//!
//! The archive is a sequence of entries, `name length (u16 LE) ‖ name (UTF-8) ‖ length
//! (u64 LE) ‖ bytes`, ended by a name length of 0. A wrong passphrase, a changed byte or a
//! cut-off file fails to open (the format's tags and final segment), and nothing is
//! written from a backup that does not open whole.
//!
//! Argon2 (the `argon2` crate, RustCrypto, pure Rust) is the password hash of the Password
//! Hashing Competition and OWASP's first choice for deriving keys from passphrases; its
//! memory cost makes guessing a passphrase from a stolen backup slow on any hardware.

use std::sync::Arc;

use pipe_core::{Error, KeyId, Result};
use zeroize::Zeroizing;

use crate::crypt::{Crypt, LocalKeyProvider};

/// The first bytes of a backup.
pub const MAGIC: &[u8; 8] = b"PIPEBAK1";

/// Argon2id's memory cost in KiB (64 MiB), iterations and lanes for new backups.
const ARGON2: (u32, u32, u32) = (64 * 1024, 3, 1);

/// The largest memory cost a backup may ask for (1 GiB): a forged header cannot make
/// `restore` allocate without bound.
const MAX_MEMORY_KIB: u32 = 1024 * 1024;

const SALT_LEN: usize = 16;
const PREAMBLE_LEN: usize = MAGIC.len() + 12 + SALT_LEN;

/// One file of a backup: its name (a relative path with `/`) and its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct BackupFile {
    /// Where it goes, relative to the data directory (`catalog.sqlite`, `keys/keys`).
    pub name: String,
    /// Its contents.
    pub bytes: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for BackupFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupFile")
            .field("name", &self.name)
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl BackupFile {
    /// The file `name` with `bytes`.
    pub fn new(name: impl Into<String>, bytes: Vec<u8>) -> Self {
        Self {
            name: name.into(),
            bytes: Zeroizing::new(bytes),
        }
    }
}

fn key_from(passphrase: &str, salt: &[u8], (m, t, p): (u32, u32, u32)) -> Result<Crypt> {
    if passphrase.chars().count() < 12 {
        return Err(Error::invalid(
            "passphrase",
            "at least 12 characters: a backup holds every key of the server",
        ));
    }
    let params = argon2::Params::new(m, t, p, Some(32))
        .map_err(|e| Error::invalid("backup", format!("Argon2 parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, &mut key[..])
        .map_err(|e| Error::invalid("backup", format!("Argon2: {e}")))?;
    let id = KeyId::new("backup-passphrase")?;
    Ok(Crypt::new(Arc::new(LocalKeyProvider::from_key(id, key))))
}

/// `files`, archived and encrypted under `passphrase` (at least 12 characters).
pub fn seal(files: &[BackupFile], passphrase: &str) -> Result<Vec<u8>> {
    let mut salt = [0u8; SALT_LEN];
    crate::crypt::random_fill(&mut salt)?;
    let crypt = key_from(passphrase, &salt, ARGON2)?;
    let mut out =
        Vec::with_capacity(PREAMBLE_LEN + files.iter().map(|f| f.bytes.len() + 64).sum::<usize>());
    out.extend_from_slice(MAGIC);
    for n in [ARGON2.0, ARGON2.1, ARGON2.2] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.extend_from_slice(&salt);
    let mut encryptor = crypt.encryptor()?;
    for file in files {
        let name = file.name.as_bytes();
        let name_len = u16::try_from(name.len())
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| Error::invalid("backup", format!("file name {:?}", file.name)))?;
        out.extend(encryptor.push(&name_len.to_le_bytes())?);
        out.extend(encryptor.push(name)?);
        out.extend(encryptor.push(&(file.bytes.len() as u64).to_le_bytes())?);
        out.extend(encryptor.push(&file.bytes)?);
    }
    out.extend(encryptor.push(&0u16.to_le_bytes())?);
    out.extend(encryptor.finish()?);
    Ok(out)
}

/// The files of `backup`, opened with `passphrase`. `Invalid` if it is not a backup, the
/// passphrase is wrong, or it was changed or cut off.
pub fn open(backup: &[u8], passphrase: &str) -> Result<Vec<BackupFile>> {
    let not_a_backup = || Error::invalid("backup", "not a Pipe backup (no PIPEBAK1 header)");
    if backup.len() < PREAMBLE_LEN || &backup[..MAGIC.len()] != MAGIC {
        return Err(not_a_backup());
    }
    let number = |at: usize| u32::from_le_bytes(backup[at..at + 4].try_into().expect("4 bytes"));
    let params = (number(8), number(12), number(16));
    if params.0 > MAX_MEMORY_KIB {
        return Err(Error::invalid(
            "backup",
            format!("it asks for {} KiB of memory to open", params.0),
        ));
    }
    let salt = &backup[20..PREAMBLE_LEN];
    let crypt = key_from(passphrase, salt, params)?;
    let archive = Zeroizing::new(crypt.decrypt(&backup[PREAMBLE_LEN..]).map_err(|_| {
        Error::invalid(
            "backup",
            "it does not open: the passphrase is wrong, or the file was changed or cut off",
        )
    })?);
    let mut files = Vec::new();
    let mut archive = Entries { rest: &archive };
    loop {
        let name_len = u16::from_le_bytes(archive.take(2)?.try_into().expect("2 bytes")) as usize;
        if name_len == 0 {
            return Ok(files);
        }
        let name = String::from_utf8(archive.take(name_len)?.to_vec())
            .map_err(|_| Error::invalid("backup", "a file name is not UTF-8"))?;
        let len = u64::from_le_bytes(archive.take(8)?.try_into().expect("8 bytes"));
        let len =
            usize::try_from(len).map_err(|_| Error::invalid("backup", "a file is too large"))?;
        files.push(BackupFile::new(name, archive.take(len)?.to_vec()));
    }
}

/// What is left of an archive to read.
struct Entries<'a> {
    rest: &'a [u8],
}

impl<'a> Entries<'a> {
    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(Error::invalid(
                "backup",
                "the archive ends in the middle of a file",
            ));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSPHRASE: &str = "correct horse battery staple";

    fn files() -> Vec<BackupFile> {
        vec![
            BackupFile::new("catalog.sqlite", b"SQLite format 3\0 and the rest".to_vec()),
            BackupFile::new("keys/keys", b"kek-0001:c2VjcmV0IGtleSBieXRlcw==\n".to_vec()),
            BackupFile::new("empty", Vec::new()),
        ]
    }

    #[test]
    fn a_backup_opens_with_its_passphrase_and_holds_no_plaintext() {
        let sealed = seal(&files(), PASSPHRASE).unwrap();
        assert_eq!(&sealed[..8], MAGIC);
        for needle in [
            &b"SQLite format 3"[..],
            b"c2VjcmV0",
            b"catalog.sqlite",
            b"keys/keys",
        ] {
            assert!(
                !sealed.windows(needle.len()).any(|w| w == needle),
                "{} in the backup",
                String::from_utf8_lossy(needle)
            );
        }
        assert_eq!(open(&sealed, PASSPHRASE).unwrap(), files());
    }

    #[test]
    fn a_wrong_passphrase_a_changed_byte_or_a_cut_fails() {
        let sealed = seal(&files(), PASSPHRASE).unwrap();
        assert!(open(&sealed, "the wrong passphrase").is_err());
        let mut changed = sealed.clone();
        let last = changed.len() - 20;
        changed[last] ^= 1;
        assert!(open(&changed, PASSPHRASE).is_err());
        assert!(open(&sealed[..sealed.len() - 40], PASSPHRASE).is_err());
        assert!(open(b"not a backup at all, really not", PASSPHRASE).is_err());
        assert!(seal(&files(), "short").is_err());
    }
}
