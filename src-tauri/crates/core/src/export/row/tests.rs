use super::*;
use chrono::TimeZone;
use serde_json::json;

fn at(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 20, h, 0, 0).unwrap()
}

fn person() -> PersonRow {
    PersonRow {
        id: 7,
        display_name: "Ana Silva".into(),
        emails: vec!["ana@example.com".into()],
        phones: vec!["+447911123456".into()],
        first_seen: Some(at(9)),
        last_seen: Some(at(12)),
        deleted: false,
        profile: serde_json::from_value(json!({
            "full_name": "=HYPERLINK(\"http://x\",\"click\")",
            "email": "ana@example.com",
            "phone": "+15550001",
            "loyalty_points": -5,
            "loyalty_tier": "Gold",
            "tags": ["VIP", "new"],
            "email_marketing_opt_in": true,
            "postal_code": "01234",
            "country_code": "GB"
        }))
        .unwrap(),
        records: vec![
            RecordRow {
                provider: "zupy".into(),
                connection: "main".into(),
                customer_ref: "ZP-1".into(),
                fields: BTreeMap::from([
                    (
                        "zupy.cpf".to_string(),
                        FieldValue {
                            value: json!("123.456.789-00"),
                            at: at(9),
                        },
                    ),
                    (
                        "zupy.program_id".to_string(),
                        FieldValue {
                            value: json!(42),
                            at: at(9),
                        },
                    ),
                ]),
            },
            RecordRow {
                provider: "tiquo".into(),
                connection: "shop".into(),
                customer_ref: "cust_1".into(),
                fields: BTreeMap::new(),
            },
            RecordRow {
                provider: "zupy".into(),
                connection: "other".into(),
                customer_ref: "ZP-2".into(),
                fields: BTreeMap::from([(
                    "zupy.cpf".to_string(),
                    FieldValue {
                        value: json!("999.999.999-99"),
                        at: at(11),
                    },
                )]),
            },
        ],
    }
}

fn compile(json: Value) -> CompiledProfile {
    let p = ExportProfile::from_json(&json.to_string()).unwrap();
    CompiledProfile::new(p, None).unwrap()
}

fn csv_cells(c: &CompiledProfile, row: RowRef<'_>) -> Vec<String> {
    let mut out = Vec::new();
    c.cells(row, &mut out);
    out.iter()
        .map(|cell| cell.csv_text(c.output.neutralize()).into_owned())
        .collect()
}

#[test]
fn person_rows_map_every_kind_of_source() {
    let c = compile(
        json!({"name": "all", "rows": "people", "format": {"type": "csv"},
        "columns": [
            {"header": "Name", "source": "full_name"},
            {"header": "Phone", "source": "phone"},
            {"header": "Points", "source": "loyalty_points"},
            {"header": "From", "source": "providers"},
            {"header": "Where", "source": "connections", "transform": {"join": " "}},
            {"header": "Id", "source": "id"},
            {"header": "CPF", "source": "zupy.cpf"},
            {"header": "Programme", "source": "zupy.program_id"},
            {"header": "Seen", "source": "first_seen", "transform": {"date": {"format": "%Y-%m-%d"}}},
            {"header": "Tags", "source": "tags"},
            {"header": "Missing", "source": "company"}
        ]}),
    );
    let p = person();
    assert_eq!(
        csv_cells(&c, RowRef::Person(&p)),
        vec![
            "'=HYPERLINK(\"http://x\",\"click\")",
            "'+15550001",
            "-5",
            "Zupy, Tiquo",
            "zupy/main tiquo/shop zupy/other",
            "7",
            "999.999.999-99",
            "42",
            "2024-01-20",
            "VIP, new",
            ""
        ]
    );
    let mut cells = Vec::new();
    c.cells(RowRef::Person(&p), &mut cells);
    assert!(matches!(cells[2], Cell::Number { value, .. } if value == -5.0));
    assert_eq!(cells[5], Cell::Text("7".into()), "ids are text");
    assert_eq!(cells[7], Cell::Text("42".into()), "ids are text");
}

#[test]
fn event_rows_map_facts_changes_and_details() {
    let c = compile(
        json!({"name": "tl", "rows": "events", "format": {"type": "csv", "neutralize_formulas": false},
        "columns": [
            {"header": "When", "source": "occurred_at"},
            {"header": "Kind", "source": "kind"},
            {"header": "Provider", "source": "provider"},
            {"header": "Old", "source": "change.email.old"},
            {"header": "New", "source": "change.email.new"},
            {"header": "Tier was", "source": "change.loyalty_tier.old", "transform": {"default": "-"}},
            {"header": "Changes", "source": "changes"},
            {"header": "Amount", "source": "details.amount"},
            {"header": "Email now", "source": "email"}
        ]}),
    );
    assert!(c.needs.person && c.needs.details && !c.needs.record_fields);
    let e = EventRow {
        delivery_id: 3,
        seq: 0,
        occurred_at: at(10),
        kind: "updated".into(),
        event_type: "customer.updated".into(),
        summary: "Email changed".into(),
        provider: "tiquo".into(),
        connection: "shop".into(),
        customer_ref: "cust_1".into(),
        changes: vec![
            Change {
                field: "email".into(),
                old: json!("a@x.com"),
                new: json!("b@x.com"),
            },
            Change {
                field: "zupy.cpf".into(),
                old: json!("1"),
                new: json!("2"),
            },
        ],
        details: json!({"amount": 12.5}),
    };
    let p = person();
    let row = RowRef::Event {
        event: &e,
        person: Some(&p),
    };
    assert_eq!(row.key(), "e3:0");
    assert_eq!(
        csv_cells(&c, row),
        vec![
            "2024-01-20T10:00:00Z",
            "updated",
            "Tiquo",
            "a@x.com",
            "b@x.com",
            "-",
            "Email: a@x.com → b@x.com; CPF (tax ID) changed",
            "12.5",
            "ana@example.com"
        ]
    );
}

#[test]
fn current_profile_filters() {
    let p = person();
    let keeps = |filters: Value| {
        compile(
            json!({"name": "f", "rows": "people", "format": {"type": "csv"},
            "columns": [{"header": "E", "source": "email"}], "filters": filters}),
        )
        .keeps(RowRef::Person(&p))
    };
    assert!(keeps(json!({})));
    assert!(keeps(json!({"tiers": ["gold", "Silver"]})));
    assert!(!keeps(json!({"tiers": ["Silver"]})));
    assert!(keeps(json!({"tags": ["vip"]})));
    assert!(!keeps(json!({"tags": ["lapsed"]})));
    assert!(keeps(json!({"email_marketing_opt_in": true})));
    assert!(!keeps(json!({"email_marketing_opt_in": false})));
    assert!(
        !keeps(json!({"sms_marketing_opt_in": true})),
        "unknown consent is not consent"
    );
    assert!(keeps(json!({"sms_marketing_opt_in": false})));
}

#[test]
fn fingerprints_change_with_any_written_value() {
    let a = vec![Cell::Text("1".into()), Cell::Empty];
    let b = vec![
        Cell::Number {
            value: 1.0,
            text: "1".into(),
        },
        Cell::Empty,
    ];
    let c = vec![Cell::Text("1".into()), Cell::Text(String::new())];
    assert_ne!(fingerprint(&a), fingerprint(&b), "type matters");
    assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
    assert_ne!(
        fingerprint(&[Cell::Text("ab".into()), Cell::Text("c".into())]),
        fingerprint(&[Cell::Text("a".into()), Cell::Text("bc".into())])
    );
    let _ = c;
}
