//! `KeychainStore` against a real Secret Service, never a mock and never the developer's own
//! keychain.
//!
//! Run it through `tests/tools/with-secret-service.sh` (which `make test` does): that starts a
//! private D-Bus session with gnome-keyring unlocked over a throw-away keyring directory and sets
//! `CLIENTELE_REQUIRE_KEYCHAIN=1`. Without that variable these tests print `SKIPPED: …` and why,
//! and return; with it, anything short of a working Secret Service is a failure. A session bus
//! alone is not enough to run: on a desktop it leads to the developer's real keychain.
//!
//! Each test uses its own keychain service name (`clientele-test-<pid>-<nanos>-<test>`), so runs
//! and parallel tests never see each other's items. Values are cross-checked with `secret-tool`
//! (libsecret, a separate process and client library), which proves they are really in the Secret
//! Service rather than in anything inside this process.
//!
//! The locked-keychain test locks its collection, which no API can undo without a password
//! prompt, so it re-runs itself in a private session of its own (nested
//! `with-secret-service.sh`) instead of locking the one the other tests share.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clientele_secrets::{
    KeychainStore, Provider, RELAY_TOKEN_ACCOUNT, SecretError, SecretStore, Sensitive,
};

const REQUIRE: &str = "CLIENTELE_REQUIRE_KEYCHAIN";

fn secret(value: &str) -> Sensitive<String> {
    Sensitive::new(value.to_string())
}

fn required() -> bool {
    std::env::var(REQUIRE).is_ok_and(|v| v == "1")
}

/// A store on a fresh service name of the private Secret Service, or `None` after printing why
/// the test is skipped. Panics instead of skipping when `CLIENTELE_REQUIRE_KEYCHAIN=1`.
fn private_keychain(test: &str) -> Option<KeychainStore> {
    let skip = |reason: &str| -> Option<KeychainStore> {
        assert!(!required(), "{REQUIRE}=1 but {reason}");
        // Straight to the stderr handle: libtest captures `eprintln!` of passing tests, and a
        // skip must be seen.
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED: keychain::{test}: {reason}. To run it: \
             tests/tools/with-secret-service.sh cargo test -p clientele-secrets (make test does this)"
        );
        None
    };
    if !cfg!(target_os = "linux") {
        return skip("the real-keychain tests use a private Secret Service, which needs Linux");
    }
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        return skip(
            "no D-Bus session (DBUS_SESSION_BUS_ADDRESS is not set), so no Secret Service is reachable",
        );
    }
    if !required() {
        return skip(&format!(
            "{REQUIRE} is not 1, so this D-Bus session's keychain may be your own, which tests never touch"
        ));
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let service = format!("clientele-test-{}-{nanos}-{test}", std::process::id());
    let store = KeychainStore::new(&service);
    match store.is_set(Provider::Tiquo, "probe") {
        Ok(false) => Some(store),
        Ok(true) => panic!("the brand-new keychain service {service} already holds a secret"),
        Err(err) => panic!(
            "{REQUIRE}=1 but the Secret Service did not answer: {err} (code {}). Run the tests \
             through tests/tools/with-secret-service.sh",
            err.code()
        ),
    }
}

/// Deletes what a test stored even when it fails half-way.
struct Cleanup<'a>(&'a KeychainStore, Vec<(Provider, &'static str)>);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for (provider, connection) in &self.1 {
            let _ = self.0.delete(*provider, connection);
        }
    }
}

/// Runs `secret-tool` (package libsecret-tools), feeding `stdin` if given.
fn secret_tool(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new("secret-tool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| {
            panic!("can't run secret-tool ({err}); install the Debian package libsecret-tools")
        });
    let mut input = child.stdin.take().expect("stdin was piped");
    if let Some(text) = stdin {
        input
            .write_all(text.as_bytes())
            .expect("write to secret-tool");
    }
    drop(input);
    child.wait_with_output().expect("secret-tool finished")
}

/// What libsecret, in another process, finds for this service and account.
fn lookup_elsewhere(store: &KeychainStore, account: &str) -> Option<String> {
    let out = secret_tool(
        &["lookup", "service", store.service(), "username", account],
        None,
    );
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn get(store: &KeychainStore, provider: Provider, connection: &str) -> Option<String> {
    store
        .get(provider, connection)
        .expect("get")
        .map(|s| s.expose().clone())
}

#[test]
fn set_get_replace_delete_round_trip_through_the_real_keychain() {
    let Some(store) = private_keychain("round_trip") else {
        return;
    };
    let _cleanup = Cleanup(&store, vec![(Provider::Tiquo, "main")]);
    let other_instance = KeychainStore::new(store.service());

    assert_eq!(get(&store, Provider::Tiquo, "main"), None);
    assert!(!store.is_set(Provider::Tiquo, "main").unwrap());

    store
        .set(Provider::Tiquo, "main", &secret("whsec_first"))
        .unwrap();
    assert_eq!(
        get(&store, Provider::Tiquo, "main").as_deref(),
        Some("whsec_first")
    );
    assert!(store.is_set(Provider::Tiquo, "main").unwrap());
    assert_eq!(
        get(&other_instance, Provider::Tiquo, "main").as_deref(),
        Some("whsec_first"),
        "a second store instance must read what the first saved"
    );
    assert_eq!(
        lookup_elsewhere(&store, "tiquo/main").as_deref(),
        Some("whsec_first"),
        "libsecret in another process must find the item under service/username"
    );

    store
        .set(Provider::Tiquo, "main", &secret("whsec_second"))
        .unwrap();
    assert_eq!(
        get(&other_instance, Provider::Tiquo, "main").as_deref(),
        Some("whsec_second")
    );
    assert_eq!(
        lookup_elsewhere(&store, "tiquo/main").as_deref(),
        Some("whsec_second")
    );

    store.delete(Provider::Tiquo, "main").unwrap();
    assert_eq!(get(&store, Provider::Tiquo, "main"), None);
    assert_eq!(get(&other_instance, Provider::Tiquo, "main"), None);
    assert!(!other_instance.is_set(Provider::Tiquo, "main").unwrap());
    assert_eq!(
        lookup_elsewhere(&store, "tiquo/main"),
        None,
        "delete must leave nothing in the Secret Service"
    );
    store
        .delete(Provider::Tiquo, "main")
        .expect("deleting a secret that is not there is fine");
}

#[test]
fn pasted_secrets_are_trimmed_and_blank_ones_refused() {
    let Some(store) = private_keychain("trim") else {
        return;
    };
    let _cleanup = Cleanup(&store, vec![(Provider::Vagaro, "salon")]);

    store
        .set(Provider::Vagaro, "salon", &secret("  token-123\r\n"))
        .unwrap();
    assert_eq!(
        get(&store, Provider::Vagaro, "salon").as_deref(),
        Some("token-123")
    );
    assert_eq!(
        lookup_elsewhere(&store, "vagaro/salon").as_deref(),
        Some("token-123")
    );

    let err = store
        .set(Provider::Vagaro, "salon", &secret(" \n"))
        .unwrap_err();
    assert_eq!(
        err,
        SecretError::Empty {
            provider: Provider::Vagaro
        }
    );
    assert_eq!(
        get(&store, Provider::Vagaro, "salon").as_deref(),
        Some("token-123"),
        "a refused secret must leave the saved one in place"
    );
}

#[test]
fn services_providers_and_connections_keep_separate_secrets() {
    let Some(store) = private_keychain("separate") else {
        return;
    };
    let Some(neighbour) = private_keychain("separate_neighbour") else {
        return;
    };
    let _cleanup = Cleanup(
        &store,
        vec![
            (Provider::Tiquo, "main"),
            (Provider::Zupy, "main"),
            (Provider::Tiquo, "bar"),
        ],
    );
    let _cleanup_neighbour = Cleanup(&neighbour, vec![(Provider::Tiquo, "main")]);

    store
        .set(Provider::Tiquo, "main", &secret("t-main"))
        .unwrap();
    store
        .set(Provider::Zupy, "main", &secret("z-main"))
        .unwrap();
    store.set(Provider::Tiquo, "bar", &secret("t-bar")).unwrap();
    neighbour
        .set(Provider::Tiquo, "main", &secret("other-service"))
        .unwrap();

    assert_eq!(
        get(&store, Provider::Tiquo, "main").as_deref(),
        Some("t-main")
    );
    assert_eq!(
        get(&store, Provider::Zupy, "main").as_deref(),
        Some("z-main")
    );
    assert_eq!(
        get(&store, Provider::Tiquo, "bar").as_deref(),
        Some("t-bar")
    );
    assert_eq!(
        get(&neighbour, Provider::Tiquo, "main").as_deref(),
        Some("other-service")
    );

    store.delete(Provider::Tiquo, "main").unwrap();
    assert_eq!(
        get(&store, Provider::Zupy, "main").as_deref(),
        Some("z-main")
    );
    assert_eq!(
        get(&neighbour, Provider::Tiquo, "main").as_deref(),
        Some("other-service")
    );
}

#[test]
fn duplicate_items_are_reported_and_replaced_by_the_next_set() {
    let Some(store) = private_keychain("duplicates") else {
        return;
    };
    let _cleanup = Cleanup(&store, vec![(Provider::Plain, "support")]);
    store
        .set(Provider::Plain, "support", &secret("ours"))
        .unwrap();
    // Another tool adds a second item for the same service and account (an extra attribute
    // makes it a separate item that still matches the search).
    let added = secret_tool(
        &[
            "store",
            "--label=added by hand",
            "service",
            store.service(),
            "username",
            "plain/support",
            "note",
            "duplicate",
        ],
        Some("theirs"),
    );
    assert!(added.status.success(), "secret-tool store: {added:?}");

    let err = store.get(Provider::Plain, "support").unwrap_err();
    assert_eq!(err.code(), "keychain_ambiguous");
    assert!(
        err.to_string().contains("Plain connection 'support'"),
        "{err}"
    );
    assert!(store.is_set(Provider::Plain, "support").unwrap());

    store
        .set(Provider::Plain, "support", &secret("fresh"))
        .unwrap();
    assert_eq!(
        get(&store, Provider::Plain, "support").as_deref(),
        Some("fresh")
    );

    secret_tool(
        &[
            "store",
            "--label=again",
            "service",
            store.service(),
            "username",
            "plain/support",
            "note",
            "again",
        ],
        Some("theirs"),
    );
    store.delete(Provider::Plain, "support").unwrap();
    assert_eq!(get(&store, Provider::Plain, "support"), None);
    assert_eq!(lookup_elsewhere(&store, "plain/support"), None);
}

/// Forgets the relay token a test saved even when it fails half-way.
struct ForgetToken<'a>(&'a KeychainStore);

impl Drop for ForgetToken<'_> {
    fn drop(&mut self) {
        let _ = self.0.delete_relay_token();
    }
}

#[test]
fn the_relay_device_token_round_trips_beside_connection_secrets() {
    let Some(store) = private_keychain("relay_token") else {
        return;
    };
    let _cleanup = Cleanup(&store, vec![(Provider::Tiquo, "main")]);
    let _forget = ForgetToken(&store);
    let other_instance = KeychainStore::new(store.service());

    assert!(store.relay_token().unwrap().is_none());
    store
        .delete_relay_token()
        .expect("forgetting a token that is not there is fine");

    store
        .set(Provider::Tiquo, "main", &secret("whsec_connection"))
        .unwrap();
    store.set_relay_token(&secret("  clt_first\n")).unwrap();
    assert_eq!(
        other_instance
            .relay_token()
            .unwrap()
            .map(|t| t.expose().clone())
            .as_deref(),
        Some("clt_first"),
        "saved trimmed, and readable by another store instance"
    );
    assert_eq!(
        lookup_elsewhere(&store, "relay:device-token").as_deref(),
        Some("clt_first"),
        "libsecret in another process must find the token under service/username"
    );
    assert_eq!(RELAY_TOKEN_ACCOUNT, "relay:device-token");

    store.set_relay_token(&secret("clt_second")).unwrap();
    assert_eq!(
        lookup_elsewhere(&store, RELAY_TOKEN_ACCOUNT).as_deref(),
        Some("clt_second")
    );
    assert_eq!(
        store.set_relay_token(&secret(" \n")).unwrap_err(),
        SecretError::EmptyToken
    );
    assert_eq!(
        lookup_elsewhere(&store, RELAY_TOKEN_ACCOUNT).as_deref(),
        Some("clt_second"),
        "a refused token must leave the saved one in place"
    );
    assert_eq!(
        get(&store, Provider::Tiquo, "main").as_deref(),
        Some("whsec_connection"),
        "the token must not replace a connection's secret"
    );

    store.delete_relay_token().unwrap();
    assert!(other_instance.relay_token().unwrap().is_none());
    assert_eq!(lookup_elsewhere(&store, RELAY_TOKEN_ACCOUNT), None);
    assert_eq!(
        get(&store, Provider::Tiquo, "main").as_deref(),
        Some("whsec_connection"),
        "forgetting the token must leave connection secrets alone"
    );
    store.delete_relay_token().unwrap();
}

/// Set in the child run of [`a_locked_keychain_says_which_fix_to_make`].
const LOCKED_CHILD: &str = "CLIENTELE_TEST_LOCKED_CHILD";

#[test]
fn a_locked_keychain_says_which_fix_to_make() {
    if std::env::var_os(LOCKED_CHILD).is_some() {
        return locked_child();
    }
    if private_keychain("locked").is_none() {
        return;
    }
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/tools/with-secret-service.sh");
    let mut child = Command::new(&script)
        .arg(std::env::current_exe().expect("test binary path"))
        .args([
            "--exact",
            "a_locked_keychain_says_which_fix_to_make",
            "--nocapture",
        ])
        .env(LOCKED_CHILD, "1")
        // With a display, gnome-keyring would show an unlock prompt and wait for a person;
        // without one the prompt fails at once, as "dismissed".
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("can't run {}: {err}", script.display()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("child status").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the locked-keychain child run took over 60 s (waiting for an unlock prompt?)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("child output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "locked-keychain child run failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

/// Inside its own private session: save a secret, lock the collection, and check every call
/// answers "locked" in plain words.
fn locked_child() {
    let store =
        private_keychain("locked_child").expect("the script sets CLIENTELE_REQUIRE_KEYCHAIN");
    store
        .set(Provider::Tiquo, "main", &secret("whsec_before_lock"))
        .unwrap();
    let lock = Command::new("dbus-send")
        .args([
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.secrets",
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service.Lock",
            "array:objpath:/org/freedesktop/secrets/aliases/default",
        ])
        .output()
        .expect("run dbus-send (Debian package dbus)");
    assert!(
        lock.status.success(),
        "locking the default collection: {lock:?}"
    );

    let get = store.get(Provider::Tiquo, "main").unwrap_err();
    let set = store
        .set(Provider::Tiquo, "main", &secret("whsec_after_lock"))
        .unwrap_err();
    let is_set = store.is_set(Provider::Tiquo, "main").unwrap_err();
    let delete = store.delete(Provider::Tiquo, "main").unwrap_err();
    for err in [get, set, is_set, delete] {
        assert_eq!(err, SecretError::Locked);
        assert_eq!(err.code(), "keychain_locked");
        assert!(err.to_string().contains("Unlock it"), "{err}");
    }
}
