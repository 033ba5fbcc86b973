//! Retention and the provider-delete choice, applied by the clock: the tests inject it (as an
//! argument to `apply_retention`, and as the engine's retention clock) instead of waiting months.

mod support;

use chrono::{DateTime, Duration, Months, TimeZone, Utc};
use clientele_core::hand::ErasureReason;
use clientele_core::{ConnectionSettings, Provider};
use clientele_engine::{Engine, Operations};
use clientele_secrets::MemoryStore;
use clientele_store::{NewConnection, NewDelivery, NewRejection, Store};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap()
}

fn tiquo(kind: &str, customer: &str, at: DateTime<Utc>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": format!("evt_{kind}_{customer}"),
        "type": format!("customer.{kind}"),
        "created": at.to_rfc3339(),
        "data": {"id": customer, "firstName": "Quiet", "lastName": customer,
                 "email": format!("{customer}@retention.example")}
    }))
    .unwrap()
}

/// A data folder with a Tiquo connection that forgets deleted customers 30 days on, and:
/// `old` (last heard of at t0), `recent` (five months on), `gone` (deleted a month on) and
/// `gone-late` (deleted five months and twenty days on); one refused request at t0.
fn seed(dir: &Path) -> Store {
    let store = Store::open_dir(dir).unwrap();
    let mut w = store.writer().unwrap();
    let c = w
        .add_connection(
            &NewConnection {
                provider: Provider::Tiquo,
                name: "main".into(),
                settings: ConnectionSettings {
                    forget_deleted_after_days: Some(30),
                    ..Default::default()
                },
                requires_secret: false,
            },
            t0(),
        )
        .unwrap()
        .id;
    let month = |n: u32| t0() + Months::new(n);
    let events = [
        ("created", "old", t0()),
        ("created", "recent", month(5)),
        ("created", "gone", t0()),
        ("deleted", "gone", month(1)),
        ("created", "gone-late", t0()),
        ("deleted", "gone-late", month(5) + Duration::days(20)),
    ];
    let deliveries: Vec<NewDelivery> = events
        .iter()
        .map(|(kind, customer, at)| NewDelivery {
            connection_id: c,
            received_at: *at,
            dedupe_key: format!("{kind}-{customer}"),
            headers: vec![],
            body: tiquo(kind, customer, *at),
            verification: "test".into(),
            is_test: false,
        })
        .collect();
    let refused = NewRejection {
        received_at: t0(),
        provider: "tiquo".into(),
        connection: "main".into(),
        code: "bad_signature".into(),
        reason: "The signature didn't match.".into(),
        remote_addr: None,
        body_bytes: Some(10),
    };
    w.ingest(&deliveries, &[refused]).unwrap();
    w.derive_all().unwrap();
    store
}

fn names(ops: &Operations) -> Vec<String> {
    let mut names: Vec<String> = ops
        .search_people("", 0, 100)
        .unwrap()
        .items
        .into_iter()
        .flat_map(|p| p.sources.into_iter().map(|s| s.customer_ref))
        .collect();
    names.sort();
    names
}

#[test]
fn the_policies_forget_what_the_clock_says_and_log_it_without_anyone_s_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = seed(dir.path());
    let ops = Operations::new(store, Arc::new(MemoryStore::default()), dir.path());
    assert_eq!(names(&ops), ["gone", "gone-late", "old", "recent"]);

    // Retention is off by default: only the provider-delete choice acts, 30 days after.
    let early = t0() + Months::new(1) + Duration::days(29);
    assert_eq!(ops.apply_retention(early).unwrap(), Default::default());
    let run = ops
        .apply_retention(t0() + Months::new(1) + Duration::days(31))
        .unwrap();
    assert_eq!((run.deleted_records, run.inactive_people), (1, 0));
    assert_eq!(names(&ops), ["gone-late", "old", "recent"]);

    let view = ops.set_retention(Some(6), Some(30)).unwrap();
    assert_eq!(
        (view.inactive_months, view.rejections_days),
        (Some(6), Some(30))
    );
    assert!(view.can_change && !view.held_by_relay);
    let run = ops
        .apply_retention(t0() + Months::new(6) + Duration::days(1))
        .unwrap();
    assert_eq!(run.inactive_people, 1, "{run:?}");
    assert_eq!(run.rejections, 1);
    assert_eq!(run.deleted_records, 0, "gone-late was deleted too recently");
    assert_eq!(names(&ops), ["gone-late", "recent"]);
    assert!(
        ops.search_people("old@retention.example", 0, 10)
            .unwrap()
            .items
            .is_empty()
    );

    let log = ops.erasure_log().unwrap();
    let reasons: Vec<(ErasureReason, i64, i64)> = log
        .iter()
        .map(|e| (e.reason, e.people, e.rejections))
        .collect();
    assert!(
        reasons.contains(&(ErasureReason::ProviderDeleted, 1, 0)),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&(ErasureReason::Retention, 1, 0)),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&(ErasureReason::Retention, 0, 1)),
        "{reasons:?}"
    );
    let text = serde_json::to_string(&log).unwrap();
    for personal in ["old", "gone", "retention.example", "Quiet"] {
        assert!(
            !text.contains(personal),
            "the erasure log names nobody: {text}"
        );
    }

    // Turning it off stops it.
    ops.set_retention(None, None).unwrap();
    let run = ops.apply_retention(t0() + Months::new(60)).unwrap();
    assert_eq!(run.inactive_people, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_desk_applies_the_policies_by_its_clock() {
    let dir = tempfile::tempdir().unwrap();
    let store = seed(dir.path());
    store
        .writer()
        .unwrap()
        .set_retention(&clientele_store::Retention {
            inactive_months: Some(3),
            ..Default::default()
        })
        .unwrap();
    drop(store);
    let later = t0() + Months::new(7);
    let engine = Engine::start(dir.path(), Arc::new(MemoryStore::default()))
        .unwrap()
        .with_retention_clock(Arc::new(move || later));
    let running = support::Running {
        api: engine.operations().clone(),
        addr: String::new(),
        engine,
        dir,
    };
    running
        .engine
        .listen("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    // Seven months on: `old` has been quiet for more than three, and both deleted customers were
    // deleted more than 30 days before; `recent` stays.
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let left = support::call(&running.api, names).await;
        if left == ["recent"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the desk didn't apply retention by its clock: {left:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
