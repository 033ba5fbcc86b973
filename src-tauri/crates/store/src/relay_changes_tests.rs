use super::*;
use crate::testing::{connect, delivery, temp_store};
use crate::{RETENTION_HELD_BY_RELAY, RETENTION_INACTIVE_MONTHS};
use clientele_core::hand::{Decision, ErasureReason, Forget, RecordRef, record_hash};
use clientele_core::relay_protocol::Policy;

fn record(r: &str) -> RecordRef {
    r.parse().unwrap()
}

fn change(uid: &str, what: HandChangeKind) -> HandChange {
    HandChange {
        uid: uid.into(),
        at: Utc::now(),
        by: "Front desk".into(),
        what,
    }
}

fn merge(uid: &str, a: &str, b: &str) -> HandChange {
    change(
        uid,
        HandChangeKind::Decide {
            decision: Decision::Merge {
                records: [record(a), record(b)],
            },
        },
    )
}

fn forget(uid: &str, records: &[&str], keep_forgetting: bool) -> HandChange {
    let salt = b"0123456789abcdef";
    change(
        uid,
        HandChangeKind::Forget {
            forget: Forget {
                salt: hex::encode(salt),
                records: records
                    .iter()
                    .map(|r| hex::encode(record_hash(salt, &record(r))))
                    .collect(),
                keep_forgetting,
                reason: ErasureReason::Request,
            },
        },
    )
}

#[test]
fn changes_are_kept_once_in_order_and_a_forget_takes_the_decisions_about_its_records_with_it() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let now = Utc::now();
    let first = w
        .accept_change(&merge("m1", "tiquo/main/1", "zupy/main/9"), "a", now)
        .unwrap();
    assert!(first.new);
    let again = w
        .accept_change(&merge("m1", "tiquo/main/1", "zupy/main/9"), "a", now)
        .unwrap();
    assert_eq!(
        (again.id, again.new),
        (first.id, false),
        "idempotent by uid"
    );
    w.accept_change(&merge("m2", "tiquo/main/2", "zupy/main/8"), "b", now)
        .unwrap();
    let undo = change(
        "u1",
        HandChangeKind::Undo {
            decision: "m1".into(),
        },
    );
    w.accept_change(&undo, "a", now).unwrap();

    let forgot = w
        .accept_change(&forget("f1", &["zupy/main/9"], true), "b", now)
        .unwrap();
    assert_eq!(forgot.decisions_deleted, 1);
    let kept: Vec<String> = store
        .reader()
        .unwrap()
        .changes_after(0, 100)
        .unwrap()
        .into_iter()
        .map(|(_, c)| c.uid)
        .collect();
    assert_eq!(kept, ["m2", "u1", "f1"], "the merge naming customer 9 went");
    let after_first = store.reader().unwrap().changes_after(first.id, 1).unwrap();
    assert_eq!(after_first.len(), 1);
    assert_eq!(after_first[0].1.uid, "m2");
    assert_eq!(
        store.reader().unwrap().newest_change_id().unwrap(),
        forgot.id
    );
    // What the relay keeps names no customer in plain words.
    let raw: Vec<String> = store
        .reader()
        .unwrap()
        .conn
        .prepare("SELECT change FROM relay_changes")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        !raw.iter()
            .any(|c| c.contains("main/9") || c.contains("\"9\""))
    );
    // Keep forgetting: the relay holds the suppression; stopping lifts it.
    let active = |store: &crate::Store| -> i64 {
        store
            .reader()
            .unwrap()
            .conn
            .query_row(
                "SELECT COUNT(*) FROM suppressions WHERE lifted_at IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(active(&store), 1);
    let stop = change(
        "s1",
        HandChangeKind::StopForgetting {
            forget: "f1".into(),
        },
    );
    w.accept_change(&stop, "b", now).unwrap();
    assert_eq!(active(&store), 0);

    let bad = change(
        "f2",
        HandChangeKind::Forget {
            forget: Forget {
                salt: "zz".into(),
                records: vec!["not hex".into()],
                keep_forgetting: false,
                reason: ErasureReason::Request,
            },
        },
    );
    assert!(matches!(
        w.accept_change(&bad, "b", now),
        Err(StoreError::Invalid(_))
    ));
}

#[test]
fn erased_deliveries_keep_their_row_lose_their_bytes_and_leave_the_feed() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let c = connect(&mut w, Provider::Tiquo, "main");
    let mut d1 = delivery(c, "evt_1", b"{\"email\":\"ann@example.com\"}");
    d1.headers = vec![("x-event".into(), "customer.created".into())];
    w.ingest(
        &[d1, delivery(c, "evt_2", b"{\"email\":\"bob@example.com\"}")],
        &[],
    )
    .unwrap();
    let r = store.reader().unwrap();
    let checked = r.deliveries_to_check(0, 10).unwrap();
    assert_eq!(checked.len(), 2);
    assert_eq!(checked[0].connection, "main");
    let first = checked[0].id;

    assert_eq!(w.erase_deliveries(&[first], Utc::now()).unwrap(), 1);
    assert_eq!(
        w.erase_deliveries(&[first], Utc::now()).unwrap(),
        0,
        "erasing twice changes nothing"
    );
    let (body, headers, key): (Vec<u8>, String, String) = r
        .conn
        .query_row(
            "SELECT body, headers, dedupe_key FROM deliveries WHERE id = ?1",
            [first],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert!(body.is_empty());
    assert_eq!(headers, "[]");
    assert!(key.starts_with('#') && !key.contains("evt_1"), "{key}");
    let feed = r.feed(0, 10).unwrap();
    assert_eq!(feed.len(), 1, "an erased delivery is no longer pulled");
    assert_eq!(feed[0].dedupe_key, "evt_2");
    assert_eq!(r.deliveries_to_check(0, 10).unwrap().len(), 1);
}

#[test]
fn a_desk_keeps_its_outbox_cursor_and_the_relay_s_policy() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let now = Utc::now();
    w.queue_hand_change(&merge("m1", "tiquo/main/1", "zupy/main/9"), now)
        .unwrap();
    w.queue_hand_change(&forget("f1", &["zupy/main/9"], false), now)
        .unwrap();
    let r = store.reader().unwrap();
    let waiting: Vec<String> = r
        .hand_changes_to_send()
        .unwrap()
        .into_iter()
        .map(|c| c.uid)
        .collect();
    assert_eq!(waiting, ["m1", "f1"]);
    w.hand_change_sent("m1").unwrap();
    assert_eq!(r.hand_changes_to_send().unwrap().len(), 1);

    // Not joined: no cursor to move.
    assert_eq!(r.changes_cursor().unwrap(), 0);
    w.set_relay_link(&crate::RelayLink {
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
    w.set_changes_cursor(7).unwrap();
    w.set_changes_cursor(3).unwrap();
    assert_eq!(r.changes_cursor().unwrap(), 7, "never backwards");

    let policy = Policy {
        retention_inactive_months: Some(24),
        retention_rejections_days: None,
    };
    w.store_retention_policy(&policy, true).unwrap();
    assert_eq!(r.retention_policy().unwrap(), policy);
    assert_eq!(
        r.setting(RETENTION_HELD_BY_RELAY).unwrap().as_deref(),
        Some("1")
    );
    assert_eq!(
        r.setting(RETENTION_INACTIVE_MONTHS).unwrap().as_deref(),
        Some("24")
    );
    w.store_retention_policy(&Policy::default(), true).unwrap();
    assert_eq!(r.retention_policy().unwrap(), Policy::default());
    w.release_retention_policy().unwrap();
    assert_eq!(r.setting(RETENTION_HELD_BY_RELAY).unwrap(), None);
}
