//! AES-256-GCM from the RustCrypto `aes-gcm` crate: pure Rust, AES-NI and CLMUL detected
//! at run time on x86-64, constant-time software elsewhere.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use pipe_core::Result;

use super::{AeadKey, CipherBackend, KEY_LEN, NONCE_LEN, TAG_LEN, too_long, unauthentic};

/// The RustCrypto backend (feature `cipher-rustcrypto`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RustCrypto;

impl CipherBackend for RustCrypto {
    fn name(&self) -> &'static str {
        "rustcrypto-aes-gcm"
    }

    fn key(&self, key: &[u8; KEY_LEN]) -> Box<dyn AeadKey> {
        Box::new(Key(Aes256Gcm::new(key.into())))
    }
}

struct Key(Aes256Gcm);

impl AeadKey for Key {
    fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN]> {
        let tag = self
            .0
            .encrypt_in_place_detached(Nonce::from_slice(nonce), aad, in_out)
            .map_err(|_| too_long())?;
        Ok(tag.into())
    }

    fn open_in_place(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], in_out: &mut [u8]) -> Result<()> {
        let Some(split) = in_out.len().checked_sub(TAG_LEN) else {
            return Err(unauthentic("segment"));
        };
        let (data, tag) = in_out.split_at_mut(split);
        let tag = Tag::clone_from_slice(tag);
        self.0
            .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, data, &tag)
            .map_err(|_| unauthentic("segment"))
    }

    fn open_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sealed: &[u8],
        out: &mut [u8],
    ) -> Result<()> {
        let Some(split) = sealed.len().checked_sub(TAG_LEN) else {
            return Err(unauthentic("segment"));
        };
        let (ciphertext, tag) = sealed.split_at(split);
        out.copy_from_slice(ciphertext);
        self.0
            .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, out, Tag::from_slice(tag))
            .map_err(|_| unauthentic("segment"))
    }
}
