use super::*;
use std::sync::{Arc, Barrier};

use clientele_secrets::Provider::{Tiquo, Vagaro, Zupy};

fn secret(value: &str) -> Sensitive<String> {
    Sensitive::new(value.to_string())
}

fn key(byte: u8) -> RelayKey {
    RelayKey([byte; KEY_BYTES])
}

/// A relay database in a fresh folder, sealed under `key`.
fn sealed_store(key: RelayKey) -> (tempfile::TempDir, Store, SealedSecrets) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_dir(dir.path()).expect("open store");
    let sealed = SealedSecrets::new(store.clone(), key);
    (dir, store, sealed)
}

fn get(store: &SealedSecrets, provider: Provider, connection: &str) -> Option<String> {
    store
        .get(provider, connection)
        .expect("get")
        .map(|s| s.expose().clone())
}

#[test]
fn set_get_replace_delete_round_trip() {
    let (_dir, _store, sealed) = sealed_store(key(7));
    assert_eq!(get(&sealed, Tiquo, "main"), None);
    assert!(!sealed.is_set(Tiquo, "main").unwrap());

    sealed
        .set(Tiquo, "main", &secret("  whsec_first\r\n"))
        .unwrap();
    assert_eq!(get(&sealed, Tiquo, "main").as_deref(), Some("whsec_first"));
    assert!(sealed.is_set(Tiquo, "main").unwrap());

    sealed.set(Tiquo, "main", &secret("whsec_second")).unwrap();
    assert_eq!(get(&sealed, Tiquo, "main").as_deref(), Some("whsec_second"));

    sealed.set(Zupy, "main", &secret("zupy-secret")).unwrap();
    sealed.delete(Tiquo, "main").unwrap();
    assert_eq!(get(&sealed, Tiquo, "main"), None);
    assert!(!sealed.is_set(Tiquo, "main").unwrap());
    assert_eq!(get(&sealed, Zupy, "main").as_deref(), Some("zupy-secret"));
    sealed
        .delete(Tiquo, "main")
        .expect("deleting a secret that is not there is fine");
    assert_eq!(sealed.describe(), "the relay's database (encrypted)");
}

#[test]
fn empty_secrets_are_refused_and_leave_the_saved_one() {
    let (_dir, _store, sealed) = sealed_store(key(7));
    sealed.set(Vagaro, "salon", &secret("token-123")).unwrap();
    for blank in ["", "  ", "\r\n"] {
        assert_eq!(
            sealed.set(Vagaro, "salon", &secret(blank)).unwrap_err(),
            SecretError::Empty { provider: Vagaro }
        );
    }
    assert_eq!(get(&sealed, Vagaro, "salon").as_deref(), Some("token-123"));
}

#[test]
fn a_new_relay_store_reads_what_another_one_sealed_with_the_same_key() {
    let (_dir, store, sealed) = sealed_store(key(7));
    sealed.set(Tiquo, "main", &secret("whsec_shared")).unwrap();
    let again = SealedSecrets::new(store, key(7));
    assert_eq!(get(&again, Tiquo, "main").as_deref(), Some("whsec_shared"));
}

/// Every file of the data folder, as bytes.
fn raw_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| {
            let bytes = fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_database_files_never_hold_the_plain_secret() {
    let (dir, store, sealed) = sealed_store(key(7));
    let needle = "whsec_NEEDLE_5f1c0e9a_plain_secret_must_not_be_on_disk";
    // An open connection keeps the write in the WAL (the last one to close would fold it into
    // the main file and delete the WAL), so both files are looked at.
    let hold = store.reader().unwrap();
    sealed.set(Tiquo, "needle-shop", &secret(needle)).unwrap();
    sealed
        .set(Tiquo, "needle-shop", &secret(&format!("{needle}-2")))
        .unwrap();

    let files = raw_files(dir.path());
    let names: Vec<String> = files
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with("-wal")),
        "expected a WAL file: {names:?}"
    );
    // The scan sees what was written: the account name is stored in the clear.
    assert!(
        files
            .iter()
            .any(|(_, bytes)| contains(bytes, b"tiquo/needle-shop")),
        "the account was not found in {names:?}, so the scan proves nothing"
    );
    for (path, bytes) in &files {
        assert!(
            !contains(bytes, needle.as_bytes()),
            "{} holds the plain secret",
            path.display()
        );
    }

    drop(hold);
    for (path, bytes) in raw_files(dir.path()) {
        assert!(
            !contains(&bytes, needle.as_bytes()),
            "{} holds the plain secret after the checkpoint",
            path.display()
        );
    }
    assert_eq!(
        get(&sealed, Tiquo, "needle-shop").as_deref(),
        Some(format!("{needle}-2").as_str())
    );
}

#[test]
fn every_write_uses_a_fresh_nonce() {
    let (_dir, store, sealed) = sealed_store(key(7));
    let reader = store.reader().unwrap();
    sealed.set(Tiquo, "main", &secret("same")).unwrap();
    let first = reader.sealed_secret("tiquo/main").unwrap().unwrap();
    sealed.set(Tiquo, "main", &secret("same")).unwrap();
    let second = reader.sealed_secret("tiquo/main").unwrap().unwrap();
    assert_eq!(first.nonce.len(), 24);
    assert_ne!(first.nonce, second.nonce);
    assert_ne!(first.ciphertext, second.ciphertext);
    // Ciphertext and a 16-byte tag.
    assert_eq!(first.ciphertext.len(), "same".len() + 16);
}

#[test]
fn another_key_gets_a_plain_error_not_the_secret() {
    let (_dir, store, sealed) = sealed_store(key(7));
    sealed
        .set(Tiquo, "main", &secret("whsec_topsecret"))
        .unwrap();

    let replaced = SealedSecrets::new(store, key(8));
    let err = replaced.get(Tiquo, "main").unwrap_err();
    assert_eq!(
        err,
        SecretError::RelayKeyMismatch {
            what: "signing secret for Tiquo connection 'main'".into()
        }
    );
    assert_eq!(err.code(), "relay_key_mismatch");
    let message = err.to_string();
    assert!(
        message.contains("sealed with a different relay key"),
        "{message}"
    );
    assert!(!message.contains("topsecret"), "{message}");
    assert!(
        replaced.is_set(Tiquo, "main").unwrap(),
        "a secret is stored, even if this key can't open it"
    );

    // Setting it again under the new key is the way out.
    replaced.set(Tiquo, "main", &secret("whsec_again")).unwrap();
    assert_eq!(
        get(&replaced, Tiquo, "main").as_deref(),
        Some("whsec_again")
    );
}

#[test]
fn a_sealed_secret_moved_to_another_connection_does_not_open() {
    let (_dir, store, sealed) = sealed_store(key(7));
    sealed.set(Tiquo, "main", &secret("whsec_tiquo")).unwrap();
    let row = store
        .reader()
        .unwrap()
        .sealed_secret("tiquo/main")
        .unwrap()
        .unwrap();
    let mut writer = store.writer().unwrap();
    writer.put_sealed_secret("zupy/main", &row).unwrap();
    writer.put_sealed_secret("tiquo/other", &row).unwrap();

    for (provider, connection) in [(Zupy, "main"), (Tiquo, "other")] {
        let err = sealed.get(provider, connection).unwrap_err();
        assert_eq!(
            err.code(),
            "relay_key_mismatch",
            "{provider:?}/{connection}"
        );
    }
    assert_eq!(get(&sealed, Tiquo, "main").as_deref(), Some("whsec_tiquo"));
}

#[test]
fn a_damaged_row_is_refused() {
    let (_dir, store, sealed) = sealed_store(key(7));
    sealed.set(Tiquo, "main", &secret("whsec_tiquo")).unwrap();
    let row = store
        .reader()
        .unwrap()
        .sealed_secret("tiquo/main")
        .unwrap()
        .unwrap();
    let mut writer = store.writer().unwrap();

    let mut flipped = row.clone();
    flipped.ciphertext[0] ^= 1;
    writer.put_sealed_secret("tiquo/main", &flipped).unwrap();
    assert_eq!(
        sealed.get(Tiquo, "main").unwrap_err().code(),
        "relay_key_mismatch"
    );

    let short_nonce = SealedRow {
        nonce: row.nonce[..12].to_vec(),
        ciphertext: row.ciphertext.clone(),
    };
    writer
        .put_sealed_secret("tiquo/main", &short_nonce)
        .unwrap();
    assert_eq!(
        sealed.get(Tiquo, "main").unwrap_err(),
        SecretError::Unreadable {
            what: "the signing secret for Tiquo connection 'main'".into()
        }
    );
}

#[test]
fn a_relay_keeps_no_device_token() {
    let (_dir, _store, sealed) = sealed_store(key(7));
    assert_eq!(sealed.relay_token().unwrap(), None);
    let err = sealed.set_relay_token(&secret("clt_abc")).unwrap_err();
    assert_eq!(err, SecretError::RelayKeepsNoToken);
    assert!(err.to_string().contains("doesn't pair with another relay"));
    sealed.delete_relay_token().unwrap();
}

#[test]
fn debug_shows_neither_key_nor_secrets() {
    let (_dir, _store, sealed) = sealed_store(key(0xAB));
    sealed
        .set(Tiquo, "main", &secret("whsec_topsecret"))
        .unwrap();
    let shown = format!("{sealed:?} {sealed:#?} {:?}", key(0xAB));
    assert!(!shown.to_lowercase().contains("abab"), "{shown}");
    assert!(!shown.contains("171, 171"), "{shown}");
    assert!(!shown.contains("topsecret"), "{shown}");
    assert!(shown.contains("RelayKey(<redacted>)"), "{shown}");
}

// The key.

const HEX_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";

#[test]
fn the_key_variable_is_used_when_set_and_no_file_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let (key, source) = RelayKey::load_or_create_with(dir.path(), Some(HEX_KEY)).unwrap();
    assert_eq!(source, KeySource::Environment);
    assert_eq!(source.to_string(), "environment");
    assert_eq!(hex::encode(key.0), HEX_KEY.to_lowercase());
    assert!(!dir.path().join(KEY_FILE).exists());

    let padded = format!(" {HEX_KEY}\n");
    let (key, _) = RelayKey::load_or_create_with(dir.path(), Some(&padded)).unwrap();
    assert_eq!(hex::encode(key.0), HEX_KEY.to_lowercase());
}

#[test]
fn the_key_variable_wins_over_the_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let (from_file, _) = RelayKey::load_or_create_with(dir.path(), None).unwrap();
    let (from_env, source) = RelayKey::load_or_create_with(dir.path(), Some(HEX_KEY)).unwrap();
    assert_eq!(source, KeySource::Environment);
    assert_ne!(from_env.0, from_file.0);
}

#[test]
fn a_bad_key_variable_is_refused_in_plain_words_without_repeating_it() {
    let dir = tempfile::tempdir().unwrap();
    let not_hex = "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    for value in [
        "",
        "   ",
        "0011",
        &HEX_KEY[..63],
        &format!("{HEX_KEY}00"),
        not_hex,
        "my relay password is hunter2",
    ] {
        let err = RelayKey::load_or_create_with(dir.path(), Some(value)).unwrap_err();
        assert!(matches!(err, KeyError::BadVariable), "{value:?}: {err:?}");
        let message = err.to_string();
        assert!(message.contains("CLIENTELE_RELAY_KEY"), "{message}");
        assert!(message.contains("64 hexadecimal characters"), "{message}");
        if !value.trim().is_empty() {
            assert!(!message.contains(value.trim()), "{message}");
        }
    }
    assert!(
        !dir.path().join(KEY_FILE).exists(),
        "a bad variable must not fall back to making a key file"
    );
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_key_file_is_created_once_private_and_then_reused() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let (created, source) = RelayKey::load_or_create_with(&data_dir, None).unwrap();
    let path = data_dir.join(KEY_FILE);
    assert_eq!(source, KeySource::Created(path.clone()));
    assert_eq!(source.to_string(), format!("{} (new)", path.display()));

    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.len(), 65);
    assert!(text.ends_with('\n'));
    assert_eq!(text.trim(), hex::encode(created.0));
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
    let leftovers: Vec<_> = fs::read_dir(&data_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, [KEY_FILE], "no temporary file is left behind");

    let (loaded, source) = RelayKey::load_or_create_with(&data_dir, None).unwrap();
    assert_eq!(source, KeySource::File(path.clone()));
    assert_eq!(source.to_string(), path.display().to_string());
    assert_eq!(loaded.0, created.0);

    // And secrets sealed under the first load open under the second.
    let store = Store::open_dir(&data_dir).unwrap();
    SealedSecrets::new(store.clone(), created)
        .set(Tiquo, "main", &secret("whsec_kept"))
        .unwrap();
    assert_eq!(
        get(&SealedSecrets::new(store, loaded), Tiquo, "main").as_deref(),
        Some("whsec_kept")
    );
}

#[test]
fn relays_starting_together_agree_on_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = Arc::new(dir.path().to_path_buf());
    let start = Arc::new(Barrier::new(4));
    let keys: Vec<[u8; KEY_BYTES]> = (0..4)
        .map(|_| {
            let data_dir = data_dir.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                RelayKey::load_or_create_with(&data_dir, None).unwrap().0.0
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|handle| handle.join().unwrap())
        .collect();
    assert!(keys.iter().all(|k| *k == keys[0]), "two keys were made");
    let on_disk = fs::read_to_string(data_dir.join(KEY_FILE)).unwrap();
    assert_eq!(on_disk.trim(), hex::encode(keys[0]));
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_is_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(KEY_FILE);
    fs::write(&path, format!("{HEX_KEY}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let (key, source) = RelayKey::load_or_create_with(dir.path(), None).unwrap();
    assert_eq!(source, KeySource::File(path.clone()));
    assert_eq!(hex::encode(key.0), HEX_KEY.to_lowercase());
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn a_damaged_key_file_is_refused_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(KEY_FILE);
    for damaged in [&b""[..], b"0011\n", &[0xff; 64], &HEX_KEY.as_bytes()[..60]] {
        fs::write(&path, damaged).unwrap();
        let err = RelayKey::load_or_create_with(dir.path(), None).unwrap_err();
        assert!(matches!(err, KeyError::BadFile { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("Restore it from your backup"), "{message}");
        assert_eq!(
            fs::read(&path).unwrap(),
            damaged,
            "the file must be left as it was"
        );
    }
}

#[test]
fn an_unreadable_key_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // A folder where the key file should be: reading it fails with something other than
    // "not found", which must not be taken as "make a new key".
    fs::create_dir(dir.path().join(KEY_FILE)).unwrap();
    let err = RelayKey::load_or_create_with(dir.path(), None).unwrap_err();
    assert!(matches!(err, KeyError::Read { .. }), "{err:?}");
    assert!(
        err.to_string().contains("couldn't read its key file"),
        "{err}"
    );
}
