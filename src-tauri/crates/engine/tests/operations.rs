//! The app's operations without a window, started as the app starts them: an [`Engine`] on a
//! temporary data folder, a real listener on 127.0.0.1:0, and the in-memory secret store (the
//! keychain has its own tests).

use chrono::{Duration, Utc};
use clientele_core::{Provider, Sensitive, providers};
use clientele_engine::ErrorCode;
use clientele_engine::ops::activity::{ActivityKind, ActivityQuery};
use clientele_engine::ops::connections::NewConnectionRequest;
use clientele_store::DeliveryStatus;

mod support;
use support::{call, start};

fn all_activity() -> ActivityQuery {
    ActivityQuery {
        kind: ActivityKind::All,
        provider: None,
        status: None,
        since_hours: None,
        limit: 100,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_test_receive_and_read_like_the_app_does() {
    let run = start().await;
    let api = &run.api;
    assert_eq!(api.providers().len(), Provider::ALL.len());

    let empty = call(api, |a| {
        a.add_connection(
            NewConnectionRequest {
                provider: "tiquo".into(),
                name: "main".into(),
                secret: Some("  ".into()),
            },
            Utc::now(),
        )
    })
    .await;
    assert_eq!(empty.unwrap_err().code, ErrorCode::SecretEmpty);
    let bad_name = call(api, |a| {
        a.add_connection(
            NewConnectionRequest {
                provider: "tiquo".into(),
                name: "main salon".into(),
                secret: Some("s".into()),
            },
            Utc::now(),
        )
    })
    .await;
    let bad_name = bad_name.unwrap_err();
    assert_eq!(bad_name.code, ErrorCode::InvalidInput);
    assert!(bad_name.message.contains("letters, digits"));

    let added = call(api, |a| {
        a.add_connection(
            NewConnectionRequest {
                provider: "tiquo".into(),
                name: "main".into(),
                secret: Some("tiquo-secret".into()),
            },
            Utc::now(),
        )
    })
    .await
    .unwrap();
    assert!(added.secret_set && added.requires_secret);
    assert_eq!(
        added.webhook_url,
        format!("http://{}/hooks/tiquo/main", run.addr)
    );
    assert!(
        !serde_json::to_string(&added)
            .unwrap()
            .contains("tiquo-secret"),
        "no view carries a secret"
    );

    // The test event takes the real path, shows in Activity, and makes no customer.
    let result = call(api, |a| a.send_test_event("tiquo", "main", Utc::now()))
        .await
        .unwrap();
    assert!(result.ok, "{}", result.message);
    run.engine.flush().await.unwrap();
    let activity = call(api, |a| a.activity(all_activity(), Utc::now()))
        .await
        .unwrap();
    assert_eq!(activity.len(), 1);
    assert_eq!(activity[0].status, Some(DeliveryStatus::Test));
    assert!(
        activity[0].summary.starts_with("Test message"),
        "{}",
        activity[0].summary
    );
    assert_eq!(
        call(api, |a| a.search_people("", 0, 50))
            .await
            .unwrap()
            .total,
        0
    );

    // Two real deliveries, one refused.
    let url = format!("http://{}/hooks/tiquo/main", run.addr);
    let now = Utc::now();
    let secret = Sensitive::new("tiquo-secret".to_string());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let send = move |body: Vec<u8>, secret: &Sensitive<String>| {
        let mut req = agent.post(&url);
        for (k, v) in providers::sign(Provider::Tiquo, secret, &body, now) {
            req = req.header(k.as_str(), v.as_str());
        }
        req.send(&body[..]).unwrap().status().as_u16()
    };
    let first = providers::sample_body(
        Provider::Tiquo,
        "cust_1",
        "ana@example.com",
        now - Duration::hours(2),
    );
    let second = providers::sample_body(
        Provider::Tiquo,
        "cust_1",
        "ana.new@example.com",
        now - Duration::hours(1),
    );
    let (a, b, c) = tokio::task::spawn_blocking(move || {
        (
            send(first, &secret),
            send(second, &secret),
            send(b"{}".to_vec(), &Sensitive::new("wrong".into())),
        )
    })
    .await
    .unwrap();
    assert_eq!((a, b, c), (200, 200, 401));
    run.engine.flush().await.unwrap();

    let refused = call(api, |a| {
        a.activity(
            ActivityQuery {
                kind: ActivityKind::Rejections,
                ..all_activity()
            },
            Utc::now(),
        )
    })
    .await
    .unwrap();
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("signature didn't match")
    );

    let page = call(api, |a| a.search_people("ana", 0, 50)).await.unwrap();
    assert_eq!(page.total, 1);
    let id = page.items[0].id;
    let person = call(api, move |a| a.person_detail(id)).await.unwrap();
    let times: Vec<&str> = person
        .timeline
        .iter()
        .map(|e| e.occurred_at.as_str())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    let email = person.profile.iter().find(|f| f.field == "email").unwrap();
    assert_eq!(
        (
            email.label.as_str(),
            email.value.as_str(),
            email.provider_name.as_str()
        ),
        ("Email", "ana.new@example.com", "Tiquo")
    );

    let health = call(api, |a| a.connections(Utc::now())).await.unwrap();
    assert_eq!(
        health[0].health.deliveries_today, 2,
        "test events don't count as messages"
    );
    assert_eq!(health[0].health.rejections_today, 1);

    let delivery = call(api, move |a| a.delivery_detail(activity[0].id))
        .await
        .unwrap();
    assert!(delivery.body_is_json && delivery.body_pretty.contains('\n'));
    assert!(
        delivery
            .headers
            .iter()
            .all(|(k, _)| !k.contains("signature"))
    );

    call(api, |a| a.remove_connection("tiquo", "main", Utc::now()))
        .await
        .unwrap();
    assert!(
        call(api, |a| a.connections(Utc::now()))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        call(api, |a| a.search_people("", 0, 50))
            .await
            .unwrap()
            .total,
        1,
        "data is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_preview_run_and_cancel_an_export_like_the_exports_screen() {
    use clientele_engine::ops::exports::{ExportColumnDraft, ExportDraft, FileKind, RowKind};
    let run = start().await;
    let api = &run.api;
    call(api, |a| {
        a.add_connection(
            NewConnectionRequest {
                provider: "tiquo".into(),
                name: "main".into(),
                secret: None,
            },
            Utc::now(),
        )
    })
    .await
    .unwrap();
    let url = format!("http://{}/hooks/tiquo/main", run.addr);
    let bodies: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            serde_json::to_vec(&serde_json::json!({
                "id": format!("evt_{i}"), "type": "customer.created", "created": "2024-01-20T14:30:00Z",
                "data": {"id": format!("cust_{i}"), "firstName": "=HYPERLINK(\"http://x\",\"click\")",
                         "lastName": format!("N{i}"), "email": format!("p{i}@example.com"),
                         "marketingConsent": i < 2}
            }))
            .unwrap()
        })
        .collect();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        for body in bodies {
            assert_eq!(
                agent.post(&url).send(&body[..]).unwrap().status().as_u16(),
                200
            );
        }
    })
    .await
    .unwrap();
    run.engine.flush().await.unwrap();

    let column = |header: &str, source: &str| ExportColumnDraft {
        header: header.into(),
        source: source.into(),
        trim: false,
        case: None,
        default: None,
        date_format: None,
        phone: None,
        join: None,
        yes_no: None,
    };
    let draft = ExportDraft {
        name: "mailing".into(),
        rows: RowKind::People,
        columns: vec![column("Email", "email"), column("First name", "first_name")],
        format: FileKind::Csv,
        preset: clientele_core::export::profile::Preset::Other,
        neutralize_formulas: true,
        incremental: false,
        time_zone: None,
        filters: Default::default(),
    };
    let sources = call(api, |a| a.export_sources(RowKind::People, Utc::now()))
        .await
        .unwrap();
    assert!(
        sources
            .iter()
            .any(|s| s.source == "email" && s.sample.is_some()),
        "samples shown"
    );
    let d = draft.clone();
    let preview = call(api, move |a| a.preview_export(&d, 50, Utc::now()))
        .await
        .unwrap();
    assert_eq!(preview.headers, vec!["Email", "First name"]);
    assert_eq!(preview.rows.len(), 3);
    assert!(
        preview.rows.iter().all(|r| r[1].starts_with("'=")),
        "formulas neutralized in the preview too: {:?}",
        preview.rows
    );
    assert_eq!(preview.matching, Some(3));

    // "Which customers": the choices, and how many match as they change.
    let choices = call(api, |a| a.export_filter_choices()).await.unwrap();
    assert_eq!(
        choices
            .connections
            .iter()
            .map(|c| (c.value.as_str(), c.label.as_str()))
            .collect::<Vec<_>>(),
        [("tiquo/main", "Tiquo – main")]
    );
    assert_eq!(choices.providers[0].label, "Tiquo");
    let mut said_yes = draft.clone();
    said_yes.filters.email_marketing = Some(true);
    let preview = call(api, move |a| a.preview_export(&said_yes, 1, Utc::now()))
        .await
        .unwrap();
    assert_eq!(
        (preview.rows.len(), preview.total, preview.matching),
        (1, Some(3), Some(2)),
        "two of three said yes"
    );

    let d = draft.clone();
    call(api, move |a| a.save_export_profile(&d, Utc::now()))
        .await
        .unwrap();
    assert_eq!(
        call(api, |a| a.export_profile("mailing")).await.unwrap(),
        draft
    );
    let out = run.dir.path().join("mailing.csv");
    let out2 = out.clone();
    let (result, progress) = call(api, move |a| {
        let mut seen = Vec::new();
        let r = a.run_export("mailing", &out2, Utc::now(), &mut |p| seen.push(p.written));
        (r, seen)
    })
    .await;
    let result = result.unwrap();
    assert_eq!((result.rows, result.outcome.as_str()), (3, "succeeded"));
    assert_eq!(progress.last(), Some(&3), "progress reaches the row count");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("Email,First name\n"), "{text}");
    assert_eq!(
        call(api, |a| a.export_history(Some("mailing")))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        call(api, |a| a.export_profiles()).await.unwrap()[0]
            .last_run
            .as_ref()
            .unwrap()
            .rows,
        3
    );
}

/// A Vagaro customer-updated delivery for customer `id`, straight into the store.
fn vagaro_customer(connection_id: i64, id: &str) -> clientele_store::NewDelivery {
    let body = serde_json::json!({
        "id": format!("evt-{id}"), "createdDate": "2024-03-15T09:00:00Z", "type": "customer",
        "action": "updated",
        "payload": {"customerId": id, "customerFirstName": "Jo", "customerLastName": id,
                    "email": "", "mobilePhone": "", "countryCode": "US", "businessIds": ["b1"]}
    });
    clientele_store::NewDelivery {
        connection_id,
        received_at: Utc::now(),
        dedupe_key: format!("evt-{id}"),
        headers: vec![],
        body: serde_json::to_vec(&body).unwrap(),
        verification: "test".into(),
        is_test: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_is_counted_up_to_a_thousand_and_says_when_more_match() {
    use clientele_engine::ops::people::SEARCH_COUNT_LIMIT;
    let run = start().await;
    let api = &run.api;
    // 1,001 customers whose last names start "Zed" ("Zed0000" … "Zed1000").
    call(api, |a| {
        let mut w = a.store().writer().unwrap();
        let c = w
            .add_connection(
                &clientele_store::NewConnection {
                    provider: Provider::Vagaro,
                    name: "main".into(),
                    settings: Default::default(),
                    requires_secret: false,
                },
                Utc::now(),
            )
            .unwrap()
            .id;
        let deliveries: Vec<_> = (0..=1000)
            .map(|i| vagaro_customer(c, &format!("Zed{i:04}")))
            .collect();
        w.ingest(&deliveries, &[]).unwrap();
        w.derive_all().unwrap();
    })
    .await;
    assert_eq!(SEARCH_COUNT_LIMIT, 1_000);
    let page = |q: &'static str| call(api, move |a| a.search_people(q, 0, 50));
    let zed = page("zed").await.unwrap();
    assert_eq!((zed.total, zed.more, zed.items.len()), (1_000, true, 50));
    let zed0 = page("zed0").await.unwrap();
    assert_eq!((zed0.total, zed0.more), (1_000, false), "exactly 1,000");
    let zed1 = page("zed1").await.unwrap();
    assert_eq!((zed1.total, zed1.more, zed1.items.len()), (1, false, 1));
    let everyone = page("").await.unwrap();
    assert_eq!((everyone.total, everyone.more), (1_001, false));
    // Past the count the pages still come: the list just doesn't offer them.
    let late = call(api, |a| a.search_people("zed", 1_000, 50))
        .await
        .unwrap();
    assert_eq!((late.items.len(), late.more), (1, true));
}

/// The window and the command line share one rule: a name that differs from an existing one only
/// by case or punctuation is taken (the two would share one environment variable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_differing_only_by_case_or_punctuation_is_taken() {
    let run = start().await;
    let api = &run.api;
    let add = |name: &'static str| {
        call(api, move |a| {
            a.add_connection(
                NewConnectionRequest {
                    provider: "tiquo".into(),
                    name: name.into(),
                    secret: Some("s3cret".into()),
                },
                Utc::now(),
            )
        })
    };
    add("main-shop").await.unwrap();
    for clash in ["main-shop", "Main_Shop", "MAIN-SHOP"] {
        let error = add(clash).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::ConnectionNameTaken, "{clash}");
        assert!(error.message.contains("'main-shop'"), "{}", error.message);
    }
    // Another provider may use the name.
    let vagaro = call(api, |a| {
        a.add_connection(
            NewConnectionRequest {
                provider: "vagaro".into(),
                name: "Main_Shop".into(),
                secret: Some("token".into()),
            },
            Utc::now(),
        )
    })
    .await;
    assert!(vagaro.is_ok(), "{vagaro:?}");
    let unknown = call(api, |a| {
        a.add_connection(
            NewConnectionRequest {
                provider: "stripe".into(),
                name: "x".into(),
                secret: None,
            },
            Utc::now(),
        )
    })
    .await
    .unwrap_err();
    assert_eq!(unknown.code, ErrorCode::UnknownProvider);
}

/// A request carrying a secret never prints it.
#[test]
fn a_new_connection_request_does_not_print_its_secret() {
    let request = NewConnectionRequest {
        provider: "tiquo".into(),
        name: "main".into(),
        secret: Some("whsec_do_not_print".into()),
    };
    let shown = format!("{request:?}");
    assert!(!shown.contains("whsec_do_not_print"), "{shown}");
    assert!(shown.contains("main"), "{shown}");
}

/// A new data folder takes the first start's choice of start at login; after that, nothing
/// overrides what a person chose in Settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_at_login_is_chosen_once_and_settings_win_after_that() {
    let running = start().await;
    let api = running.api.clone();
    call(&api, |api| {
        assert!(!api.prefs().unwrap().start_at_login, "off until chosen");
        assert!(api.choose_start_at_login_once(true).unwrap(), "recorded");
        assert!(api.prefs().unwrap().start_at_login);
        assert!(
            api.settings().unwrap().start_at_login,
            "Settings shows it on"
        );
        // A later start asks again: the first choice stands.
        assert!(!api.choose_start_at_login_once(false).unwrap());
        assert!(api.prefs().unwrap().start_at_login);

        // Turned off in Settings, it stays off on every later start.
        let update = clientele_engine::ops::settings::SettingsUpdate {
            port: 8787,
            allow_network: false,
            start_at_login: false,
            keep_in_tray: true,
        };
        api.save_settings(&update).unwrap();
        assert!(!api.choose_start_at_login_once(true).unwrap());
        assert!(!api.prefs().unwrap().start_at_login);
    })
    .await;
}

/// A data folder whose owner chose in Settings before any first-start choice keeps theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_choice_made_in_settings_first_is_never_replaced() {
    let running = start().await;
    let api = running.api.clone();
    call(&api, |api| {
        let update = clientele_engine::ops::settings::SettingsUpdate {
            port: 8787,
            allow_network: false,
            start_at_login: false,
            keep_in_tray: true,
        };
        api.save_settings(&update).unwrap();
        assert!(!api.choose_start_at_login_once(true).unwrap());
        assert!(!api.prefs().unwrap().start_at_login);
    })
    .await;
}
