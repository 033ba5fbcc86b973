//! One timeline sentence per event, for people who run a front desk, not a server.
//!
//! The sentence says *what happened to this customer* in the words of `docs/words.md` ("Joined
//! through the booking portal", "Email changed from ana@example.com to ana.new@example.com",
//! "Moved up from Bronze to Silver (2,500 points)", "Stopped email marketing (group)"). The
//! provider, the time and the old → new values are shown beside it by the UI, so the sentence
//! only names the provider where the meaning needs it ("Deleted in Tiquo", "Marked as spam in
//! Plain").
//!
//! Rules that keep it readable:
//! * bookkeeping changes (`updated_at`, who edited, opt-in wording) are left out when anything
//!   else changed — they are one click away;
//! * one or two changes are spelled out; more are listed by label ("Updated email, phone and
//!   tags");
//! * something Clientele has no mapping for still gets a plain line ("ResDiary reported a change
//!   Clientele doesn't know yet: CustomerFooChanged");
//! * sensitive fields (a national id such as Zupy's `cpf`) are named, never shown.

use crate::event::{Change, EventKind, SourceEvent};
use crate::fields::{capitalize, consent, is_minor, is_sensitive, is_unknown_change, label};
use crate::provider::Provider;
use chrono::{DateTime, NaiveDateTime};
use serde_json::Value;

/// The timeline sentence for `event`. `changes` are the event's effective changes: the
/// provider's own (`event.changes`) or the ones the store computed against earlier state.
pub fn summarize(provider: Provider, event: &SourceEvent, changes: &[Change]) -> String {
    let sentence = match event.kind {
        EventKind::Created => created(provider, event),
        EventKind::Deleted => format!("Deleted in {}", provider.display_name()),
        EventKind::TierChanged => tier_changed(event, changes),
        EventKind::Points => points(event, changes),
        EventKind::Reward => reward(event),
        EventKind::Coupon => coupon(event),
        EventKind::Appointment => appointment(event),
        EventKind::Order => order(event),
        EventKind::Payment => payment(provider, event),
        EventKind::GroupMembership => group_membership(provider, event, changes),
        EventKind::Updated | EventKind::ConsentChanged => describe_changes(provider, changes),
        EventKind::Other => other(provider, event),
    };
    capitalize(&sentence)
}

// ---------------------------------------------------------------------------------------------
// Kinds
// ---------------------------------------------------------------------------------------------

fn created(provider: Provider, event: &SourceEvent) -> String {
    match provider {
        Provider::Tiquo => match detail_text(event, &["source"]).as_deref() {
            Some("booking_portal") => "Joined through the booking portal".to_string(),
            Some("web_app") => "Joined through the web app".to_string(),
            Some("api") => "Added to Tiquo by another system".to_string(),
            Some("import") => "Imported into Tiquo".to_string(),
            Some(other) => format!("Joined through {}", label(other).to_lowercase()),
            None => "Added in Tiquo".to_string(),
        },
        Provider::Zupy => format!("Joined the loyalty programme{}", welcome_reward(event)),
        Provider::Resdiary
            if detail_text(event, &["inferred"]).is_some_and(|s| s.contains("no changes")) =>
        {
            "Added in ResDiary (read as new: the message listed no changes)".to_string()
        }
        _ => format!("Added in {}", provider.display_name()),
    }
}

fn welcome_reward(event: &SourceEvent) -> String {
    let Some(reward) = event.details.get("welcome_reward") else {
        return String::new();
    };
    if reward.get("enabled") == Some(&Value::Bool(false)) {
        return String::new();
    }
    match reward.get("type").and_then(Value::as_str) {
        Some("points") => match reward.get("points_awarded").and_then(count) {
            Some(n) => format!(" with {} welcome {}", grouped(n), plural(n, "point")),
            None => " with welcome points".to_string(),
        },
        Some("coupon") => match reward.get("coupon_code").and_then(Value::as_str) {
            Some(code) => format!(" with a welcome coupon ({code})"),
            None => " with a welcome coupon".to_string(),
        },
        _ => String::new(),
    }
}

fn tier_changed(event: &SourceEvent, changes: &[Change]) -> String {
    let change = changes
        .iter()
        .chain(event.changes.iter().flatten())
        .find(|c| c.field == "loyalty_tier");
    let base = match change {
        Some(c) => tier_phrase(&c.old, &c.new),
        None => match event.fields.get("loyalty_tier") {
            Some(new) => tier_phrase(&Value::Null, new),
            None => "Loyalty tier changed".to_string(),
        },
    };
    match tier_points(event) {
        Some(points) => format!("{base} ({} {})", grouped(points), plural(points, "point")),
        None => base,
    }
}

/// The points that qualified the customer, when Zupy says the tier is about points, or the
/// balance the event asserts.
fn tier_points(event: &SourceEvent) -> Option<i64> {
    let metric = event
        .details
        .get("qualification_metric")
        .and_then(Value::as_str);
    match metric {
        Some(m) if m.contains("point") => event.details.get("qualification_value").and_then(count),
        Some(_) => None,
        None => event.fields.get("loyalty_points").and_then(count),
    }
}

fn points(event: &SourceEvent, changes: &[Change]) -> String {
    let spent = ["spent", "redeem", "used"]
        .iter()
        .any(|w| event.event_type.contains(w));
    let amount = detail_count(
        event,
        &[
            "points_added",
            "points_spent",
            "points_redeemed",
            "points_used",
            "points",
            "amount",
        ],
    );
    let balance = event
        .fields
        .get("loyalty_points")
        .and_then(count)
        .or_else(|| detail_count(event, &["new_balance", "balance"]));
    let balance_note = balance.map(|b| format!(" (balance {})", grouped(b)));
    match amount {
        Some(n) => {
            let n = n.abs();
            let verb = if spent { "Spent" } else { "Earned" };
            format!(
                "{verb} {} {}{}",
                grouped(n),
                plural(n, "point"),
                balance_note.unwrap_or_default()
            )
        }
        None => match changes.iter().find(|c| c.field == "loyalty_points") {
            Some(c) => points_from_change(c),
            None => match balance {
                Some(b) => format!("Points balance now {}", grouped(b)),
                None => "Loyalty points changed".to_string(),
            },
        },
    }
}

fn points_from_change(c: &Change) -> String {
    match (count(&c.old), count(&c.new)) {
        (Some(old), Some(new)) if new >= old => format!(
            "Earned {} {} (balance {})",
            grouped(new - old),
            plural(new - old, "point"),
            grouped(new)
        ),
        (Some(old), Some(new)) => format!(
            "Spent {} {} (balance {})",
            grouped(old - new),
            plural(old - new, "point"),
            grouped(new)
        ),
        (_, Some(new)) => format!("Points balance now {}", grouped(new)),
        _ => "Loyalty points changed".to_string(),
    }
}

fn reward(event: &SourceEvent) -> String {
    match detail_text(
        event,
        &["reward_name", "reward_title", "reward", "name", "title"],
    ) {
        Some(name) => format!("Redeemed a reward: {name}"),
        None => "Redeemed a reward".to_string(),
    }
}

fn coupon(event: &SourceEvent) -> String {
    let code = detail_text(event, &["coupon_code", "code", "coupon"]);
    let named = code.as_deref().map(|c| format!(" {c}")).unwrap_or_default();
    match action_of(&event.event_type) {
        "used" | "redeemed" => match code {
            Some(c) => format!("Used coupon {c}"),
            None => "Used a coupon".to_string(),
        },
        "cancelled" | "canceled" => format!("Coupon{named} cancelled"),
        "expiring" => match detail_when(event, &["expires_at", "expiry_date", "expires"]) {
            Some(when) => format!("Coupon{named} expires on {when}"),
            None => format!("Coupon{named} expires soon"),
        },
        "expired" => format!("Coupon{named} expired"),
        "issued" | "created" | "granted" => match code {
            Some(c) => format!("Received coupon {c}"),
            None => "Received a coupon".to_string(),
        },
        other => format!("Coupon{named}: {}", label(other).to_lowercase()),
    }
}

fn appointment(event: &SourceEvent) -> String {
    let status = detail_text(event, &["bookingStatus", "status"])
        .unwrap_or_default()
        .to_lowercase();
    let action =
        detail_text(event, &["action"]).unwrap_or_else(|| action_of(&event.event_type).to_string());
    let verb = if status.contains("cancel") {
        "Appointment cancelled"
    } else if status.replace(['-', ' '], "").contains("noshow") {
        "Missed appointment"
    } else if action == "deleted" {
        "Appointment removed"
    } else if action == "updated" {
        "Appointment changed"
    } else {
        "Appointment booked"
    };
    let service = detail_text(event, &["serviceTitle", "serviceName", "service"]);
    let when = detail_when(event, &["startTime", "start_time", "start"]);
    match (service, when) {
        (Some(s), Some(w)) => format!("{verb}: {s} on {w}"),
        (Some(s), None) => format!("{verb}: {s}"),
        (None, Some(w)) => format!("{verb} for {w}"),
        (None, None) => verb.to_string(),
    }
}

fn order(event: &SourceEvent) -> String {
    let base = match action_of(&event.event_type) {
        "created" | "placed" => "Placed an order".to_string(),
        "" => "Order".to_string(),
        other => format!("Order {}", label(other).to_lowercase()),
    };
    format!("{base}{}", money_note(event))
}

fn payment(provider: Provider, event: &SourceEvent) -> String {
    let base = match action_of(&event.event_type) {
        "succeeded" | "paid" | "captured" => "Payment received".to_string(),
        "failed" => "Payment failed".to_string(),
        "refunded" => "Payment refunded".to_string(),
        _ if provider == Provider::Vagaro => "Payment recorded".to_string(),
        other => format!("Payment {}", label(other).to_lowercase()),
    };
    format!("{base}{}", money_note(event))
}

fn group_membership(provider: Provider, event: &SourceEvent, changes: &[Change]) -> String {
    if let Some(c) = changes
        .iter()
        .find(|c| c.field == "plain.customerGroupMemberships")
    {
        return list_phrase(c, "customer group");
    }
    let change_type = detail_text(event, &["changeType"]).unwrap_or_default();
    match change_type.to_ascii_uppercase().as_str() {
        "ADDED" => format!("Added to a customer group in {}", provider.display_name()),
        "REMOVED" => format!(
            "Removed from a customer group in {}",
            provider.display_name()
        ),
        _ => "Customer groups changed".to_string(),
    }
}

fn other(provider: Provider, event: &SourceEvent) -> String {
    let name = provider.display_name();
    if provider == Provider::Vagaro && event.event_type.starts_with("formResponse") {
        return match detail_text(event, &["formTitle", "formName", "title"]) {
            Some(form) => format!("Filled in a form: {form}"),
            None => "Filled in a form".to_string(),
        };
    }
    if provider == Provider::Plain && event.event_type.starts_with("thread.") {
        let what = if event.event_type.ends_with("thread_created") {
            "Started a support conversation".to_string()
        } else {
            format!("Support conversation updated in {name}")
        };
        return match detail_text(event, &["title"]) {
            Some(title) => format!("{what}: {title}"),
            None => what,
        };
    }
    format!(
        "{name} reported a change Clientele doesn't know yet: {}",
        event.event_type
    )
}

// ---------------------------------------------------------------------------------------------
// Field changes
// ---------------------------------------------------------------------------------------------

/// Spells out one or two changes, lists more by label, and adds a line for unknown ones.
fn describe_changes(provider: Provider, changes: &[Change]) -> String {
    if changes.is_empty() {
        return format!("Updated in {}; nothing changed", provider.display_name());
    }
    let (unknown, known): (Vec<&Change>, Vec<&Change>) =
        changes.iter().partition(|c| is_unknown_change(&c.field));
    let shown = worth_saying(&known);
    let mut sentences = Vec::new();
    if !shown.is_empty() {
        let all_consent = shown.iter().all(|c| consent(&c.field).is_some());
        if all_consent || shown.len() <= 2 {
            let phrases: Vec<String> = shown.iter().map(|c| change_phrase(provider, c)).collect();
            let joiner = if all_consent { " and " } else { "; " };
            sentences.push(join_phrases(&phrases, joiner));
        } else {
            sentences.push(format!("Updated {}", list_labels(&shown)));
        }
    }
    if !unknown.is_empty() {
        let names: Vec<&str> = unknown
            .iter()
            .map(|c| crate::fields::provider_path(&c.field).map_or(c.field.as_str(), |(_, k)| k))
            .collect();
        sentences.push(format!(
            "{} reported a change Clientele doesn't know yet: {}",
            provider.display_name(),
            names.join(", ")
        ));
    }
    sentences.join(". ")
}

/// Drops what only restates another change: bookkeeping when anything else changed, the
/// canonical opt-in when the provider's own opt-in is there, the full name when a first or last
/// name is.
fn worth_saying<'a>(changes: &[&'a Change]) -> Vec<&'a Change> {
    let has = |pred: &dyn Fn(&Change) -> bool| changes.iter().any(|c| pred(c));
    let any_major = has(&|c| !is_minor(&c.field));
    let any_name_part = has(&|c| c.field == "first_name" || c.field == "last_name");
    changes
        .iter()
        .copied()
        .filter(|c| !any_major || !is_minor(&c.field))
        .filter(|c| !(any_name_part && c.field == "full_name"))
        .filter(|c| match consent(&c.field) {
            Some((channel, None)) => !has(&|o: &Change| {
                consent(&o.field).is_some_and(|(ch, scope)| ch == channel && scope.is_some())
            }),
            _ => true,
        })
        .collect()
}

fn join_phrases(phrases: &[String], joiner: &str) -> String {
    phrases
        .iter()
        .enumerate()
        .map(|(i, p)| if i == 0 { p.clone() } else { decapitalize(p) })
        .collect::<Vec<_>>()
        .join(joiner)
}

/// "email, phone and tags"; past four, "… and 3 more details".
fn list_labels(changes: &[&Change]) -> String {
    let labels: Vec<String> = changes
        .iter()
        .map(|c| decapitalize(&label(&c.field)))
        .collect();
    let (named, rest) = if labels.len() > 4 {
        (&labels[..3], labels.len() - 3)
    } else {
        (&labels[..], 0)
    };
    match (named, rest) {
        ([only], 0) => only.clone(),
        (_, 0) => {
            let (last, init) = named
                .split_last()
                .map_or((String::new(), &[][..]), |(l, i)| (l.clone(), i));
            format!("{} and {last}", init.join(", "))
        }
        _ => format!("{} and {rest} more details", named.join(", ")),
    }
}

fn change_phrase(provider: Provider, c: &Change) -> String {
    let f = c.field.as_str();
    if is_sensitive(f) {
        return match (c.old.is_null(), c.new.is_null()) {
            (true, false) => format!("{} added", label(f)),
            (false, true) => format!("{} removed", label(f)),
            _ => format!("{} changed", label(f)),
        };
    }
    if let Some((channel, scope)) = consent(f) {
        let scope = scope.map(|s| format!(" ({s})")).unwrap_or_default();
        return match c.new.as_bool() {
            Some(true) => format!("Started {} marketing{scope}", channel.word()),
            Some(false) => format!("Stopped {} marketing{scope}", channel.word()),
            None => format!("{} cleared", label(f)),
        };
    }
    match f {
        "tags" => list_phrase(c, "tag"),
        "vagaro.businessIds" => list_phrase(c, "business"),
        "plain.customerGroupMemberships" => list_phrase(c, "customer group"),
        "loyalty_tier" => tier_phrase(&c.old, &c.new),
        "loyalty_points" => points_from_change(c),
        "plain.markedAsSpamAt" if c.new.is_null() => {
            format!("No longer marked as spam in {}", provider.display_name())
        }
        "plain.markedAsSpamAt" => format!("Marked as spam in {}", provider.display_name()),
        "deleted_at" if c.new.is_null() => "Restored".to_string(),
        "deleted_at" => "Marked as deleted".to_string(),
        _ => generic_phrase(c),
    }
}

fn generic_phrase(c: &Change) -> String {
    let name = label(&c.field);
    let (old, new) = (show(&c.field, &c.old), show(&c.field, &c.new));
    match (c.old.is_null(), c.new.is_null()) {
        (true, _) => format!("{name} set to {new}"),
        (false, true) => format!("{name} removed (was {old})"),
        _ => format!("{name} changed from {old} to {new}"),
    }
}

/// Lists that gain or lose members: tags, Vagaro businesses, Plain customer groups.
fn list_phrase(c: &Change, noun: &str) -> String {
    let old = members(&c.old);
    let new = members(&c.new);
    let added: Vec<&str> = new
        .iter()
        .filter(|m| !old.contains(m))
        .map(String::as_str)
        .collect();
    let removed: Vec<&str> = old
        .iter()
        .filter(|m| !new.contains(m))
        .map(String::as_str)
        .collect();
    let nouns = |items: &[&str]| {
        let n = if items.len() == 1 {
            noun.to_string()
        } else if noun.ends_with('s') {
            format!("{noun}es")
        } else {
            format!("{noun}s")
        };
        format!("{n} {}", items.join(", "))
    };
    let is_tag = noun == "tag";
    match (added.is_empty(), removed.is_empty()) {
        (false, true) if is_tag => format!("Tagged {}", added.join(", ")),
        (true, false) if is_tag => format!("Tag removed: {}", removed.join(", ")),
        (false, true) => format!("Added to {}", nouns(&added)),
        (true, false) => format!("Removed from {}", nouns(&removed)),
        (false, false) if is_tag => format!(
            "Tagged {}; tag removed: {}",
            added.join(", "),
            removed.join(", ")
        ),
        (false, false) => format!(
            "Added to {}; removed from {}",
            nouns(&added),
            nouns(&removed)
        ),
        (true, true) => format!("{} changed", capitalize(noun)),
    }
}

/// The members of a list value, as text (group objects by name, key or id).
fn members(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().map(member_name).collect(),
        Value::Null => Vec::new(),
        other => vec![member_name(other)],
    }
}

fn member_name(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(_) => [
            "/customerGroup/name",
            "/customerGroup/key",
            "/name",
            "/key",
            "/customerGroupId",
            "/id",
        ]
        .iter()
        .find_map(|p| v.pointer(p).and_then(Value::as_str))
        .map_or_else(|| "a group".to_string(), str::to_string),
        other => other.to_string(),
    }
}

/// Well-known tier names, lowest first, for "moved up" vs "moved down".
const TIERS: &[&str] = &[
    "basic", "bronze", "silver", "gold", "platinum", "diamond", "black", "vip",
];

fn tier_phrase(old: &Value, new: &Value) -> String {
    let (Some(new_name), old_name) = (tier_text(new), tier_text(old)) else {
        return "Loyalty tier removed".to_string();
    };
    let Some(old_name) = old_name else {
        return format!("Loyalty tier set to {}", tier_display(&new_name));
    };
    let rank = |t: &str| TIERS.iter().position(|x| x.eq_ignore_ascii_case(t));
    let (o, n) = (tier_display(&old_name), tier_display(&new_name));
    match (rank(&old_name), rank(&new_name)) {
        (Some(a), Some(b)) if b > a => format!("Moved up from {o} to {n}"),
        (Some(a), Some(b)) if b < a => format!("Moved down from {o} to {n}"),
        _ => format!("Loyalty tier changed from {o} to {n}"),
    }
}

fn tier_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(_) => v.get("name").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// `silver` → "Silver", `vip` → "VIP", `gold_plus` → "Gold plus".
fn tier_display(t: &str) -> String {
    if t.eq_ignore_ascii_case("vip") {
        return "VIP".to_string();
    }
    if t.chars().any(char::is_uppercase) {
        return t.to_string();
    }
    capitalize(&t.replace(['_', '-'], " "))
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/// A value as staff read it. Times in canonical time fields read as dates.
fn show(field: &str, v: &Value) -> String {
    match v {
        Value::Null => "nothing".to_string(),
        Value::Bool(true) => "yes".to_string(),
        Value::Bool(false) => "no".to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if field.ends_with("_at") => when(s).unwrap_or_else(|| shorten(s)),
        Value::String(s) => shorten(s),
        Value::Array(items) if items.is_empty() => "none".to_string(),
        Value::Array(items) => items
            .iter()
            .map(|i| shorten(&member_name(i)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(_) => member_name(v),
    }
}

fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let cut: String = s.chars().take(MAX - 1).collect();
        format!("{cut}…")
    }
}

/// A time as "3 Mar 2024 10:00", in the zone it was written in (an appointment at 10:00 in
/// the salon reads 10:00); offset-less times as written.
fn when(s: &str) -> Option<String> {
    const FORMAT: &str = "%-d %b %Y %H:%M";
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Some(t.format(FORMAT).to_string());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s.trim(), f) {
            return Some(t.format(FORMAT).to_string());
        }
    }
    crate::time::parse_time_str(s).map(|t| t.format(FORMAT).to_string())
}

/// A whole number (points), from a number or numeric text.
fn count(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 9e15)
                .map(|f| f.round() as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// 2500 → "2,500".
fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn plural(n: i64, word: &str) -> String {
    if n.abs() == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

/// " (45.50 EUR)" from the first amount and currency in `details`, or nothing.
fn money_note(event: &SourceEvent) -> String {
    let amount = ["total", "amount", "totalAmount", "total_amount", "price"]
        .iter()
        .find_map(|k| event.details.get(*k))
        .and_then(money);
    let currency = detail_text(event, &["currency", "currencyCode"]);
    match (amount, currency) {
        (Some(a), Some(c)) => format!(" ({a} {})", c.to_uppercase()),
        (Some(a), None) => format!(" ({a})"),
        _ => String::new(),
    }
}

fn money(v: &Value) -> Option<String> {
    let f = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !f.is_finite() || f.abs() >= 1e15 {
        return None;
    }
    let whole = f.trunc() as i64;
    let cents = ((f - f.trunc()).abs() * 100.0).round() as i64;
    if cents == 0 {
        Some(grouped(whole))
    } else {
        let sign = if f < 0.0 && whole == 0 { "-" } else { "" };
        Some(format!("{sign}{}.{cents:02}", grouped(whole)))
    }
}

fn detail_text(event: &SourceEvent, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match event.details.get(*k)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(_) => event.details[*k]
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    })
}

fn detail_count(event: &SourceEvent, keys: &[&str]) -> Option<i64> {
    keys.iter()
        .find_map(|k| event.details.get(*k).and_then(count))
}

fn detail_when(event: &SourceEvent, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| event.details.get(*k).and_then(Value::as_str).and_then(when))
}

/// The last word of an event type: `order.completed` → `completed`, `coupon.used` → `used`,
/// `appointment/updated` → `updated`.
fn action_of(event_type: &str) -> &str {
    event_type.rsplit(['.', '/']).next().unwrap_or("")
}

/// Lower-cases the first letter unless the first word is an acronym ("SMS marketing").
fn decapitalize(s: &str) -> String {
    let first_word = s.split(' ').next().unwrap_or("");
    if first_word.chars().filter(|c| c.is_alphabetic()).count() > 1
        && first_word
            .chars()
            .filter(|c| c.is_alphabetic())
            .all(char::is_uppercase)
    {
        return s.to_string();
    }
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
