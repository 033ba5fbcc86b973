use super::super::tests::*;
use super::*;
use serde_json::json;

const CHANGED: &str = include_str!("../../../tests/fixtures/resdiary-customer-changed.json");
const P: Provider = Provider::Resdiary;

fn with_changes(changes: Value) -> Vec<u8> {
    let mut body: Value = serde_json::from_str(CHANGED).expect("fixture");
    body["Changes"] = changes;
    serde_json::to_vec(&body).expect("json")
}

#[test]
fn signature_checks() {
    let ok = verify_signed(P, CHANGED.as_bytes()).expect("signed");
    assert!(
        ok.dedupe_key.starts_with("sha256:"),
        "no event id: body hash"
    );
    assert_common_refusals(P, CHANGED.as_bytes());
}

#[test]
fn signature_needs_its_prefix_and_accepts_upper_case_hex() {
    let body = CHANGED.as_bytes();
    let sig = hex::encode(hmac_sha1(SECRET.as_bytes(), &[body]));
    let h = headers(&[("X-ResDiary-Signature", &sig)]);
    assert!(matches!(
        verify_with(P, Some(SECRET), &h, body, now()),
        Err(Rejection::MalformedSignature(_))
    ));
    let h = headers(&[(
        "X-ResDiary-Signature",
        &format!("sha1={}", sig.to_uppercase()),
    )]);
    assert!(verify_with(P, Some(SECRET), &h, body, now()).is_ok());
    // No replay window: a year-old delivery still verifies (dedupe protects instead).
    let later = now() + chrono::Duration::days(365);
    assert!(verify_with(P, Some(SECRET), &h, body, later).is_ok());
}

#[test]
fn the_sample_reads_as_a_mixed_change() {
    let ev = only_event(P, CHANGED.as_bytes());
    assert_eq!(ev.customer_ref, "862");
    assert_eq!(ev.kind, EventKind::Updated);
    assert_eq!(ev.event_type, "CustomerChanged");
    assert_eq!(ev.occurred_at, utc("2018-11-16T10:46:20.7741026Z"));
    assert_eq!(ev.fields["phone"], json!("3"), "free text kept as sent");
    assert_eq!(ev.fields["first_name"], json!("Aardvark"));
    assert_eq!(ev.fields["last_name"], json!("Anderson"));
    assert_eq!(ev.fields["full_name"], json!("Aardvark Anderson"));
    assert_eq!(ev.fields["title"], Value::Null, "empty string is null");
    assert_eq!(ev.fields["company"], json!("Animalania"));
    assert_eq!(ev.fields["email"], json!("aardvark.anderson@example.com"));
    assert_eq!(ev.fields["resdiary.RelatedProviderId"], json!(1044));
    assert_eq!(ev.fields["resdiary.ReceiveGroupSmsMarketing"], json!(true));
    assert_eq!(
        ev.fields["resdiary.GroupSmsMarketingOptInDateTime"],
        json!("2018-11-12T10:15:00")
    );
    assert_eq!(ev.fields["email_marketing_opt_in"], json!(false));
    assert_eq!(ev.fields["sms_marketing_opt_in"], json!(true));
    assert!(!ev.fields.contains_key("resdiary.Id"));
    assert_eq!(
        ev.changes.clone().expect("ResDiary lists its changes"),
        vec![
            change("phone", json!("2"), json!("3")),
            change(
                "resdiary.ReceiveGroupEmailMarketing",
                json!(true),
                json!(false)
            ),
            change(
                "resdiary.GroupEmailMarketingOptInText",
                json!("Would you like to receive news and offers from Laharna by Email"),
                Value::Null
            ),
            change(
                "resdiary.GroupEmailMarketingOptInDateTime",
                json!("2018-11-12T09:31:00.0000000"),
                Value::Null
            ),
            change("email_marketing_opt_in", json!(true), json!(false)),
        ]
    );
    assert!(ev.details["inferred"].as_str().is_some());
    assert!(
        ev.details.get("time_note").is_none(),
        "the sample's time has a Z"
    );
}

#[test]
fn consent_only_and_contact_only_deliveries() {
    let consent = with_changes(json!([
        {"ChangeType": "CustomerGroupEmailMarketingOptinChanged", "OldValue": true, "NewValue": false}
    ]));
    let ev = only_event(P, &consent);
    assert_eq!(ev.kind, EventKind::ConsentChanged);
    assert_eq!(ev.event_type, "CustomerMarketingOptInsChanged");

    let contact = with_changes(json!([
        {"ChangeType": "CustomerEmailChanged", "OldValue": "old@example.com", "NewValue": "aardvark.anderson@example.com"},
        {"ChangeType": "CustomerSmsChanged", "OldValue": "", "NewValue": "3"}
    ]));
    let ev = only_event(P, &contact);
    assert_eq!(ev.kind, EventKind::Updated);
    assert_eq!(ev.event_type, "CustomerContactDetailsChanged");
    assert_eq!(
        ev.changes,
        Some(vec![
            change(
                "email",
                json!("old@example.com"),
                json!("aardvark.anderson@example.com")
            ),
            change("phone", Value::Null, json!("3")),
        ])
    );
}

#[test]
fn restaurant_opt_in_keeps_the_canonical_opt_in_when_the_group_one_stays() {
    // Restaurant SMS off while group SMS stays on: still reachable by SMS.
    let body = with_changes(json!([
        {"ChangeType": "CustomerRestaurantSmsMarketingOptinChanged", "OldValue": true, "NewValue": false}
    ]));
    let ev = only_event(P, &body);
    assert_eq!(
        ev.changes,
        Some(vec![change(
            "resdiary.ReceiveRestaurantSmsMarketing",
            json!(true),
            json!(false)
        )])
    );
}

#[test]
fn unknown_change_types_are_kept_verbatim() {
    let body = with_changes(json!([
        {"ChangeType": "CustomerFooChanged", "OldValue": {"a": 1}, "NewValue": 7},
        {"ChangeType": "CustomerBirthdayDate", "OldValue": null, "NewValue": "1990-01-01"}
    ]));
    let ev = only_event(P, &body);
    assert_eq!(ev.kind, EventKind::Updated);
    assert_eq!(
        ev.changes,
        Some(vec![
            change("resdiary.CustomerFooChanged", json!({"a": 1}), json!(7)),
            change(
                "resdiary.CustomerBirthdayDate",
                Value::Null,
                json!("1990-01-01")
            ),
        ])
    );
}

#[test]
fn no_changes_reads_as_created_and_says_so() {
    let mut body: Value = serde_json::from_str(CHANGED).expect("fixture");
    body["Changes"] = json!([]);
    body["ChangeDateTime"] = json!("2018-11-16T10:46:20.7741026");
    let ev = only_event(P, body.to_string().as_bytes());
    assert_eq!(ev.kind, EventKind::Created);
    assert_eq!(ev.event_type, "CustomerCreated");
    assert_eq!(ev.changes, None);
    assert_eq!(ev.occurred_at, utc("2018-11-16T10:46:20.7741026Z"));
    assert!(
        ev.details["inferred"]
            .as_str()
            .is_some_and(|s| s.contains("no changes"))
    );
    assert!(ev.details["time_note"].as_str().is_some());
}

#[test]
fn named_lifecycle_changes_are_believed() {
    let body = with_changes(
        json!([{"ChangeType": "CustomerDeleted", "OldValue": null, "NewValue": null}]),
    );
    let ev = only_event(P, &body);
    assert_eq!(ev.kind, EventKind::Deleted);
    assert_eq!(
        ev.fields["deleted_at"],
        json!("2018-11-16T10:46:20.774102600Z")
    );
}

#[test]
fn missing_parts_are_parse_errors() {
    let mut body: Value = serde_json::from_str(CHANGED).expect("fixture");
    body["Customer"]
        .as_object_mut()
        .expect("customer")
        .remove("Id");
    assert_eq!(
        parse_body(P, body.to_string().as_bytes()),
        Err(ParseError::Missing("customer id (Customer.Id)"))
    );
    let mut body: Value = serde_json::from_str(CHANGED).expect("fixture");
    body.as_object_mut().expect("root").remove("ChangeDateTime");
    assert_eq!(
        parse_body(P, body.to_string().as_bytes()),
        Err(ParseError::Missing("change time (ChangeDateTime)"))
    );
    assert!(matches!(
        parse_body(P, &with_changes(json!({"ChangeType": "x"}))),
        Err(ParseError::Invalid {
            field: "Changes",
            ..
        })
    ));
    assert!(matches!(
        parse_body(P, &with_changes(json!([{"OldValue": 1}]))),
        Err(ParseError::Missing(_))
    ));
}

#[test]
fn odd_whitespace_still_verifies_and_parses() {
    assert_reformatted_bodies_work(P, CHANGED);
}

#[test]
fn change_type_names() {
    assert_eq!(
        map_change_type("CustomerSmsChanged"),
        Mapped::Contact("phone")
    );
    assert_eq!(
        map_change_type("CustomerEmailChanged"),
        Mapped::Contact("email")
    );
    assert_eq!(
        map_change_type("CustomerContactEmailChanged"),
        Mapped::Contact("email")
    );
    assert_eq!(
        map_change_type("CustomerRestaurantSmsMarketingDateChanged"),
        Mapped::Consent("resdiary.RestaurantSmsMarketingOptInDateTime".to_string())
    );
    assert_eq!(
        map_change_type("CustomerGroupEmailMarketingOptInChanged"),
        Mapped::Consent("resdiary.ReceiveGroupEmailMarketing".to_string())
    );
    assert_eq!(map_change_type("CustomerFooChanged"), Mapped::Unknown);
    assert_eq!(
        map_change_type("CustomerEmailMarketingChanged"),
        Mapped::Unknown
    );
}
