use super::*;
use crate::IngestOutcome;
use crate::relay_link::{PulledUpTo, RelayLink};
use crate::testing::{connect, delivery, temp_store};
use chrono::Duration;

fn code(w: &mut Writer, hash: &[u8], name: &str, now: DateTime<Utc>) {
    w.add_pairing_code(hash, name, false, now, now + Duration::minutes(15))
        .unwrap();
}

#[test]
fn a_code_pairs_once_and_expires() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let now = Utc::now();
    code(&mut w, b"code-a", "front-desk", now);
    let device = w
        .claim_pairing_code(b"code-a", b"token-a", None, now)
        .unwrap()
        .unwrap();
    assert_eq!((device.name.as_str(), device.admin), ("front-desk", false));
    assert_eq!(
        w.claim_pairing_code(b"code-a", b"token-b", None, now)
            .unwrap(),
        Err(ClaimRefused::Used)
    );
    assert_eq!(
        w.claim_pairing_code(b"nope", b"token-b", None, now)
            .unwrap(),
        Err(ClaimRefused::Unknown)
    );
    code(&mut w, b"code-b", "back-office", now);
    assert_eq!(
        w.claim_pairing_code(b"code-b", b"token-b", None, now + Duration::minutes(15))
            .unwrap(),
        Err(ClaimRefused::Expired)
    );
    let reader = store.reader().unwrap();
    assert_eq!(
        reader.device_by_token(b"token-a").unwrap().unwrap().id,
        device.id
    );
    assert!(reader.device_by_token(b"token-b").unwrap().is_none());
}

#[test]
fn a_revoked_device_is_refused_and_its_name_can_pair_again() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let now = Utc::now();
    code(&mut w, b"c1", "desk", now);
    w.claim_pairing_code(b"c1", b"t1", None, now)
        .unwrap()
        .unwrap();
    assert!(
        w.add_pairing_code(b"c2", "desk", false, now, now).is_err(),
        "a second active device of the same name would make `revoke desk` ambiguous"
    );
    assert!(w.revoke_device("desk", now).unwrap());
    assert!(!w.revoke_device("desk", now).unwrap());
    assert!(
        store
            .reader()
            .unwrap()
            .device_by_token(b"t1")
            .unwrap()
            .is_none()
    );
    code(&mut w, b"c2", "desk", now);
    w.claim_pairing_code(b"c2", b"t2", None, now)
        .unwrap()
        .unwrap();
    let devices = store.reader().unwrap().devices().unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices.iter().filter(|d| d.revoked_at.is_none()).count(), 1);
}

#[test]
fn the_feed_is_in_id_order_and_counts_what_each_device_is_behind() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let now = Utc::now();
    let c = connect(&mut w, Provider::Zupy, "main");
    let batch: Vec<_> = (0..5)
        .map(|i| delivery(c, &format!("k{i}"), b"{}"))
        .collect();
    w.ingest(&batch, &[]).unwrap();
    code(&mut w, b"c", "desk", now);
    let device = w
        .claim_pairing_code(b"c", b"t", None, now)
        .unwrap()
        .unwrap();
    assert_eq!(
        store.reader().unwrap().device_behind(device.id).unwrap(),
        5,
        "a new device gets the whole history"
    );
    let reader = store.reader().unwrap();
    let page = reader.feed(0, 3).unwrap();
    let ids: Vec<i64> = page.iter().map(|d| d.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(page[0].connection, "main");
    assert_eq!(page[0].provider, Provider::Zupy);
    let rest = reader.feed(ids[2], 10).unwrap();
    assert_eq!(rest.len(), 2);
    w.acknowledge(device.id, ids[2]).unwrap();
    w.acknowledge(device.id, ids[0]).unwrap(); // never backwards
    assert_eq!(reader.devices().unwrap()[0].behind, 2);
}

#[test]
fn retention_keeps_what_a_device_still_needs_and_the_newest_id() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let now = Utc::now();
    let c = connect(&mut w, Provider::Zupy, "main");
    let batch: Vec<_> = (0..4)
        .map(|i| delivery(c, &format!("k{i}"), b"{}"))
        .collect();
    w.ingest(&batch, &[]).unwrap();
    let later = now + Duration::days(60);
    assert_eq!(
        w.delete_acknowledged(later).unwrap(),
        0,
        "with no device paired nobody has them yet"
    );
    code(&mut w, b"a", "a", now);
    code(&mut w, b"b", "b", now);
    let a = w
        .claim_pairing_code(b"a", b"ta", None, now)
        .unwrap()
        .unwrap();
    let b = w
        .claim_pairing_code(b"b", b"tb", None, now)
        .unwrap()
        .unwrap();
    let newest = store
        .reader()
        .unwrap()
        .newest_delivery_id()
        .unwrap()
        .unwrap();
    w.acknowledge(a.id, newest).unwrap();
    w.acknowledge(b.id, newest - 2).unwrap();
    assert_eq!(
        w.delete_acknowledged(later).unwrap(),
        2,
        "only what b has too"
    );
    w.acknowledge(b.id, newest).unwrap();
    assert_eq!(w.delete_acknowledged(later).unwrap(), 1);
    assert_eq!(
        store.reader().unwrap().newest_delivery_id().unwrap(),
        Some(newest),
        "the newest row stays, so its id is never handed out again below a desk's cursor"
    );
    w.ingest(&[delivery(c, "k-new", b"{}")], &[]).unwrap();
    assert_eq!(
        store.reader().unwrap().feed(newest, 10).unwrap().len(),
        1,
        "a delivery after retention is still after every cursor"
    );
}

#[test]
fn a_desk_stores_a_page_and_its_cursor_together_and_shares_a_local_connection() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let now = Utc::now();
    let local = connect(&mut w, Provider::Tiquo, "main");
    w.set_relay_link(&RelayLink {
        url: "https://relay.example.com".into(),
        device_name: "desk".into(),
        admin: false,
        ca_cert: None,
        public_url: "https://relay.example.com".into(),
        joined_at: now,
        cursor: "0".into(),
        last_pull_at: None,
        received: 0,
        rejections_cursor: 0,
    })
    .unwrap();
    let settings = ConnectionSettings::default();
    assert_eq!(
        w.relay_connection(Provider::Tiquo, "main", &settings, now)
            .unwrap(),
        local,
        "the same name on the relay is the same connection here: one dedupe key space"
    );
    let theirs = w
        .relay_connection(Provider::Plain, "support", &settings, now)
        .unwrap();
    let up_to = PulledUpTo {
        cursor: "7".into(),
        at: now,
    };
    let out = w
        .ingest_pulled(
            &[delivery(local, "evt", b"{}"), delivery(theirs, "th", b"{}")],
            &up_to,
        )
        .unwrap();
    assert!(
        out.iter()
            .all(|o| matches!(o, IngestOutcome::Stored { .. }))
    );
    let again = w
        .ingest_pulled(&[delivery(local, "evt", b"{}")], &up_to)
        .unwrap();
    assert!(matches!(again[0], IngestOutcome::Duplicate { .. }));
    let link = store.reader().unwrap().relay_link().unwrap().unwrap();
    assert_eq!((link.cursor.as_str(), link.received), ("7", 2));
    let connections = store.reader().unwrap().connections().unwrap();
    let plain = connections.iter().find(|c| c.id == theirs).unwrap();
    assert!(plain.via_relay && plain.requires_secret);
    assert!(w.clear_relay_link().unwrap());
    assert!(store.reader().unwrap().relay_link().unwrap().is_none());
}

#[test]
fn sealed_secrets_are_replaced_and_deleted() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let row = SealedRow {
        nonce: vec![1; 24],
        ciphertext: vec![2; 40],
    };
    w.put_sealed_secret("tiquo/main", &row).unwrap();
    let other = SealedRow {
        nonce: vec![3; 24],
        ciphertext: vec![4; 40],
    };
    w.put_sealed_secret("tiquo/main", &other).unwrap();
    let reader = store.reader().unwrap();
    assert_eq!(reader.sealed_secret("tiquo/main").unwrap(), Some(other));
    w.delete_sealed_secret("tiquo/main").unwrap();
    assert_eq!(reader.sealed_secret("tiquo/main").unwrap(), None);
}
