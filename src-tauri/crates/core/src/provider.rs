//! The providers Clientele understands, and the per-connection settings their adapters need.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use ts_rs::TS;

/// A webhook sender. The lowercase id is what appears in URLs (`/hooks/{provider}/{connection}`),
/// the command line and the keychain account; the UI sees it as the union type `ProviderId`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export, rename = "ProviderId")]
pub enum Provider {
    Tiquo,
    Resdiary,
    Vagaro,
    Plain,
    Zupy,
    Standard,
}

impl Provider {
    pub const ALL: [Provider; 6] = [
        Provider::Tiquo,
        Provider::Resdiary,
        Provider::Vagaro,
        Provider::Plain,
        Provider::Zupy,
        Provider::Standard,
    ];

    /// The id used in URLs, the command line and storage.
    pub fn id(self) -> &'static str {
        match self {
            Provider::Tiquo => "tiquo",
            Provider::Resdiary => "resdiary",
            Provider::Vagaro => "vagaro",
            Provider::Plain => "plain",
            Provider::Zupy => "zupy",
            Provider::Standard => "standard",
        }
    }

    /// The provider's own name, as staff know it.
    pub fn display_name(self) -> &'static str {
        match self {
            Provider::Tiquo => "Tiquo",
            Provider::Resdiary => "ResDiary",
            Provider::Vagaro => "Vagaro",
            Provider::Plain => "Plain",
            Provider::Zupy => "Zupy",
            Provider::Standard => "Standard Webhooks",
        }
    }

    /// The display name for an id that may not be a provider's (a refused request can name
    /// anything): the provider's own name when it is one, else the id as it was sent.
    pub fn name_for_id(id: &str) -> String {
        id.parse::<Provider>()
            .map_or_else(|_| id.to_string(), |p| p.display_name().to_string())
    }

    /// What the provider calls the shared secret, in its own words.
    pub fn secret_word(self) -> &'static str {
        match self {
            Provider::Vagaro => "verification token",
            _ => "signing secret",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider '{0}' (known: tiquo, resdiary, vagaro, plain, zupy, standard)")]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::ALL
            .into_iter()
            .find(|p| p.id().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownProvider(s.to_string()))
    }
}

/// Settings of one connection that change how its deliveries are checked or read. Stored as JSON
/// in the connection row; never holds the secret itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectionSettings {
    /// Standard Webhooks: JSON pointer to the customer id in the body (default `/data/id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_ref_pointer: Option<String>,
    /// Optional allow-list of sender addresses (Vagaro publishes its own). Empty: any address.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_ips: Vec<IpAddr>,
    /// When the provider deletes a customer: `None` keeps their history (the default); `Some(n)`
    /// forgets them for good `n` days after the deletion (0: at once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forget_deleted_after_days: Option<u32>,
}

impl ConnectionSettings {
    pub const DEFAULT_CUSTOMER_REF_POINTER: &'static str = "/data/id";

    pub fn customer_ref_pointer(&self) -> &str {
        self.customer_ref_pointer
            .as_deref()
            .unwrap_or(Self::DEFAULT_CUSTOMER_REF_POINTER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_ignore_case() {
        for p in Provider::ALL {
            assert_eq!(p.id().parse::<Provider>().unwrap(), p);
            assert_eq!(p.id().to_uppercase().parse::<Provider>().unwrap(), p);
        }
        assert!("stripe".parse::<Provider>().is_err());
    }
}
