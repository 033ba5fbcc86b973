//! The Activity, Person and Settings screens' operations as a receptionist meets them, on an
//! [`Engine`] with a real listener: messages name their customer, technical text stays behind
//! "Show technical details", the profile reads name-first, Vagaro's businesses carry the names
//! staff gave them, and changing the default country re-reads earlier numbers while the app
//! keeps receiving.

use chrono::Utc;
use clientele_engine::ops::activity::{ActivityItem, ActivityKind, ActivityQuery};
use clientele_engine::ops::connections::NewConnectionRequest;
use clientele_engine::ops::people::{FieldGroup, PhoneLink};
use clientele_engine::{ErrorCode, Operations};
use serde_json::{Value, json};
use std::sync::Arc;

mod support;
use support::{Running, call};

/// An engine listening on 127.0.0.1:0 with a Vagaro connection "main" that needs no secret.
async fn start() -> Running {
    let run = support::start().await;
    call(&run.api, |a| {
        a.add_connection(
            NewConnectionRequest {
                provider: "vagaro".into(),
                name: "main".into(),
                secret: None,
            },
            Utc::now(),
        )
    })
    .await
    .unwrap();
    run
}

/// Posts `body` to the Vagaro connection and waits until it is stored and read.
async fn post(run: &Running, body: Vec<u8>) {
    let url = format!("http://{}/hooks/vagaro/main", run.addr);
    let status = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        agent.post(&url).send(&body[..]).unwrap().status().as_u16()
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    run.engine.flush().await.unwrap();
}

fn vagaro(event: &str, at: &str, customer: &str, payload: Value) -> Vec<u8> {
    let mut p = json!({"customerId": customer});
    for (k, v) in payload.as_object().unwrap() {
        p[k] = v.clone();
    }
    serde_json::to_vec(&json!({"id": event, "createdDate": at, "type": "customer",
        "action": "updated", "payload": p}))
    .unwrap()
}

async fn activity(api: &Arc<Operations>) -> Vec<ActivityItem> {
    call(api, |a| {
        a.activity(
            ActivityQuery {
                kind: ActivityKind::All,
                provider: None,
                status: None,
                since_hours: None,
                limit: 100,
            },
            Utc::now(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_name_their_customer_and_keep_technical_text_out_of_the_list() {
    let run = start().await;
    let api = &run.api;
    post(
        &run,
        vagaro(
            "e1",
            "2024-03-15T09:00:00Z",
            "V1",
            json!({"customerFirstName": "Ana", "customerLastName": "Silva",
                   "email": "ana@example.com", "mobilePhone": "+447700900123",
                   "countryCode": "GB", "city": "Leeds", "createdDate": "2023-07-10T08:50:00Z",
                   "businessIds": ["U2FsdGVkX18zUptown"]}),
        ),
    )
    .await;
    post(&run, b"{\"id\": \"e2\", \"type\": ".to_vec()).await;

    let rows = activity(api).await;
    let broken = &rows[0];
    assert!(
        broken
            .summary
            .starts_with("The message was damaged or incomplete"),
        "{}",
        broken.summary
    );
    assert!(!broken.summary.contains("line 1"), "{}", broken.summary);
    assert!(broken.technical.as_deref().unwrap().contains("EOF"));
    assert_eq!(broken.person_name, None, "no customer could be read");
    let ana_row = &rows[1];
    assert_eq!(ana_row.person_name.as_deref(), Some("Ana Silva"));
    let person = ana_row.person_id.expect("a link to her page");

    let detail = call(api, {
        let id = ana_row.id;
        move |a| a.delivery_detail(id)
    })
    .await
    .unwrap();
    assert_eq!(detail.people.len(), 1);
    assert_eq!(
        (detail.people[0].id, detail.people[0].name.as_str()),
        (person, "Ana Silva")
    );
    let broken_detail = call(api, {
        let id = broken.id;
        move |a| a.delivery_detail(id)
    })
    .await
    .unwrap();
    assert_eq!(
        broken_detail.error_plain.as_deref(),
        Some("The message was damaged or incomplete")
    );

    // The profile: name, email and phone first, then the rest in groups, in sentence case.
    let detail = call(api, move |a| a.person_detail(person)).await.unwrap();
    let order: Vec<(&str, FieldGroup)> = detail
        .profile
        .iter()
        .map(|f| (f.field.as_str(), f.group))
        .collect();
    assert_eq!(
        order,
        vec![
            ("full_name", FieldGroup::Main),
            ("first_name", FieldGroup::Main),
            ("last_name", FieldGroup::Main),
            ("email", FieldGroup::Main),
            ("phone", FieldGroup::Main),
            ("city", FieldGroup::Address),
            ("country_code", FieldGroup::Address),
            ("created_at", FieldGroup::Dates),
        ]
    );
    let labels: Vec<&str> = detail.profile.iter().map(|f| f.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "Full name",
            "First name",
            "Last name",
            "Email",
            "Phone",
            "City",
            "Country code",
            "Customer since"
        ]
    );
    // Ofcom's drama range: shown, searchable, and said why it links nobody.
    let phone = detail.profile.iter().find(|f| f.field == "phone").unwrap();
    assert_eq!(
        phone.phone_link,
        Some(PhoneLink::Invalid {
            country: Some("GB".into())
        })
    );
    let found = call(api, |a| a.search_people("+447700900123", 0, 50))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(detail.businesses.len(), 1);
    assert_eq!(detail.businesses[0].name, None);

    // Staff name the business; every sentence that shows the id shows the name.
    call(api, |a| {
        a.name_business("vagaro", "U2FsdGVkX18zUptown", "Salon Uptown")
    })
    .await
    .unwrap();
    post(
        &run,
        vagaro(
            "e3",
            "2024-03-16T09:00:00Z",
            "V1",
            json!({"customerFirstName": "Ana", "customerLastName": "Silva",
                   "email": "ana@example.com", "businessIds": []}),
        ),
    )
    .await;
    let detail = call(api, move |a| a.person_detail(person)).await.unwrap();
    assert!(
        detail
            .timeline
            .iter()
            .any(|e| e.summary.contains("Removed from business Salon Uptown")),
        "{:?}",
        detail.timeline
    );
    let rows = activity(api).await;
    assert!(
        rows[0].summary.contains("Salon Uptown"),
        "{}",
        rows[0].summary
    );
    let listed = call(api, |a| a.businesses("vagaro")).await.unwrap();
    assert_eq!(listed[0].name.as_deref(), Some("Salon Uptown"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_default_country_rereads_earlier_numbers_while_receiving() {
    let run = start().await;
    let api = &run.api;
    for (event, customer) in [("e1", "A"), ("e2", "B")] {
        post(
            &run,
            vagaro(
                event,
                "2024-03-15T09:00:00Z",
                customer,
                json!({"customerFirstName": customer, "mobilePhone": "07911 123456"}),
            ),
        )
        .await;
    }
    let people = |api: &Arc<Operations>| {
        let api = api.clone();
        async move {
            call(&api, |a| a.search_people("", 0, 50))
                .await
                .unwrap()
                .total
        }
    };
    assert_eq!(people(api).await, 2, "no country: the number links nobody");
    let settings = call(api, |a| a.phone_settings()).await.unwrap();
    assert_eq!(settings.default_country, None);
    assert!(
        settings
            .countries
            .iter()
            .any(|c| c.code == "GB" && c.calling_code == 44)
    );
    let person = call(api, |a| a.search_people("07911", 0, 50))
        .await
        .unwrap()
        .items[0]
        .id;
    let phone = call(api, move |a| a.person_detail(person)).await.unwrap();
    let phone = phone.profile.iter().find(|f| f.field == "phone").unwrap();
    assert_eq!(phone.phone_link, Some(PhoneLink::NoCountry));

    let wrong = call(api, |a| a.set_default_country("Narnia", &mut |_| {})).await;
    assert_eq!(wrong.unwrap_err().code, ErrorCode::InvalidInput);

    let (summary, progress) = call(api, |a| {
        let mut seen = Vec::new();
        let summary = a.set_default_country("gb", &mut |p| seen.push(p));
        (summary, seen)
    })
    .await;
    let summary = summary.unwrap();
    assert_eq!(
        (summary.default_country.as_str(), summary.records),
        ("GB", 2)
    );
    assert!(!summary.people_changed.is_empty());
    let last = progress.last().unwrap();
    assert!(
        last.finished && last.done == 2 && last.total == 2,
        "{progress:?}"
    );
    assert_eq!(people(api).await, 1, "linked by the number read in the UK");

    // The listener's own writer reads the new country too.
    post(
        &run,
        vagaro(
            "e3",
            "2024-03-15T10:00:00Z",
            "C",
            json!({"customerFirstName": "C", "mobilePhone": "07911 123456"}),
        ),
    )
    .await;
    assert_eq!(
        people(api).await,
        1,
        "a new record with the number joins them"
    );
    let settings = call(api, |a| a.phone_settings()).await.unwrap();
    assert_eq!(settings.default_country.as_deref(), Some("GB"));
    assert!(!settings.rereading);
}
