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
        field_records: BTreeMap::new(),
        records: vec![
            RecordRow {
                id: 1,
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
                id: 2,
                provider: "tiquo".into(),
                connection: "shop".into(),
                customer_ref: "cust_1".into(),
                fields: BTreeMap::new(),
            },
            RecordRow {
                id: 3,
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
        .zip(c.protections())
        .map(|(cell, protection)| cell.csv_text_guarded(*protection).into_owned())
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

/// A person whose phone column holds `phone`, and whose name is a formula.
fn with_phone(phone: &str) -> PersonRow {
    let mut p = person();
    p.profile.insert("phone".into(), json!(phone));
    p.phones = vec![phone.to_string()];
    p
}

fn phone_profile(format: Value) -> CompiledProfile {
    compile(json!({"name": "m", "rows": "people", "format": format,
    "columns": [
        {"header": "Phone", "source": "phone"},
        {"header": "Phones", "source": "phones"},
        {"header": "Name", "source": "full_name"},
        {"header": "Points", "source": "loyalty_points"}
    ]}))
}

#[test]
fn a_csv_for_other_software_writes_phone_numbers_as_they_are_and_nothing_else() {
    let other = phone_profile(json!({"type": "csv", "preset": "other"}));
    assert_eq!(
        other.protections(),
        [
            Protection::ExceptPhoneNumbers,
            Protection::ExceptPhoneNumbers,
            Protection::Formulas,
            Protection::Formulas
        ]
    );
    let p = with_phone("+447700900123");
    assert_eq!(
        csv_cells(&other, RowRef::Person(&p)),
        [
            "+447700900123",
            "+447700900123",
            "'=HYPERLINK(\"http://x\",\"click\")",
            "-5"
        ],
        "the phone goes to the mailing tool as it is; the name is still neutralized"
    );
    // Crafted "phone numbers" in a phone column are still neutralized.
    for risky in [
        "+1+cmd|' /C calc'!A0",
        "=HYPERLINK(\"http://x\",\"click\")",
        "+44 7700 900123",
        "-1+1",
        "@SUM(A1)",
    ] {
        let p = with_phone(risky);
        let cells = csv_cells(&other, RowRef::Person(&p));
        assert_eq!(cells[0], format!("'{risky}"), "{risky:?}");
        assert_eq!(cells[1], format!("'{risky}"), "{risky:?} in the list");
    }
    // Several numbers joined are not one phone number: neutralized.
    let mut p = with_phone("+447700900123");
    p.phones = vec!["+447700900123".into(), "+15550001".into()];
    assert_eq!(
        csv_cells(&other, RowRef::Person(&p))[1],
        "'+447700900123, +15550001"
    );

    // A CSV for Excel keeps the quote on phone numbers (Excel would make them numbers); an
    // Excel workbook marks cells instead of changing them; protection off is off.
    let excel = phone_profile(json!({"type": "csv", "preset": "excel"}));
    assert!(
        excel
            .protections()
            .iter()
            .all(|p| *p == Protection::Formulas)
    );
    let p = with_phone("+447700900123");
    assert_eq!(csv_cells(&excel, RowRef::Person(&p))[0], "'+447700900123");
    let xlsx = phone_profile(json!({"type": "xlsx"}));
    assert!(
        xlsx.protections()
            .iter()
            .all(|p| *p == Protection::Formulas)
    );
    let off =
        phone_profile(json!({"type": "csv", "preset": "other", "neutralize_formulas": false}));
    assert!(off.protections().iter().all(|p| *p == Protection::Off));
    assert_eq!(
        csv_cells(&off, RowRef::Person(&with_phone("+1+cmd|' /C calc'!A0")))[0],
        "+1+cmd|' /C calc'!A0"
    );
}

#[test]
fn yes_no_answers_default_to_what_the_file_is_for() {
    let written = |format: Value, transform: Value| {
        let c = compile(json!({"name": "m", "rows": "people", "format": format,
        "columns": [
            {"header": "Email marketing", "source": "email_marketing_opt_in", "transform": transform},
            {"header": "SMS", "source": "sms_marketing_opt_in"}
        ]}));
        csv_cells(&c, RowRef::Person(&person()))
    };
    assert_eq!(
        written(json!({"type": "csv"}), json!({})),
        ["Yes", ""],
        "never asked stays empty"
    );
    assert_eq!(
        written(json!({"type": "csv", "preset": "other"}), json!({})),
        ["true", ""]
    );
    assert_eq!(
        written(
            json!({"type": "csv", "preset": "other"}),
            json!({"yes_no": "one_zero"})
        ),
        ["1", ""]
    );
    assert_eq!(
        written(json!({"type": "csv"}), json!({"yes_no": "true_false"})),
        ["true", ""]
    );
}

/// Farah: linked through her phone, with her Vagaro record holding her new email and no
/// marketing answer, and her Tiquo record holding her old email and a "yes" given for it.
fn farah() -> PersonRow {
    let field = |v: Value, h: u32| FieldValue {
        value: v,
        at: at(h),
    };
    PersonRow {
        id: 11,
        display_name: "Farah Haddad".into(),
        emails: vec!["farah.new@example.com".into(), "farah@example.com".into()],
        phones: vec!["+447911123456".into()],
        profile: serde_json::from_value(json!({
            "full_name": "Farah Haddad",
            "email": "farah.new@example.com",
            "phone": "+447911123456",
            "email_marketing_opt_in": true,
            "sms_marketing_opt_in": false,
        }))
        .unwrap(),
        field_records: BTreeMap::from([
            ("full_name".to_string(), 21),
            ("email".to_string(), 21),
            ("phone".to_string(), 21),
            ("email_marketing_opt_in".to_string(), 20),
            ("sms_marketing_opt_in".to_string(), 20),
        ]),
        records: vec![
            RecordRow {
                id: 20,
                provider: "tiquo".into(),
                connection: "shop".into(),
                customer_ref: "cust_farah".into(),
                fields: BTreeMap::from([
                    ("email".to_string(), field(json!("Farah@Example.com"), 9)),
                    ("phone".to_string(), field(json!("07911 123456"), 9)),
                    ("email_marketing_opt_in".to_string(), field(json!(true), 9)),
                    ("sms_marketing_opt_in".to_string(), field(json!(false), 9)),
                ]),
            },
            RecordRow {
                id: 21,
                provider: "vagaro".into(),
                connection: "uptown".into(),
                customer_ref: "v-farah".into(),
                fields: BTreeMap::from([
                    (
                        "email".to_string(),
                        field(json!("farah.new@example.com"), 11),
                    ),
                    ("phone".to_string(), field(json!("+447911123456"), 11)),
                ]),
            },
        ],
        ..Default::default()
    }
}

#[test]
fn a_consent_is_the_one_given_for_the_address_exported() {
    let c = compile(
        json!({"name": "m", "rows": "people", "format": {"type": "csv", "preset": "other"},
        "columns": [
            {"header": "Email", "source": "email"},
            {"header": "Email marketing", "source": "email_marketing_opt_in"},
            {"header": "Phone", "source": "phone"},
            {"header": "SMS marketing", "source": "sms_marketing_opt_in"}
        ]}),
    );
    assert!(c.profile_fields().contains("email") && c.profile_fields().contains("phone"));
    let mut p = farah();
    assert!(
        c.needs_consent_records(&p),
        "the answers came from another record"
    );
    c.pair_consents(&mut p);
    assert_eq!(
        csv_cells(&c, RowRef::Person(&p)),
        ["farah.new@example.com", "", "+447911123456", "false"],
        "the Tiquo yes was for her old address: unknown for the new one; the SMS answer was \
         for the same number (written differently) and stays"
    );
    // The same with a number the phone library calls invalid, written two ways.
    let mut p = farah();
    p.profile.insert("phone".into(), json!("+447700900555"));
    p.records[0].fields.get_mut("phone").unwrap().value = json!("07700 900555");
    p.records[1].fields.get_mut("phone").unwrap().value = json!("+447700900555");
    c.pair_consents(&mut p);
    assert_eq!(csv_cells(&c, RowRef::Person(&p))[3], "false");
    // Another number's answer is not this number's.
    let mut p = farah();
    p.records[0].fields.get_mut("phone").unwrap().value = json!("07911 654321");
    c.pair_consents(&mut p);
    assert_eq!(csv_cells(&c, RowRef::Person(&p))[3], "");
    let said_yes = compile(
        json!({"name": "y", "rows": "people", "format": {"type": "csv"},
        "columns": [{"header": "Email", "source": "email"}],
        "filters": {"email_marketing_opt_in": true}}),
    );
    let mut p = farah();
    assert!(said_yes.needs_consent_records(&p));
    said_yes.pair_consents(&mut p);
    assert!(
        !said_yes.keeps(RowRef::Person(&p)),
        "not a yes for the address in the file"
    );

    // When her current email is the one she said yes with, the yes is hers.
    let mut p = farah();
    p.profile.insert("email".into(), json!("farah@example.com"));
    p.field_records.insert("email".into(), 20);
    p.field_records.insert("phone".into(), 20);
    assert!(
        !c.needs_consent_records(&p),
        "addresses and answers from one record"
    );
    let mut p = farah();
    p.records[1].fields.insert(
        "email".into(),
        FieldValue {
            value: json!("FARAH@example.com "),
            at: at(11),
        },
    );
    p.profile
        .insert("email".into(), json!("FARAH@example.com "));
    c.pair_consents(&mut p);
    assert_eq!(
        csv_cells(&c, RowRef::Person(&p))[1],
        "true",
        "another record with the same address answered: that answer belongs to it"
    );

    // A profile that reads no consent never pays for records.
    let plain = compile(
        json!({"name": "p", "rows": "people", "format": {"type": "csv"},
        "columns": [{"header": "Email", "source": "email"}]}),
    );
    assert!(!plain.needs_consent_records(&farah()));
}

/// A store may leave out (or read from somewhere cheaper) the profile fields no column or filter
/// reads: the profile asks for exactly the ones it uses.
#[test]
fn a_profile_asks_only_for_the_fields_it_reads() {
    let fields =
        |json: Value| -> Vec<String> { compile(json).profile_fields().iter().cloned().collect() };
    let columns = json!([
        {"header": "When", "source": "occurred_at"},
        {"header": "Email", "source": "email"},
        {"header": "Name", "source": "full_name"}
    ]);
    assert_eq!(
        fields(
            json!({"name": "t", "rows": "events", "format": {"type": "csv"}, "columns": columns})
        ),
        ["email", "full_name"]
    );
    let c = compile(
        json!({"name": "t", "rows": "events", "format": {"type": "csv"}, "columns": columns}),
    );
    assert!(c.needs.person && !c.needs.lists);
    assert_eq!(
        fields(
            json!({"name": "t", "rows": "events", "format": {"type": "csv"}, "columns": columns,
            "filters": {"tiers": ["gold"], "tags": ["vip"]}})
        ),
        ["email", "full_name", "loyalty_tier", "tags"]
    );
    // A consent (column or filter) comes with its address and the country its phone is read in.
    assert_eq!(
        fields(
            json!({"name": "t", "rows": "events", "format": {"type": "csv"}, "columns": columns,
            "filters": {"sms_marketing_opt_in": true}})
        ),
        [
            "country_code",
            "email",
            "full_name",
            "phone",
            "sms_marketing_opt_in"
        ]
    );
    // Formatting phone numbers reads the person's country.
    assert_eq!(
        fields(
            json!({"name": "t", "rows": "people", "format": {"type": "csv"}, "columns": [
            {"header": "Phone", "source": "phone", "transform": {"phone": "e164"}}]})
        ),
        ["country_code", "phone"]
    );
    let lists = compile(
        json!({"name": "t", "rows": "people", "format": {"type": "csv"}, "columns": [
        {"header": "Emails", "source": "emails"}]}),
    );
    assert!(lists.needs.lists && lists.profile_fields().is_empty());
}

/// A person's own country is still the one their phone numbers are read in.
#[test]
fn phone_numbers_are_read_in_the_persons_country() {
    let c = compile(json!({"name": "t", "rows": "people",
        "format": {"type": "csv", "preset": "other"}, "columns": [
        {"header": "Phone", "source": "phone", "transform": {"phone": "e164"}}]}));
    let mut p = with_phone("07911 123456");
    assert_eq!(csv_cells(&c, RowRef::Person(&p)), ["+447911123456"]);
    p.profile.insert("country_code".into(), json!("US"));
    assert_eq!(csv_cells(&c, RowRef::Person(&p)), ["07911 123456"]);
}
