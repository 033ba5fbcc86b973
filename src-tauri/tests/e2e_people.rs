//! The Activity, Person and Settings screens as a receptionist meets them, in the real window
//! under Xvfb: every row says who it was about, technical text waits behind "Show technical
//! details", the profile reads name first with the date the customer joined, a number the phone
//! rules refuse says why it links nobody and can still be searched for, a Vagaro business gets a
//! name, and the country for phone numbers is set from Settings. Screenshots in
//! tests/artifacts/e2e/people/.

mod support;

use chrono::{Duration as ChronoDuration, Utc};
use clientele_core::Provider;
use fantoccini::Locator;
use serde_json::{Value, json};
use support::{App, iso};

const VAGARO_TOKEN: &str = "vagaro-e2e-verification-token-51c2";
const TIQUO_SECRET: &str = "tiquo-e2e-people-secret-9d0e";
const BUSINESS: &str = "U2FsdGVkX18zUptown";

fn vagaro(event: &str, at: chrono::DateTime<Utc>, payload: Value) -> Vec<u8> {
    let mut p = json!({"customerId": "V1", "customerFirstName": "Ana", "customerLastName": "Silva",
        "email": "ana@example.com", "mobilePhone": "+447700900123", "countryCode": "GB",
        "city": "Leeds", "createdDate": "2021-02-01T10:00:00Z", "businessIds": [BUSINESS]});
    for (k, v) in payload.as_object().unwrap() {
        p[k] = v.clone();
    }
    serde_json::to_vec(
        &json!({"id": event, "createdDate": iso(at), "type": "customer",
        "action": "updated", "payload": p}),
    )
    .unwrap()
}

/// The `data-field` of each profile field, in screen order.
async fn profile_order(app: &App) -> Vec<String> {
    let order = app
        .client
        .execute(
            "return [...document.querySelectorAll('[data-testid=\"profile-field\"]')]\
             .map(e => e.dataset.field)",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(order).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receptionist_sees_who_each_message_was_about_and_reads_the_customer() {
    if !support::can_run("a_receptionist_sees_who_each_message_was_about_and_reads_the_customer") {
        return;
    }
    let app = App::start("people").await;
    app.connect_provider("vagaro", "main", VAGARO_TOKEN).await;
    app.connect_provider("tiquo", "main", TIQUO_SECRET).await;

    let now = Utc::now();
    // Vagaro has known Ana since 2021; Tiquo's record of her is from 2023 and arrives later.
    app.send(
        Provider::Vagaro,
        VAGARO_TOKEN,
        &vagaro("v1", now - ChronoDuration::minutes(10), json!({})),
    );
    let tiquo = serde_json::to_vec(&json!({
        "id": "evt_people_1", "type": "customer.created", "created": iso(now - ChronoDuration::minutes(5)),
        "data": {"id": "cust_ana", "firstName": "Ana", "lastName": "Silva", "email": "ana@example.com",
                 "createdAt": "2023-07-10T08:50:00Z"}
    }))
    .unwrap();
    app.send(Provider::Tiquo, TIQUO_SECRET, &tiquo);
    // A message cut short on the way: kept, and said so in plain words.
    app.send(
        Provider::Vagaro,
        VAGARO_TOKEN,
        b"{\"id\": \"v-broken\", \"type\": ",
    );

    // Activity: each row about Ana names her; the damaged one says so without the parser's words.
    app.click("nav-activity").await;
    let page = app
        .wait_for_text("The message was damaged or incomplete", support::WAIT)
        .await;
    assert!(!page.contains("EOF"), "no parser text on the list: {page}");
    assert!(!page.contains("not valid JSON"), "{page}");
    let rows: Vec<String> = serde_json::from_value(
        app.client
            .execute(
                "return [...document.querySelectorAll('[data-testid=\"activity-row\"]')]\
                 .map(e => e.textContent.replace(/\\s+/g, ' '))",
                vec![],
            )
            .await
            .unwrap(),
    )
    .unwrap();
    let named: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].contains("Ana Silva"))
        .collect();
    assert_eq!(named.len(), 2, "both of Ana's messages name her: {rows:?}");
    let vagaro_row = *named
        .iter()
        .find(|&&i| rows[i].contains("Vagaro"))
        .unwrap_or_else(|| panic!("Ana's Vagaro row: {rows:?}"));
    app.shot("01-activity-names").await;

    // The detail: a link to her page; the raw message only behind "Show technical details".
    app.find_all("activity-row").await[vagaro_row]
        .click()
        .await
        .unwrap();
    let link = app.find("delivery-person-link").await;
    assert_eq!(link.text().await.unwrap(), "Ana Silva");
    app.open_technical_details().await;
    assert!(app.is_shown("copy-details").await);
    app.shot("02-delivery-technical").await;
    link.click().await.unwrap();

    // Her page: name, email and phone first; the date she joined is the earliest; the drama-range
    // number says why it links nobody.
    app.wait_for_text("Customer since", support::WAIT).await;
    let order = profile_order(&app).await;
    assert_eq!(
        order[..5],
        ["full_name", "first_name", "last_name", "email", "phone"],
        "{order:?}"
    );
    assert!(
        order.iter().position(|f| f == "city") < order.iter().position(|f| f == "created_at"),
        "{order:?}"
    );
    let since = app
        .client
        .execute(
            "return document.querySelector('[data-field=\"created_at\"]').textContent",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        since.as_str().unwrap().contains("2021"),
        "joined with her first record: {since}"
    );
    assert!(
        app.text_of("phone-link-note")
            .await
            .contains("isn't a valid United Kingdom number")
    );
    app.shot("03-person").await;

    // Naming the business where its number appears; the timeline then says the name.
    app.click("name-business").await;
    app.find("business-name-input")
        .await
        .send_keys("Salon Uptown")
        .await
        .unwrap();
    app.click("save-business-name").await;
    app.wait_for_text("Rename", support::WAIT).await;
    assert!(app.text_of("business-row").await.contains("Salon Uptown"));
    app.shot("04-person-business").await;
    app.send(
        Provider::Vagaro,
        VAGARO_TOKEN,
        &vagaro("v2", now, json!({"businessIds": []})),
    );
    app.wait_for_text("Removed from business Salon Uptown", support::WAIT)
        .await;
    let _ = app
        .client
        .execute(
            "document.querySelector('.screen-body').scrollTop = 0; return true",
            vec![],
        )
        .await;
    app.shot("05-person-timeline").await;

    // The number as the profile shows it finds her, though it links nobody.
    app.click("back-to-customers").await;
    let search = app.find("customer-search").await;
    search.send_keys("+44 7700 900123").await.unwrap();
    app.wait_for_text("1 match", support::WAIT).await;
    assert!(app.text_of("customer-row").await.contains("Ana Silva"));

    // Settings: the country for phone numbers, by name, re-read with visible progress.
    app.click("nav-settings").await;
    app.find("default-country")
        .await
        .find(Locator::Css("option[value=\"GB\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    app.click("save-default-country").await;
    let done = app.find("reread-result").await.text().await.unwrap();
    assert!(done.starts_with("Done."), "{done}");
    let names = app.text_of("business-names").await;
    assert!(names.contains(BUSINESS), "{names}");
    // The screen's own scrolling area, as a mouse wheel would (see e2e_relay's scroll_to).
    let _ = app
        .client
        .execute(
            "const e = document.querySelector('[data-testid=\"customers-settings\"]'); \
             const area = e.closest('.screen-body'); \
             area.scrollTop += e.getBoundingClientRect().top - area.getBoundingClientRect().top - 12; \
             return true",
            vec![],
        )
        .await;
    app.shot("06-settings-customers").await;

    app.stop().await;
}
