//! Decryption of arbitrary bytes (pipe-storage's encryption at rest): it never panics, and
//! whatever it accepts is authentic. A stream-layout object that decrypts must be exactly
//! what encrypting its plaintext again under its own header and data key gives; an
//! append-layout file must read back consistently.
//!
//! Run: `cargo fuzz run --sanitizer none decrypt -- -max_total_time=30` (from the
//! repository root). Seeds in `fuzz/corpus/decrypt/` are valid files under the key below.
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use pipe_storage::crypt::{Crypt, Header, LocalKeyProvider, StreamEncryptor, StreamLayout};

/// The fuzzing key: 32 bytes 0x00..0x1f, id `fuzz`.
static CRYPT: LazyLock<Crypt> = LazyLock::new(|| {
    let keys =
        LocalKeyProvider::from_env_value("fuzz:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
            .expect("a valid key");
    Crypt::new(Arc::new(keys))
});

fuzz_target!(|data: &[u8]| {
    let crypt = &*CRYPT;
    // The whole object at once, then in two pieces: the same verdict.
    let whole = crypt.decrypt(data);
    let split = data.len() / 3;
    let mut decryptor = crypt.decryptor();
    let pieces = decryptor
        .push(&data[..split])
        .and_then(|mut out| {
            out.extend(decryptor.push(&data[split..])?);
            Ok(out)
        })
        .and_then(|mut out| {
            out.extend(decryptor.finish()?);
            Ok(out)
        });
    assert_eq!(whole.is_ok(), pieces.is_ok());

    if let Ok(plaintext) = whole {
        assert_eq!(pieces.unwrap(), plaintext);
        // Accepted: it must be exactly the encryption of its plaintext.
        let header = Header::parse(data).expect("it decrypted");
        let key = header.open(crypt.provider()).expect("it decrypted");
        let mut encryptor =
            StreamEncryptor::new(crypt.backend().as_ref(), &header, &key).expect("stream");
        let mut again = encryptor.push(&plaintext).expect("encrypts");
        again.extend(encryptor.finish().expect("encrypts"));
        assert_eq!(again, data);
        // And every range of it decrypts to the same bytes.
        let cipher = crypt.segment_cipher(&header).expect("it decrypted");
        let len = plaintext.len() as u64;
        let layout = StreamLayout::of(&header);
        let (a, b) = (len / 3, len - len / 5);
        let range = layout.segments_for(a..b, len).expect("in range");
        let fetched = &data[range.ciphertext.start as usize..range.ciphertext.end as usize];
        assert_eq!(
            range.decrypt(&cipher, fetched).expect("authentic"),
            &plaintext[a as usize..b as usize]
        );
    }

    // The same bytes as an append-layout file.
    if let Ok(reader) = crypt.read_append(data.to_vec()) {
        let len = reader.len();
        if let Ok(all) = reader.read_at(0, usize::MAX) {
            assert_eq!(all.len() as u64, len);
            if let Ok(middle) = reader.read_at(len / 2, 7) {
                assert_eq!(&all[(len / 2) as usize..][..middle.len()], middle);
            }
        }
    }
});
