//! Encryption at rest (`pipe_storage::crypt`): round trips, tampering of every kind,
//! known-answer vectors, both backends byte for byte, ranges, the append layout through
//! crashes at every write, and the local key provider.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pipe_core::{Error, KeyId, KeyProvider};
use pipe_storage::crypt::cipher::{
    AeadKey, CipherBackend, KEY_LEN, NONCE_LEN, TAG_LEN, all_backends,
};
use pipe_storage::crypt::{
    AppendReader, ByteStore, Crypt, DataKey, Header, Layout, LocalKeyProvider, MAX_COUNTER,
    StreamEncryptor, StreamLayout, stream_nonce,
};
use proptest::prelude::*;

/// A provider with one fixed key, the same in every run.
fn fixed_keys() -> Arc<LocalKeyProvider> {
    // 32 bytes 0x00..0x1f.
    Arc::new(
        LocalKeyProvider::from_env_value("kek-test:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
            .unwrap(),
    )
}

fn crypt(segment_size: u32) -> Crypt {
    Crypt::new(fixed_keys())
        .with_segment_size(segment_size)
        .with_header_len(128)
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn is_integrity(r: &pipe_core::Result<Vec<u8>>) -> bool {
    matches!(r, Err(Error::Integrity { .. }))
}

// ---------------------------------------------------------------- stream layout

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn stream_round_trips_any_length_and_chunking(
        segment_size in 1u32..300,
        len in 0usize..2000,
        chunk in 1usize..700,
    ) {
        let crypt = crypt(segment_size);
        let plain = data(len);
        let mut enc = crypt.encryptor().unwrap();
        let mut object = Vec::new();
        for piece in plain.chunks(chunk) {
            object.extend(enc.push(piece).unwrap());
        }
        object.extend(enc.finish().unwrap());
        let layout = StreamLayout::new(128, segment_size);
        prop_assert_eq!(object.len() as u64, layout.ciphertext_len(len as u64).unwrap());
        prop_assert_eq!(layout.plaintext_len(object.len() as u64).unwrap(), len as u64);

        let mut dec = crypt.decryptor();
        let mut back = Vec::new();
        for piece in object.chunks(chunk) {
            back.extend(dec.push(piece).unwrap());
        }
        back.extend(dec.finish().unwrap());
        prop_assert_eq!(back, plain);
    }

    #[test]
    fn a_range_decrypts_from_its_segments_alone(
        segment_size in 1u32..100,
        len in 0u64..700,
        a in 0u64..700,
        b in 0u64..700,
    ) {
        let crypt = crypt(segment_size);
        let plain = data(len as usize);
        let object = crypt.encrypt(&plain).unwrap();
        let header = Header::parse(&object).unwrap();
        let cipher = crypt.segment_cipher(&header).unwrap();
        let (start, end) = (a.min(b).min(len), a.max(b).min(len));
        let range = StreamLayout::of(&header).segments_for(start..end, len).unwrap();
        let fetched = &object[range.ciphertext.start as usize..range.ciphertext.end as usize];
        prop_assert_eq!(
            range.decrypt(&cipher, fetched).unwrap(),
            &plain[start as usize..end as usize]
        );
        // Only the segments that hold the range are fetched.
        let size = u64::from(segment_size) + TAG_LEN as u64;
        prop_assert!(range.ciphertext.end - range.ciphertext.start <= (end - start) / u64::from(segment_size) * size + 2 * size);
    }
}

#[test]
fn lengths_at_and_around_segment_multiples() {
    for backend in all_backends() {
        for segment_size in [1, 2, 16, 64 * 1024] {
            let crypt = crypt(segment_size).with_backend(backend.clone());
            let s = segment_size as usize;
            for len in [0, 1, s - 1, s, s + 1, 2 * s, 3 * s, 3 * s - 1] {
                let plain = data(len);
                let object = crypt.encrypt(&plain).unwrap();
                assert_eq!(
                    crypt.decrypt(&object).unwrap(),
                    plain,
                    "{segment_size} {len}"
                );
            }
        }
    }
}

#[test]
fn every_bit_flip_and_truncation_fails() {
    let crypt = crypt(16);
    let plain = data(50); // 3 full segments and a final one of 2 bytes
    let object = crypt.encrypt(&plain).unwrap();
    let header = Header::parse(&object).unwrap();
    let id = header.key_id().as_str().len();
    // Bytes 26..26+id are the key id: a changed id names a key the provider lacks.
    let key_id = 26..26 + id;
    for byte in 0..object.len() {
        for bit in 0..8 {
            let mut bad = object.clone();
            bad[byte] ^= 1 << bit;
            let r = crypt.decrypt(&bad);
            if key_id.contains(&byte) {
                assert!(
                    matches!(r, Err(Error::Integrity { .. } | Error::NotFound { .. })),
                    "flip at {byte}.{bit}: {r:?}"
                );
            } else {
                assert!(is_integrity(&r), "flip at {byte}.{bit}: {r:?}");
            }
        }
    }
    for cut in 0..object.len() {
        let r = crypt.decrypt(&object[..cut]);
        assert!(is_integrity(&r), "cut at {cut}: {r:?}");
    }
    let mut longer = object.clone();
    longer.push(0);
    assert!(is_integrity(&crypt.decrypt(&longer)));
}

#[test]
fn reordered_duplicated_or_dropped_segments_fail() {
    let crypt = crypt(16);
    let object = crypt.encrypt(&data(64)).unwrap(); // 4 full segments and an empty final one
    let h = 128;
    let seg = |i: usize| object[h + i * 32..h + (i + 1) * 32].to_vec();
    let last = object[h + 4 * 32..].to_vec();
    let build = |order: &[usize]| {
        let mut out = object[..h].to_vec();
        for &i in order {
            out.extend(seg(i));
        }
        out.extend(&last);
        out
    };
    assert!(crypt.decrypt(&build(&[0, 1, 2, 3])).is_ok());
    for order in [
        &[1, 0, 2, 3][..],
        &[0, 1, 3, 2],
        &[0, 0, 1, 2, 3],
        &[0, 1, 2, 3, 3],
        &[0, 1, 2],
        &[1, 2, 3],
    ] {
        assert!(is_integrity(&crypt.decrypt(&build(order))), "{order:?}");
    }
    // The final segment moved forward, or a full segment in its place.
    let mut early_end = object[..h + 32].to_vec();
    early_end.extend(&last);
    assert!(is_integrity(&crypt.decrypt(&early_end)));
    // Segments of another object with the same key provider.
    let other = crypt.encrypt(&data(64)).unwrap();
    let mut spliced = object.clone();
    spliced[h + 32..h + 64].copy_from_slice(&other[h + 32..h + 64]);
    assert!(is_integrity(&crypt.decrypt(&spliced)));
}

#[test]
fn header_changes_fail() {
    let crypt = crypt(16);
    let object = crypt.encrypt(&data(40)).unwrap();
    // Each immutable field changed to another valid value.
    for (at, value) in [(10, 2u8), (15, 17), (22, 0xAA), (24, 129)] {
        let mut bad = object.clone();
        bad[at] = value;
        assert!(is_integrity(&crypt.decrypt(&bad)), "byte {at}");
    }
    // A header re-wrapped under another object's data key.
    let other = crypt.encrypt(&data(40)).unwrap();
    let mut bad = other[..128].to_vec();
    bad.extend(&object[128..]);
    assert!(is_integrity(&crypt.decrypt(&bad)));
}

#[test]
fn counter_overflow_is_refused() {
    let prefix = [7; 7];
    assert!(stream_nonce(&prefix, MAX_COUNTER, true).is_ok());
    assert!(matches!(
        stream_nonce(&prefix, MAX_COUNTER + 1, false),
        Err(Error::Invalid { .. })
    ));
    let layout = StreamLayout::new(128, 1);
    assert!(layout.ciphertext_len(MAX_COUNTER).is_ok());
    assert!(matches!(
        layout.ciphertext_len(MAX_COUNTER + 1),
        Err(Error::Invalid { .. })
    ));
}

#[test]
fn decrypting_garbage_never_panics() {
    let crypt = crypt(16);
    let object = crypt.encrypt(&data(40)).unwrap();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..2000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let len = (rng % 400) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|j| (rng >> (j % 56)) as u8).collect();
        if i % 2 == 0 {
            // Keep a valid fixed header so the parser goes deeper.
            let n = bytes.len().min(40);
            bytes[..n].copy_from_slice(&object[..n]);
        }
        assert!(crypt.decrypt(&bytes).is_err());
    }
}

// ---------------------------------------------------------------- known answers

/// A stand-in key provider whose "wrapping" is the identity, so that a whole file is
/// deterministic for the known-answer vector. Never for real use.
#[derive(Debug)]
struct IdentityWrapStandIn;

impl KeyProvider for IdentityWrapStandIn {
    fn current(&self) -> pipe_core::Result<KeyId> {
        KeyId::new("kat")
    }
    fn wrap(&self, _: &KeyId, data_key: &[u8], _: &[u8]) -> pipe_core::Result<Vec<u8>> {
        Ok(data_key.to_vec())
    }
    fn unwrap(&self, _: &KeyId, wrapped: &[u8], _: &[u8]) -> pipe_core::Result<Vec<u8>> {
        Ok(wrapped.to_vec())
    }
}

const KAT_DEK: [u8; 32] = [0x42; 32];
const KAT_PREFIX: [u8; 7] = [1, 2, 3, 4, 5, 6, 7];
const KAT_PLAINTEXT: &[u8] = b"Pipe encrypts at rest!"; // 22 bytes: segments of 8, 8, 6
/// The whole file: 64-byte header, then 3 segments of 8-byte plaintext. Checked
/// independently against Python's `cryptography` AESGCM (see ENCRYPTION.md).
const KAT_FILE: &str = concat!(
    "504950452d454e430101010000000008010203040506070040036b617400204242424242424242",
    "424242424242424242424242424242424242424242424242007e6ecfcc57e66d9d33829ee5b7a7",
    "dada1c39b9b66096cae841a61865aef1181b4132f272f38988fb9f368b87c768c1ce6d5cc423e7",
    "e15d053e7072c479545f7a53f62c507463"
);

fn kat_header() -> (Header, DataKey) {
    let key = DataKey::from_bytes(KAT_DEK);
    let header = Header::create_with(
        &IdentityWrapStandIn,
        Layout::Stream,
        8,
        64,
        &key,
        KAT_PREFIX,
    )
    .unwrap();
    (header, key)
}

#[test]
fn known_answer_vector_for_every_backend() {
    for backend in all_backends() {
        let (header, key) = kat_header();
        let mut enc = StreamEncryptor::new(backend.as_ref(), &header, &key).unwrap();
        let mut file = enc.push(KAT_PLAINTEXT).unwrap();
        file.extend(enc.finish().unwrap());
        assert_eq!(hex::encode(&file), KAT_FILE, "{}", backend.name());
        let crypt = Crypt::new(Arc::new(IdentityWrapStandIn)).with_backend(backend.clone());
        assert_eq!(
            crypt.decrypt(&hex::decode(KAT_FILE).unwrap()).unwrap(),
            KAT_PLAINTEXT
        );
    }
}

#[test]
fn backends_seal_identical_bytes() {
    let backends = all_backends();
    if cfg!(all(
        feature = "cipher-aws-lc",
        feature = "cipher-rustcrypto"
    )) {
        assert_eq!(backends.len(), 2, "both backends compared");
    }
    let key = [0x5A; KEY_LEN];
    let nonce = [0xA5; NONCE_LEN];
    for len in [0, 1, 15, 16, 17, 1000, 65536] {
        let outputs: Vec<_> = backends
            .iter()
            .map(|b| {
                let mut buf = data(len);
                let tag = b.key(&key).seal_in_place(&nonce, b"aad", &mut buf).unwrap();
                buf.extend(tag);
                buf
            })
            .collect();
        assert!(outputs.windows(2).all(|w| w[0] == w[1]), "{len}");
        for b in &backends {
            let mut buf = outputs[0].clone();
            b.key(&key).open_in_place(&nonce, b"aad", &mut buf).unwrap();
            assert_eq!(&buf[..len], &data(len)[..]);
        }
    }
    // Whole objects: the same header and key give the same file in every backend.
    let key = DataKey::from_bytes([9; 32]);
    let header =
        Header::create_with(&*fixed_keys(), Layout::Stream, 1000, 128, &key, [3; 7]).unwrap();
    let files: Vec<_> = backends
        .iter()
        .map(|b| {
            let mut enc = StreamEncryptor::new(b.as_ref(), &header, &key).unwrap();
            let mut out = enc.push(&data(5555)).unwrap();
            out.extend(enc.finish().unwrap());
            out
        })
        .collect();
    assert!(files.windows(2).all(|w| w[0] == w[1]));
    // And each backend reads what the others wrote.
    for b in &backends {
        let crypt = Crypt::new(fixed_keys()).with_backend(b.clone());
        assert_eq!(crypt.decrypt(&files[0]).unwrap(), data(5555));
    }
}

/// An append-layout file written by an independent implementation (Python's
/// `cryptography`, from ENCRYPTION.md alone): `S = 8`, `H = 96`, key id `kat` under the
/// fixed KEK, DEK 32 × 0x42, prefix 01..07, every record salt 00..0f, unfinished with its
/// tail in the alternate slot.
const APPEND_KAT_FILE: &str = concat!(
    "504950452d454e430101020000000008010203040506070060036b6174003c000000000000000000",
    "0000004cfef79cf76ec1ff4aeaeb775a6ed3db900114116ac3226dc2dcf1c187bd1f14340511b571",
    "8187b1855510014c0eaaab0000000000000102030405060708090a0b0c0d0e0f0000000008b123a9",
    "77f31ada5f79ba7af1681ec91c81651fb1b9333b4c000102030405060708090a0b0c0d0e0f000000",
    "0008a6da4fd06e77b4c8c96189e4b09cedb08da5ea59419f1fb60000000000000000000000000000",
    "00000000000000000000000000000000000000000000000000000000000000000102030405060708",
    "090a0b0c0d0e0f000000000631abbc59a90635a87170d1d461102b02dc895d14d469",
);

#[test]
fn append_layout_known_answer_from_an_independent_writer() {
    let keys = LocalKeyProvider::from_env_value("kat:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        .unwrap();
    let crypt = Crypt::new(Arc::new(keys));
    let file = hex::decode(APPEND_KAT_FILE).unwrap();
    let reader = crypt.read_append(file.clone()).unwrap();
    assert!(!reader.is_finished());
    assert_eq!(reader.read_at(0, 100).unwrap(), KAT_PLAINTEXT);
    assert_eq!(reader.read_at(9, 4).unwrap(), &KAT_PLAINTEXT[9..13]);
    // Resumed by this implementation and finished: still readable, now finished.
    let mut writer = crypt.open_append(file).unwrap();
    assert_eq!(writer.durable_plaintext_len(), 22);
    writer.append(b" Really.").unwrap();
    let reader = crypt.read_append(writer.finish().unwrap()).unwrap();
    assert!(reader.is_finished());
    assert_eq!(
        reader.read_at(0, 100).unwrap(),
        b"Pipe encrypts at rest! Really."
    );
}

// ---------------------------------------------------------------- keys

#[test]
fn local_key_file_is_created_once_private_and_rotates() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let keys = LocalKeyProvider::open_or_create(dir.path().join("keys")).unwrap();
    let first = keys.generated().cloned().expect("a key was generated");
    let path = keys.path().unwrap().to_owned();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let crypt = Crypt::new(Arc::new(keys));
    let old = crypt.encrypt(b"old object").unwrap();

    // Reopened: the same key, nothing generated.
    let keys = LocalKeyProvider::open_or_create(dir.path().join("keys")).unwrap();
    assert_eq!(keys.generated(), None);
    assert_eq!(keys.current().unwrap(), first);
    let second = keys.rotate().unwrap();
    assert_ne!(second, first);
    let keys = Arc::new(LocalKeyProvider::open_or_create(dir.path().join("keys")).unwrap());
    assert_eq!(keys.key_ids(), vec![first.clone(), second.clone()]);
    let crypt = Crypt::new(keys.clone()).with_header_len(256);
    let new = crypt.encrypt(b"new object").unwrap();
    assert_eq!(Header::parse(&new).unwrap().key_id(), &second);
    assert_eq!(crypt.decrypt(&old).unwrap(), b"old object");

    // Re-wrap: only the header changes, the segments stay byte for byte.
    let mut rewrapped = crypt.rewrap(&old).unwrap();
    assert_eq!(rewrapped.len(), 256);
    assert_eq!(Header::parse(&rewrapped).unwrap().key_id(), &second);
    rewrapped.extend_from_slice(&old[256..]);
    assert_eq!(crypt.decrypt(&rewrapped).unwrap(), b"old object");

    // A world-readable key file is refused.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        LocalKeyProvider::open_or_create(dir.path().join("keys")),
        Err(Error::Invalid { .. })
    ));
}

#[test]
fn key_material_is_never_printed() {
    let b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let keys = LocalKeyProvider::from_env_value(&format!("a:{b64}")).unwrap();
    let debug = format!("{keys:?} {:?}", DataKey::from_bytes([0x11; 32]));
    assert!(!debug.contains(b64) && !debug.contains("17, 17") && !debug.contains("1111"));
    // Malformed values: errors name the entry, never the key text.
    for value in [
        "a:not-base64!!",
        "a:AAEC",
        "bad id:AAEC",
        "a:{b64},a:{b64}",
        "",
    ] {
        let value = value.replace("{b64}", b64);
        let err = LocalKeyProvider::from_env_value(&value).unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }));
        let text = err.to_string();
        assert!(
            !text.contains("AAEC") && !text.contains("not-base64"),
            "{text}"
        );
    }
    // An unknown key id is NotFound; rotating keys from the environment is not offered.
    let id = KeyId::new("missing").unwrap();
    assert!(keys.unwrap(&id, &[0; 60], b"").unwrap_err().is_not_found());
    assert!(matches!(keys.rotate(), Err(Error::NotSupported { .. })));
}

#[test]
fn wrapped_keys_are_bound_to_their_id_and_context() {
    let keys = LocalKeyProvider::from_env_value(
        "a:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,b:HwECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    )
    .unwrap();
    let (a, b) = (KeyId::new("a").unwrap(), KeyId::new("b").unwrap());
    assert_eq!(keys.current().unwrap(), b);
    let wrapped = keys.wrap(&a, &[7; 32], b"ctx").unwrap();
    assert_ne!(
        wrapped,
        keys.wrap(&a, &[7; 32], b"ctx").unwrap(),
        "randomized"
    );
    assert_eq!(keys.unwrap(&a, &wrapped, b"ctx").unwrap(), [7; 32]);
    assert!(matches!(
        keys.unwrap(&b, &wrapped, b"ctx"),
        Err(Error::Integrity { .. })
    ));
    assert!(matches!(
        keys.unwrap(&a, &wrapped, b"ctX"),
        Err(Error::Integrity { .. })
    ));
    assert!(matches!(
        keys.unwrap(&a, &wrapped[..20], b"ctx"),
        Err(Error::Integrity { .. })
    ));
}

#[test]
fn shredding_makes_objects_unreadable() {
    let crypt = crypt(16);
    let object = crypt.encrypt(&data(100)).unwrap();
    let shredded_header = Header::parse(&object).unwrap().shredded().to_bytes();
    assert_eq!(shredded_header.len(), 128);
    let mut shredded = object.clone();
    shredded[..128].copy_from_slice(&shredded_header);
    // The wrapped key is gone from the bytes, not just flagged: the key slot after the key
    // id holds a zero length and zeros, and no 20 bytes of the old wrapped key are left
    // anywhere in the header. (Located by the layout of ENCRYPTION.md; comparing windows
    // of the whole old slot instead matched, one run in 256, a window of the key's last
    // random byte and padding against the key id's last byte and the zeroed slot.)
    let n = usize::from(object[25]);
    let w = usize::from(u16::from_be_bytes([object[26 + n], object[27 + n]]));
    assert!(w >= 20, "a wrapped key of {w} bytes");
    let wrapped = &object[28 + n..28 + n + w];
    assert!(shredded[26 + n..128].iter().all(|&b| b == 0));
    assert!(
        !shredded[..128]
            .windows(20)
            .any(|s| wrapped.windows(20).any(|k| k == s))
    );
    let err = crypt.decrypt(&shredded).unwrap_err();
    assert!(err.is_not_found(), "{err:?}");

    // In place on an append-layout file.
    let mut file = tempfile::tempfile().unwrap();
    let mut writer = crypt.create_append(file.try_clone().unwrap()).unwrap();
    writer.append(&data(70)).unwrap();
    drop(writer);
    assert_eq!(
        crypt.read_append(file.try_clone().unwrap()).unwrap().len(),
        70
    );
    crypt.shred_in_place(&mut file).unwrap();
    assert!(crypt.read_append(file).unwrap_err().is_not_found());
}

// ---------------------------------------------------------------- append layout

/// Every (key, nonce) pair a [`RecordingBackend`] sealed under, in order.
type Seals = Arc<Mutex<Vec<([u8; KEY_LEN], [u8; NONCE_LEN])>>>;

/// Wraps a real backend and records every (key, nonce) it seals under: the instrument for
/// "no (key, nonce) pair is ever used twice".
#[derive(Debug, Clone)]
struct RecordingBackend {
    inner: Arc<dyn CipherBackend>,
    seals: Seals,
}

struct RecordingKey {
    key: [u8; KEY_LEN],
    inner: Box<dyn AeadKey>,
    seals: Seals,
}

impl CipherBackend for RecordingBackend {
    fn name(&self) -> &'static str {
        "recording"
    }
    fn key(&self, key: &[u8; KEY_LEN]) -> Box<dyn AeadKey> {
        Box::new(RecordingKey {
            key: *key,
            inner: self.inner.key(key),
            seals: self.seals.clone(),
        })
    }
}

impl AeadKey for RecordingKey {
    fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> pipe_core::Result<[u8; TAG_LEN]> {
        self.seals.lock().unwrap().push((self.key, *nonce));
        self.inner.seal_in_place(nonce, aad, in_out)
    }
    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> pipe_core::Result<()> {
        self.inner.open_in_place(nonce, aad, in_out)
    }
}

impl RecordingBackend {
    fn new() -> Self {
        Self {
            inner: pipe_storage::crypt::default_backend(),
            seals: Arc::default(),
        }
    }

    fn assert_no_pair_reused(&self) {
        let seals = self.seals.lock().unwrap();
        let mut seen = HashMap::new();
        for pair in seals.iter() {
            *seen.entry(*pair).or_insert(0) += 1;
        }
        let reused = seen.values().filter(|&&n| n > 1).count();
        assert_eq!(
            reused,
            0,
            "{reused} (key, nonce) pairs sealed twice of {}",
            seals.len()
        );
    }
}

/// A store that models a crash: writes since the last sync may be lost, or land only in
/// part (a torn write), as on a power cut. A stand-in for a disk that can lose power.
#[derive(Debug, Default, Clone)]
struct CrashableStore {
    durable: Vec<u8>,
    current: Vec<u8>,
    /// Writes since the last sync, in order.
    unsynced: Vec<(u64, Vec<u8>)>,
    /// Every write ever made, to pick crash points.
    writes: usize,
}

impl ByteStore for CrashableStore {
    fn size(&self) -> std::io::Result<u64> {
        self.current.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.current.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.writes += 1;
        self.unsynced.push((offset, data.to_vec()));
        self.current.write_at(offset, data)
    }
    fn sync(&mut self) -> std::io::Result<()> {
        self.durable = self.current.clone();
        self.unsynced.clear();
        Ok(())
    }
    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        // Modelled as durable at once (the writer syncs right after anyway).
        ByteStore::truncate(&mut self.current, len)?;
        self.durable = self.current.clone();
        self.unsynced.clear();
        Ok(())
    }
}

impl CrashableStore {
    /// The disk after a power cut: the durable bytes, the first `whole` unsynced writes,
    /// and `torn` bytes of the next one.
    fn crashed(&self, whole: usize, torn: usize) -> Vec<u8> {
        let mut disk = self.durable.clone();
        for (offset, data) in self.unsynced.iter().take(whole) {
            disk.write_at(*offset, data).unwrap();
        }
        if let Some((offset, data)) = self.unsynced.get(whole) {
            disk.write_at(*offset, &data[..torn.min(data.len())])
                .unwrap();
        }
        disk
    }
}

/// A store of bytes only: the crashed disk, reopened.
impl From<Vec<u8>> for CrashableStore {
    fn from(disk: Vec<u8>) -> Self {
        Self {
            durable: disk.clone(),
            current: disk,
            ..Self::default()
        }
    }
}

#[test]
fn append_round_trips_and_reads_at_any_offset() {
    for segment_size in [1u32, 7, 16, 4096] {
        let crypt = crypt(segment_size);
        let plain = data(5000);
        let mut writer = crypt.create_append(Vec::new()).unwrap();
        let mut written = 0;
        for chunk in [0, 1, 5, 16, 17, 100, 1000, 2, 3859] {
            written += chunk;
            assert_eq!(
                writer.append(&plain[written - chunk..written]).unwrap(),
                written as u64
            );
        }
        assert_eq!(written, 5000);
        let store = writer.into_inner();
        let reader = crypt.read_append(store.clone()).unwrap();
        assert!(!reader.is_finished());
        assert_eq!(reader.read_at(0, 5000).unwrap(), plain);
        for (offset, len) in [
            (0, 1),
            (4999, 10),
            (segment_size as u64, 3),
            (1234, 2000),
            (5000, 5),
        ] {
            let end = (offset as usize + len).min(5000);
            assert_eq!(
                reader.read_at(offset, len).unwrap(),
                &plain[offset as usize..end]
            );
        }
        let finished = crypt.open_append(store).unwrap().finish().unwrap();
        let reader = crypt.read_append(finished.clone()).unwrap();
        assert!(reader.is_finished());
        assert_eq!(reader.read_at(0, 6000).unwrap(), plain);
        let mut again = crypt.open_append(finished).unwrap();
        assert!(again.append(b"x").unwrap_err().is_precondition());
    }
    // The empty file, finished.
    let crypt = crypt(16);
    let finished = crypt.create_append(Vec::new()).unwrap().finish().unwrap();
    let reader = crypt.read_append(finished).unwrap();
    assert!(reader.is_finished() && reader.is_empty());
}

#[test]
fn append_survives_a_crash_at_every_write_without_reusing_a_nonce() {
    let segment_size = 16;
    let plain = data(200);
    // Appends that end mid-segment, at a boundary, and span several segments.
    let chunks = [5usize, 7, 4, 20, 3, 33, 16, 9];
    let total: usize = chunks.iter().sum();
    let mut crash_points = 0;
    // Writes of the whole run, to enumerate crash points.
    let writes = {
        let crypt = crypt(segment_size);
        let mut w = crypt.create_append(CrashableStore::default()).unwrap();
        let mut at = 0;
        for c in chunks {
            w.append(&plain[at..at + c]).unwrap();
            at += c;
        }
        w.into_inner().writes
    };
    for crash_at in 1..=writes {
        for torn in [0usize, 1, 10, 30, usize::MAX] {
            let recorder = RecordingBackend::new();
            let crypt = crypt(segment_size).with_backend(Arc::new(recorder.clone()));
            let mut writer = crypt.create_append(CrashableStore::default()).unwrap();
            let mut acked = 0u64;
            let mut at = 0;
            for c in chunks {
                if writer.store().writes >= crash_at {
                    break;
                }
                acked = writer.append(&plain[at..at + c]).unwrap();
                at += c;
            }
            // The power goes out during the next write (or after it, torn = MAX).
            let store = writer.into_inner();
            let whole = store.unsynced.len().saturating_sub(1);
            let disk = store.crashed(whole, torn);
            crash_points += 1;

            let mut writer = crypt.open_append(CrashableStore::from(disk)).unwrap();
            let durable = writer.durable_plaintext_len();
            assert!(
                durable >= acked,
                "lost acknowledged bytes: {durable} < {acked}"
            );
            assert!(durable as usize <= at.max(acked as usize) + chunks[0].max(33));
            // Resume: the client re-sends from the durable offset, then different bytes.
            let reader = crypt.read_append(writer_store_clone(&writer)).unwrap();
            assert_eq!(reader.len(), durable);
            assert_eq!(
                reader.read_at(0, total).unwrap(),
                &plain[..durable as usize]
            );
            let resent: Vec<u8> = plain[durable as usize..].iter().map(|b| b ^ 0xFF).collect();
            writer.append(&resent).unwrap();
            let finished = writer.finish().unwrap();
            let reader = crypt.read_append(finished).unwrap();
            let mut expected = plain[..durable as usize].to_vec();
            expected.extend(&resent);
            assert_eq!(reader.read_at(0, 1000).unwrap(), expected);
            recorder.assert_no_pair_reused();
        }
    }
    assert!(crash_points > 50);
}

/// A copy of what the writer's store holds now.
fn writer_store_clone(
    writer: &pipe_storage::crypt::AppendWriter<CrashableStore>,
) -> CrashableStore {
    CrashableStore::from(writer.store().current.clone())
}

#[test]
fn append_to_a_real_file_resumes_after_the_writer_is_killed() {
    let recorder = RecordingBackend::new();
    let crypt = crypt(64 * 1024).with_backend(Arc::new(recorder.clone()));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.enc");
    let open = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap()
    };
    let plain = data(300_000);
    let mut writer = crypt.create_append(open()).unwrap();
    assert_eq!(writer.append(&plain[..100_000]).unwrap(), 100_000);
    assert_eq!(writer.append(&plain[100_000..150_000]).unwrap(), 150_000);
    drop(writer); // killed mid-segment: 150_000 is 2 segments and 18_928 bytes
    let mut writer = crypt.open_append(open()).unwrap();
    assert_eq!(writer.durable_plaintext_len(), 150_000);
    writer.append(&plain[150_000..]).unwrap();
    writer.finish().unwrap();
    let reader: AppendReader<_> = crypt.read_append(open()).unwrap();
    assert!(reader.is_finished());
    assert_eq!(reader.read_at(0, 400_000).unwrap(), plain);
    assert_eq!(
        reader.read_at(131_000, 1000).unwrap(),
        &plain[131_000..132_000]
    );
    recorder.assert_no_pair_reused();
    // Rewrapped in place after a rotation, still readable; the segments are untouched.
    let before = std::fs::read(&path).unwrap();
    let mut file = open();
    crypt.rewrap_in_place(&mut file).unwrap();
    let after = std::fs::read(&path).unwrap();
    assert_eq!(before[128..], after[128..]);
    assert_ne!(before[..128], after[..128]);
    assert_eq!(
        crypt.read_append(open()).unwrap().read_at(0, 10).unwrap(),
        &plain[..10]
    );
}

#[test]
fn tampered_append_files_fail_to_read() {
    let crypt = crypt(16);
    let mut writer = crypt.create_append(Vec::new()).unwrap();
    writer.append(&data(40)).unwrap();
    let store = writer.finish().unwrap();
    for byte in 128..store.len() {
        let mut bad = store.clone();
        bad[byte] ^= 0x20;
        // Read as the finished file it is: every flip fails.
        let r = crypt
            .read_append(bad.clone())
            .and_then(AppendReader::expect_finished)
            .and_then(|r| r.read_at(0, 100));
        assert!(is_integrity(&r), "flip at {byte}: {r:?}");
        // Read as a file that may be unfinished: at worst an earlier durable state, never
        // other bytes.
        match crypt.read_append(bad).and_then(|r| r.read_at(0, 100)) {
            Ok(bytes) => assert!(data(40).starts_with(&bytes), "flip at {byte}"),
            Err(e) => assert!(
                matches!(e, Error::Integrity { .. }),
                "flip at {byte}: {e:?}"
            ),
        }
    }
}

/// A stand-in disk whose writes fail once a budget is spent, as a full disk does.
#[derive(Debug, Clone)]
struct FailingStore {
    bytes: Vec<u8>,
    writes_left: usize,
}

impl ByteStore for FailingStore {
    fn size(&self) -> std::io::Result<u64> {
        self.bytes.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.bytes.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        if self.writes_left == 0 {
            return Err(std::io::Error::other("no space left on device"));
        }
        self.writes_left -= 1;
        self.bytes.write_at(offset, data)
    }
    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        ByteStore::truncate(&mut self.bytes, len)
    }
}

#[test]
fn a_failed_append_stops_the_writer_until_the_file_is_reopened() {
    let crypt = crypt(16);
    // One write for the header, one for the first tail, then the disk is full.
    let store = FailingStore {
        bytes: Vec::new(),
        writes_left: 2,
    };
    let mut writer = crypt.create_append(store).unwrap();
    assert_eq!(writer.append(b"0123456789").unwrap(), 10);
    let err = writer.append(b"abcdefghij").unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(writer.append(b"x").unwrap_err().is_precondition());
    let bytes = writer.into_inner().bytes;
    let store = FailingStore {
        bytes,
        writes_left: usize::MAX,
    };
    let mut writer = crypt.open_append(store).unwrap();
    assert_eq!(writer.durable_plaintext_len(), 10);
    assert_eq!(writer.append(b"abcdefghij").unwrap(), 20);
    let reader = crypt.read_append(writer.finish().unwrap()).unwrap();
    assert_eq!(reader.read_at(0, 100).unwrap(), b"0123456789abcdefghij");
}

/// The fuzz target's seeds (written by the independent Python implementation, under the
/// fuzz key) are valid files: the fuzzer starts from accepted inputs.
#[test]
fn fuzz_seeds_are_valid_files() {
    let keys =
        LocalKeyProvider::from_env_value("fuzz:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
            .unwrap();
    let crypt = Crypt::new(Arc::new(keys));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/decrypt");
    let seed = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let message = b"Pipe encrypts every recording at rest.";
    assert_eq!(crypt.decrypt(&seed("stream-small")).unwrap(), message);
    assert_eq!(crypt.decrypt(&seed("stream-empty")).unwrap(), b"");
    assert_eq!(
        crypt.decrypt(&seed("stream-one-byte-segments")).unwrap(),
        b"abc"
    );
    let finished = crypt
        .read_append(seed("append-finished"))
        .and_then(AppendReader::expect_finished)
        .unwrap();
    assert_eq!(finished.read_at(0, 100).unwrap(), message);
    let open = crypt
        .read_append(seed("append-open-tail-alternate"))
        .unwrap();
    assert!(!open.is_finished());
    assert_eq!(open.read_at(0, 100).unwrap(), message);
}
