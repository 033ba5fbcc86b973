use super::*;
use crate::providers::{parse, sample_body};
use crate::{ConnectionSettings, ParsedDelivery};
use chrono::Utc;
use http::HeaderMap;
use serde_json::json;
use std::collections::BTreeMap;

fn ev(kind: EventKind, event_type: &str, details: Value) -> SourceEvent {
    SourceEvent {
        customer_ref: "c".to_string(),
        occurred_at: Utc::now(),
        kind,
        event_type: event_type.to_string(),
        fields: BTreeMap::new(),
        changes: None,
        details,
    }
}

fn ch(field: &str, old: Value, new: Value) -> Change {
    Change {
        field: field.to_string(),
        old,
        new,
    }
}

fn fixture(p: Provider, body: &str) -> (SourceEvent, String) {
    let ParsedDelivery { events } = parse(
        p,
        &ConnectionSettings::default(),
        &HeaderMap::new(),
        body.as_bytes(),
    )
    .expect("fixture parses");
    let e = events.into_iter().next().expect("one event");
    let changes = e.changes.clone().unwrap_or_default();
    let s = summarize(p, &e, &changes);
    (e, s)
}

#[test]
fn ux_examples() {
    let created = ev(
        EventKind::Created,
        "customer.created",
        json!({"source": "booking_portal"}),
    );
    assert_eq!(
        summarize(Provider::Tiquo, &created, &[]),
        "Joined through the booking portal"
    );
    let email = ch(
        "email",
        json!("ana@example.com"),
        json!("ana.new@example.com"),
    );
    let updated = ev(EventKind::Updated, "customer.updated", Value::Null);
    assert_eq!(
        summarize(Provider::Tiquo, &updated, &[email]),
        "Email changed from ana@example.com to ana.new@example.com"
    );
    let consent = ch(
        "resdiary.ReceiveGroupEmailMarketing",
        json!(true),
        json!(false),
    );
    let c = ev(
        EventKind::ConsentChanged,
        "CustomerMarketingOptInsChanged",
        Value::Null,
    );
    assert_eq!(
        summarize(Provider::Resdiary, &c, &[consent]),
        "Stopped email marketing (group)"
    );
    let businesses = ch(
        "vagaro.businessIds",
        json!(["123", "456", "789"]),
        json!(["123", "789"]),
    );
    assert_eq!(
        summarize(Provider::Vagaro, &updated, &[businesses]),
        "Removed from business 456"
    );
    let spam = ch(
        "plain.markedAsSpamAt",
        Value::Null,
        json!("2023-10-19T14:21:43.616Z"),
    );
    assert_eq!(
        summarize(Provider::Plain, &updated, &[spam]),
        "Marked as spam in Plain"
    );
    let deleted = ev(EventKind::Deleted, "customer.deleted", Value::Null);
    assert_eq!(
        summarize(Provider::Tiquo, &deleted, &[]),
        "Deleted in Tiquo"
    );
    let mut points = ev(
        EventKind::Points,
        "points.earned",
        json!({"points_added": 50, "source": "purchase"}),
    );
    points.fields.insert("loyalty_points".into(), json!(1250));
    assert_eq!(
        summarize(Provider::Zupy, &points, &[]),
        "Earned 50 points (balance 1,250)"
    );
    let appt = ev(
        EventKind::Appointment,
        "appointment/created",
        json!({"serviceTitle": "Haircut", "startTime": "2024-03-03T10:00:00-05:00", "action": "created"}),
    );
    assert_eq!(
        summarize(Provider::Vagaro, &appt, &[]),
        "Appointment booked: Haircut on 3 Mar 2024 10:00"
    );
    let unknown = ch("resdiary.CustomerFooChanged", json!(1), json!(2));
    assert_eq!(
        summarize(Provider::Resdiary, &updated, &[unknown]),
        "ResDiary reported a change Clientele doesn't know yet: CustomerFooChanged"
    );
}

#[test]
fn seed_fixtures_read_well() {
    let (_, s) = fixture(
        Provider::Tiquo,
        include_str!("../../tests/fixtures/tiquo-customer-created.json"),
    );
    assert_eq!(s, "Joined through the web app");
    let (_, s) = fixture(
        Provider::Tiquo,
        include_str!("../../tests/fixtures/tiquo-customer-updated.json"),
    );
    assert_eq!(s, "Updated email, loyalty points and tags");
    let (_, s) = fixture(
        Provider::Resdiary,
        include_str!("../../tests/fixtures/resdiary-customer-changed.json"),
    );
    assert_eq!(
        s,
        "Phone changed from 2 to 3; stopped email marketing (group)"
    );
    let (_, s) = fixture(
        Provider::Plain,
        include_str!("../../tests/fixtures/plain-customer-updated.json"),
    );
    assert_eq!(s, "Marked as spam in Plain");
    let (_, s) = fixture(
        Provider::Zupy,
        include_str!("../../tests/fixtures/zupy-legacy-tier-upgraded.json"),
    );
    assert_eq!(s, "Moved up from Bronze to Silver (2,500 points)");
    let (_, s) = fixture(
        Provider::Zupy,
        include_str!("../../tests/fixtures/zupy-legacy-customer-registered.json"),
    );
    assert_eq!(s, "Joined the loyalty programme with 100 welcome points");
    assert!(!s.contains("12345678901"));
    let (_, s) = fixture(
        Provider::Zupy,
        include_str!("../../tests/fixtures/zupy-customer-tier-changed.json"),
    );
    assert_eq!(s, "Moved up from Bronze to Silver");
    let (_, s) = fixture(
        Provider::Zupy,
        include_str!("../../tests/fixtures/zupy-points-earned.json"),
    );
    assert_eq!(s, "Earned 50 points (balance 1,250)");
    let (_, s) = fixture(
        Provider::Tiquo,
        include_str!("../../tests/fixtures/tiquo-customer-deleted.json"),
    );
    assert_eq!(s, "Deleted in Tiquo");
}

#[test]
fn samples_read_as_joining() {
    let at = Utc::now();
    for p in Provider::ALL {
        let body = sample_body(p, "c1", "a@example.com", at);
        let parsed = parse(p, &ConnectionSettings::default(), &HeaderMap::new(), &body)
            .expect("sample parses");
        let s = summarize(p, &parsed.events[0], &[]);
        assert!(
            s.starts_with("Joined") || s.starts_with("Added"),
            "{p}: {s}"
        );
    }
}

#[test]
fn sensitive_values_never_appear() {
    let updated = ev(EventKind::Updated, "customer.updated", Value::Null);
    let cpf = ch("zupy.cpf", json!("12345678901"), json!("10987654321"));
    let s = summarize(Provider::Zupy, &updated, std::slice::from_ref(&cpf));
    assert_eq!(s, "CPF (tax ID) changed");
    let many = [
        cpf,
        ch("email", json!("a@example.com"), json!("b@example.com")),
        ch("phone", Value::Null, json!("1")),
    ];
    let s = summarize(Provider::Zupy, &updated, &many);
    assert!(!s.contains("1234"), "{s}");
}

#[test]
fn many_changes_are_listed_and_bookkeeping_left_out() {
    let updated = ev(EventKind::Updated, "customer/updated", Value::Null);
    let changes = [
        ch("email", json!("a@example.com"), json!("b@example.com")),
        ch("phone", json!("1"), json!("2")),
        ch("tags", json!([]), json!(["VIP"])),
        ch(
            "updated_at",
            json!("2024-01-01T00:00:00Z"),
            json!("2024-02-01T00:00:00Z"),
        ),
    ];
    assert_eq!(
        summarize(Provider::Vagaro, &updated, &changes),
        "Updated email, phone and tags"
    );
    let more = [
        ch("email", json!("a"), json!("b")),
        ch("phone", json!("1"), json!("2")),
        ch("city", json!("x"), json!("y")),
        ch("sms_marketing_opt_in", json!(true), json!(false)),
        ch("postal_code", json!("1"), json!("2")),
    ];
    assert_eq!(
        summarize(Provider::Vagaro, &updated, &more),
        "Updated email, phone, city and 2 more details"
    );
    let only_bookkeeping = [ch(
        "updated_at",
        json!("2024-01-01T00:00:00Z"),
        json!("2024-03-03T10:00:00Z"),
    )];
    assert_eq!(
        summarize(Provider::Vagaro, &updated, &only_bookkeeping),
        "Last updated changed from 1 Jan 2024 00:00 to 3 Mar 2024 10:00"
    );
    assert_eq!(
        summarize(Provider::Vagaro, &updated, &[]),
        "Updated in Vagaro; nothing changed"
    );
    let names = [
        ch("first_name", json!("John"), json!("Jon")),
        ch("full_name", json!("John Doe"), json!("Jon Doe")),
    ];
    assert_eq!(
        summarize(Provider::Tiquo, &updated, &names),
        "First name changed from John to Jon"
    );
    let consents = [
        ch("sms_marketing_opt_in", json!(false), json!(true)),
        ch("email_marketing_opt_in", json!(true), json!(false)),
    ];
    assert_eq!(
        summarize(Provider::Tiquo, &updated, &consents),
        "Started SMS marketing and stopped email marketing"
    );
    let mixed = [
        ch("phone", json!("1"), json!("2")),
        ch("resdiary.CustomerFooChanged", json!("a"), json!("b")),
    ];
    assert_eq!(
        summarize(Provider::Resdiary, &updated, &mixed),
        "Phone changed from 1 to 2. ResDiary reported a change Clientele doesn't know yet: CustomerFooChanged"
    );
}

#[test]
fn list_and_value_phrases() {
    let updated = ev(EventKind::Updated, "x", Value::Null);
    let say = |c: Change| summarize(Provider::Tiquo, &updated, &[c]);
    assert_eq!(
        say(ch("tags", json!(["A"]), json!(["A", "VIP"]))),
        "Tagged VIP"
    );
    assert_eq!(
        say(ch("tags", json!(["A", "B"]), json!([]))),
        "Tag removed: A, B"
    );
    assert_eq!(
        say(ch("city", Value::Null, json!("Porto"))),
        "City set to Porto"
    );
    assert_eq!(
        say(ch("city", json!("Porto"), Value::Null)),
        "City removed (was Porto)"
    );
    assert_eq!(
        say(ch(
            "vagaro.businessIds",
            json!(["1"]),
            json!(["1", "2", "3"])
        )),
        "Added to businesses 2, 3"
    );
    assert_eq!(
        say(ch(
            "plain.markedAsSpamAt",
            json!("2024-01-01T00:00:00Z"),
            Value::Null
        )),
        "No longer marked as spam in Tiquo"
    );
    assert_eq!(
        say(ch("loyalty_tier", json!("gold"), json!("silver"))),
        "Moved down from Gold to Silver"
    );
    assert_eq!(
        say(ch("loyalty_tier", json!("vip"), json!("legend"))),
        "Loyalty tier changed from VIP to Legend"
    );
    assert_eq!(
        say(ch("loyalty_points", json!(1300), json!(1100))),
        "Spent 200 points (balance 1,100)"
    );
    assert_eq!(
        say(ch("email_marketing_opt_in", json!(false), json!(true))),
        "Started email marketing"
    );
    let long = "x".repeat(200);
    assert!(
        say(ch("tiquo.note", Value::Null, json!(long)))
            .chars()
            .count()
            < 120
    );
}

#[test]
fn activities() {
    let coupon = ev(
        EventKind::Coupon,
        "coupon.used",
        json!({"coupon_code": "CAFE10"}),
    );
    assert_eq!(
        summarize(Provider::Zupy, &coupon, &[]),
        "Used coupon CAFE10"
    );
    let expiring = ev(
        EventKind::Coupon,
        "coupon.expiring",
        json!({"coupon_code": "CAFE10", "expires_at": "2026-03-31T23:59:00Z"}),
    );
    assert_eq!(
        summarize(Provider::Zupy, &expiring, &[]),
        "Coupon CAFE10 expires on 31 Mar 2026 23:59"
    );
    let reward = ev(
        EventKind::Reward,
        "reward.redeemed",
        json!({"reward_name": "Free coffee"}),
    );
    assert_eq!(
        summarize(Provider::Zupy, &reward, &[]),
        "Redeemed a reward: Free coffee"
    );
    let order = ev(
        EventKind::Order,
        "order.completed",
        json!({"total": 1045.5, "currency": "eur"}),
    );
    assert_eq!(
        summarize(Provider::Tiquo, &order, &[]),
        "Order completed (1,045.50 EUR)"
    );
    let placed = ev(EventKind::Order, "order.created", json!({"amount": 12}));
    assert_eq!(
        summarize(Provider::Tiquo, &placed, &[]),
        "Placed an order (12)"
    );
    let refund = ev(EventKind::Payment, "payment.refunded", Value::Null);
    assert_eq!(summarize(Provider::Tiquo, &refund, &[]), "Payment refunded");
    let tx = ev(
        EventKind::Payment,
        "transaction/created",
        json!({"amount": 45}),
    );
    assert_eq!(
        summarize(Provider::Vagaro, &tx, &[]),
        "Payment recorded (45)"
    );
    let cancelled = ev(
        EventKind::Appointment,
        "appointment/updated",
        json!({"serviceTitle": "Massage", "bookingStatus": "Cancelled", "action": "updated"}),
    );
    assert_eq!(
        summarize(Provider::Vagaro, &cancelled, &[]),
        "Appointment cancelled: Massage"
    );
    let form = ev(
        EventKind::Other,
        "formResponse/created",
        json!({"formTitle": "Consultation"}),
    );
    assert_eq!(
        summarize(Provider::Vagaro, &form, &[]),
        "Filled in a form: Consultation"
    );
    let thread = ev(
        EventKind::Other,
        "thread.thread_created",
        json!({"title": "Refund"}),
    );
    assert_eq!(
        summarize(Provider::Plain, &thread, &[]),
        "Started a support conversation: Refund"
    );
    let unknown = ev(EventKind::Other, "customer.birthday", Value::Null);
    assert_eq!(
        summarize(Provider::Zupy, &unknown, &[]),
        "Zupy reported a change Clientele doesn't know yet: customer.birthday"
    );
    let group = ev(
        EventKind::GroupMembership,
        "customer.customer_group_memberships_changed",
        json!({"changeType": "ADDED"}),
    );
    let added = ch(
        "plain.customerGroupMemberships",
        json!([]),
        json!([{"customerGroup": {"name": "VIP"}}]),
    );
    assert_eq!(
        summarize(Provider::Plain, &group, &[added]),
        "Added to customer group VIP"
    );
    assert_eq!(
        summarize(Provider::Plain, &group, &[]),
        "Added to a customer group in Plain"
    );
}

#[test]
fn numbers() {
    assert_eq!(grouped(0), "0");
    assert_eq!(grouped(999), "999");
    assert_eq!(grouped(2500), "2,500");
    assert_eq!(grouped(-1_234_567), "-1,234,567");
    assert_eq!(money(&json!(0.5)).as_deref(), Some("0.50"));
    assert_eq!(money(&json!("-0.25")).as_deref(), Some("-0.25"));
    assert_eq!(money(&json!(f64::MAX)), None);
}
