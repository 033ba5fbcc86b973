//! What the Connect flow tells staff about each provider: where its secret is, where to paste
//! Clientele's address, which events to tick, and what Clientele checks. The words follow each
//! provider's own settings screens (see `docs/providers.md`).

use super::Operations;
use clientele_core::{Provider, providers};
use serde::Serialize;
use ts_rs::TS;

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ProviderInfo {
    pub id: Provider,
    pub name: String,
    pub secret_word: String,
    pub where_to_find_secret: String,
    pub where_to_paste: String,
    /// The provider's own names for the customer events: what every connection needs.
    pub events_to_tick: Vec<String>,
    /// More events that belong on a customer's timeline (orders, payments, points,
    /// appointments), for a fuller one.
    pub timeline_events: Vec<String>,
    /// A word about the events, when one is needed (which generation shows which names).
    pub events_note: Option<String>,
    /// What Clientele checks on each message, exactly as it does (see [`checks`]).
    pub checks: String,
}

/// Which events to tick in `p`'s settings, in its own words: the customer events, the events
/// for a fuller timeline, and a note. The README's table says the same; a test holds them
/// together.
fn events(
    p: Provider,
) -> (
    &'static [&'static str],
    &'static [&'static str],
    Option<&'static str>,
) {
    match p {
        Provider::Tiquo => (
            &["customer.created", "customer.updated", "customer.deleted"],
            &[
                "order.created",
                "order.updated",
                "order.confirmed",
                "order.completed",
                "order.cancelled",
                "payment.succeeded",
                "payment.failed",
                "payment.refunded",
                "loyalty.points_earned",
                "loyalty.points_redeemed",
                "loyalty.tier_changed",
            ],
            None,
        ),
        Provider::Resdiary => (
            &[
                "Customer Created",
                "Customer Deleted",
                "Contact Details Changed",
                "Marketing Opt-ins Changed",
            ],
            &[],
            None,
        ),
        Provider::Vagaro => (&["Customer"], &["Appointment"], None),
        Provider::Plain => (
            &[
                "Customer created",
                "Customer updated",
                "Customer deleted",
                "Customer group membership changed",
            ],
            &[],
            None,
        ),
        Provider::Zupy => (
            &[
                "customer.enrolled",
                "customer.tier_changed",
                "customer.registered",
                "tier.upgraded",
            ],
            &[
                "points.earned",
                "points.spent",
                "reward.redeemed",
                "coupon.used",
                "coupon.cancelled",
                "coupon.expiring",
                "coupon.expired",
            ],
            Some(
                "Accounts set up before 2026 show the last two instead of the first two; one connection takes both.",
            ),
        ),
        Provider::Standard => (
            &[],
            &[],
            Some("Choose the sending system's events about customers."),
        ),
    }
}

/// What Clientele checks on each of `p`'s messages — worded from what its check does
/// ([`providers::replay_window_secs`]), so no card claims a protection the code lacks.
pub fn checks(p: Provider) -> String {
    let signature = match p {
        Provider::Vagaro => {
            "Clientele checks that each message carries your Vagaro verification token".to_string()
        }
        Provider::Resdiary => {
            "Clientele checks each message's signature with your ResDiary signing key".to_string()
        }
        Provider::Standard => {
            "Clientele checks each message's signature with the sender's whsec_ secret".to_string()
        }
        _ => format!(
            "Clientele checks each message's signature with your {} {}",
            p.display_name(),
            p.secret_word()
        ),
    };
    match providers::replay_window_secs(p) {
        Some(secs) => format!(
            "{signature}, and refuses one sent more than {} minutes earlier (a possible replay).",
            secs / 60
        ),
        None => format!("{signature}. A message sent twice is kept once."),
    }
}

/// Setup help per provider, in the provider's own words.
fn provider_info(p: Provider) -> ProviderInfo {
    let (find, paste): (&str, &str) = match p {
        Provider::Tiquo => (
            "In Tiquo, open Settings → Webhooks and copy the endpoint's signing secret.",
            "Tiquo → Settings → Webhooks → Add endpoint",
        ),
        Provider::Resdiary => (
            "In ResDiary, open the customer webhook settings and copy the signing key (optional in ResDiary, but recommended).",
            "ResDiary → Settings → Integrations → Customer webhooks",
        ),
        Provider::Vagaro => (
            "In Vagaro, open Settings → Developers → Webhooks and copy the verification token.",
            "Vagaro → Settings → Developers → Webhooks",
        ),
        Provider::Plain => (
            "In Plain, open Settings → Webhooks, and copy the request signing secret.",
            "Plain → Settings → Webhooks → Add webhook target",
        ),
        Provider::Zupy => (
            "In Zupy's admin panel, open the webhook settings and copy the signing secret.",
            "Zupy admin → Integrations → Webhooks",
        ),
        Provider::Standard => (
            "Copy the secret that starts with whsec_ from the sending system's webhook settings.",
            "The sending system's webhook settings",
        ),
    };
    let (tick, timeline, note) = events(p);
    let owned = |list: &[&str]| list.iter().map(|e| e.to_string()).collect();
    ProviderInfo {
        id: p,
        name: p.display_name().into(),
        secret_word: p.secret_word().into(),
        where_to_find_secret: find.into(),
        where_to_paste: paste.into(),
        events_to_tick: owned(tick),
        timeline_events: owned(timeline),
        events_note: note.map(str::to_string),
        checks: checks(p),
    }
}

impl Operations {
    pub fn providers(&self) -> Vec<ProviderInfo> {
        Provider::ALL.into_iter().map(provider_info).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's "Events to tick" cell for `info`: the same lists, names that are code
    /// (`customer.created`) in backticks.
    fn readme_cell(info: &ProviderInfo) -> String {
        let shown = |e: &String| {
            if e.contains(['.', '_', '*']) {
                format!("`{e}`")
            } else {
                e.clone()
            }
        };
        let list = |l: &[String]| l.iter().map(shown).collect::<Vec<_>>().join(", ");
        let mut cell = list(&info.events_to_tick);
        if !info.timeline_events.is_empty() {
            cell.push_str("; for a fuller timeline also ");
            cell.push_str(&list(&info.timeline_events));
        }
        if let Some(note) = &info.events_note {
            if !cell.is_empty() {
                cell.push_str(". ");
            }
            cell.push_str(note);
        }
        cell
    }

    /// The README's table and the Connect flow recommend the same events: one source (this
    /// module), and this test fails — printing the cell to paste — when the README differs.
    #[test]
    fn the_readme_lists_the_events_the_connect_flow_asks_for() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../README.md");
        let readme = std::fs::read_to_string(&path).expect("the README");
        for p in Provider::ALL {
            let info = provider_info(p);
            let start = format!("| **{}** |", info.name);
            let row = readme
                .lines()
                .find(|l| l.starts_with(&start))
                .unwrap_or_else(|| {
                    panic!("the README's provider table has no row for {}", info.name)
                });
            let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 4, "{row}");
            let expected = readme_cell(&info);
            assert_eq!(
                cells[3], expected,
                "README.md's \"Events to tick\" for {} differs from ops/providers.rs; it should read:\n{expected}",
                info.name
            );
        }
    }

    #[test]
    fn every_card_claims_only_what_its_check_does() {
        for p in Provider::ALL {
            let said = checks(p);
            let window = providers::replay_window_secs(p);
            assert_eq!(
                said.contains("replay"),
                window.is_some(),
                "{p}: {said} (window: {window:?})"
            );
            if window.is_none() {
                assert!(said.contains("kept once"), "{p}: {said}");
            }
        }
        assert_eq!(
            checks(Provider::Zupy),
            "Clientele checks each message's signature with your Zupy signing secret. A message sent twice is kept once."
        );
        assert!(checks(Provider::Tiquo).contains("more than 5 minutes"));
    }

    #[test]
    fn the_fuller_timeline_events_are_those_the_adapters_read() {
        // Tiquo's order, payment and loyalty events and Vagaro's appointments are read onto
        // the timeline; ResDiary and Plain send only customer events.
        let tiquo = provider_info(Provider::Tiquo);
        for group in ["order.", "payment.", "loyalty."] {
            assert!(
                tiquo.timeline_events.iter().any(|e| e.starts_with(group)),
                "{group}"
            );
        }
        assert_eq!(
            provider_info(Provider::Vagaro).timeline_events,
            ["Appointment"]
        );
        assert!(provider_info(Provider::Resdiary).timeline_events.is_empty());
    }
}
