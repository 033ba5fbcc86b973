//! What the Connect flow tells staff about each provider: where its secret is, where to paste
//! Clientele's address, which events to tick, and what Clientele checks. The words follow each
//! provider's own settings screens (see `docs/providers.md`).

use super::Operations;
use clientele_core::Provider;
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
    pub events_to_tick: Vec<String>,
    pub checks: String,
}

/// Setup help per provider, in the provider's own words.
fn provider_info(p: Provider) -> ProviderInfo {
    let (find, paste, events): (&str, &str, &[&str]) = match p {
        Provider::Tiquo => (
            "In Tiquo, open Settings → Webhooks and copy the endpoint's signing secret.",
            "Tiquo → Settings → Webhooks → Add endpoint",
            &["customer.created", "customer.updated", "customer.deleted"],
        ),
        Provider::Resdiary => (
            "In ResDiary, open the customer webhook settings and copy the signing key (optional in ResDiary, but recommended).",
            "ResDiary → Settings → Integrations → Customer webhooks",
            &[
                "Customer Created",
                "Customer Deleted",
                "Contact Details Changed",
                "Marketing Opt-ins Changed",
            ],
        ),
        Provider::Vagaro => (
            "In Vagaro, open Settings → Developers → Webhooks and copy the verification token.",
            "Vagaro → Settings → Developers → Webhooks",
            &["Customer"],
        ),
        Provider::Plain => (
            "In Plain, open Settings → Webhooks, and copy the request signing secret.",
            "Plain → Settings → Webhooks → Add webhook target",
            &[
                "Customer created",
                "Customer updated",
                "Customer deleted",
                "Customer group membership changed",
            ],
        ),
        Provider::Zupy => (
            "In Zupy's admin panel, open the webhook settings and copy the signing secret.",
            "Zupy admin → Integrations → Webhooks",
            &["customer.*", "tier.*", "points.*"],
        ),
        Provider::Standard => (
            "Copy the secret that starts with whsec_ from the sending system's webhook settings.",
            "The sending system's webhook settings",
            &["Any customer events"],
        ),
    };
    let checks = match p {
        Provider::Vagaro => {
            "Clientele checks that each message carries your Vagaro verification token."
        }
        Provider::Resdiary => {
            "Clientele checks each message's signature with your ResDiary signing key."
        }
        _ => {
            "Clientele checks each message's signature with your signing secret, and refuses old messages replayed later."
        }
    };
    ProviderInfo {
        id: p,
        name: p.display_name().into(),
        secret_word: p.secret_word().into(),
        where_to_find_secret: find.into(),
        where_to_paste: paste.into(),
        events_to_tick: events.iter().map(|e| e.to_string()).collect(),
        checks: checks.into(),
    }
}

impl Operations {
    pub fn providers(&self) -> Vec<ProviderInfo> {
        Provider::ALL.into_iter().map(provider_info).collect()
    }
}
