//! AES-256-GCM from aws-lc-rs: AWS-LC's assembly (AES-NI, VAES, PCLMULQDQ, AVX-512 where
//! the CPU has them).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use pipe_core::Result;

use super::{AeadKey, CipherBackend, KEY_LEN, NONCE_LEN, TAG_LEN, too_long, unauthentic};

/// The aws-lc-rs backend (feature `cipher-aws-lc`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AwsLc;

impl CipherBackend for AwsLc {
    fn name(&self) -> &'static str {
        "aws-lc-rs"
    }

    fn key(&self, key: &[u8; KEY_LEN]) -> Box<dyn AeadKey> {
        let key = UnboundKey::new(&AES_256_GCM, key).expect("AES-256-GCM takes a 32-byte key");
        Box::new(Key(LessSafeKey::new(key)))
    }
}

/// `LessSafeKey` because the nonce sequence is ours (the STREAM construction), not a
/// counter inside the key; the format code guarantees each nonce is used once.
struct Key(LessSafeKey);

impl AeadKey for Key {
    fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN]> {
        let nonce = Nonce::assume_unique_for_key(*nonce);
        let tag = self
            .0
            .seal_in_place_separate_tag(nonce, Aad::from(aad), in_out)
            .map_err(|_| too_long())?;
        let mut out = [0; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    fn open_in_place(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], in_out: &mut [u8]) -> Result<()> {
        let nonce = Nonce::assume_unique_for_key(*nonce);
        self.0
            .open_in_place(nonce, Aad::from(aad), in_out)
            .map(|_| ())
            .map_err(|_| unauthentic("segment"))
    }

    fn seal_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<()> {
        let nonce = Nonce::assume_unique_for_key(*nonce);
        self.0
            .seal_in_place_scatter(nonce, Aad::from(aad), &mut [], plaintext, out)
            .map_err(|_| too_long())
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
        let nonce = Nonce::assume_unique_for_key(*nonce);
        self.0
            .open_separate_gather(nonce, Aad::from(aad), ciphertext, tag, out)
            .map_err(|_| unauthentic("segment"))
    }
}
