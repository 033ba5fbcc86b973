//! Business names: Vagaro sends each customer's `businessIds` (`U2FsdGVkX18z…`) and never a
//! name. Staff name them on the Person screen or in Settings, and every sentence, profile value
//! and change that shows an id shows its name instead. Names are applied as the screens read, so
//! naming a business changes what every screen says at once, with nothing to re-read.

use super::{Operations, provider};
use crate::error::ApiResult;
use clientele_core::Provider;
use serde::Serialize;
use std::collections::BTreeMap;
use ts_rs::TS;

/// The profile field holding a customer's business ids.
pub(crate) const BUSINESS_IDS_FIELD: &str = "vagaro.businessIds";

/// One business id, with the name staff gave it.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct BusinessView {
    pub provider: Provider,
    pub id: String,
    pub name: Option<String>,
    /// How many customer records list it now.
    #[ts(type = "number")]
    pub customers: i64,
}

/// The names of one provider's businesses, applied to what the screens show.
#[derive(Debug, Clone, Default)]
pub(crate) struct BusinessNames {
    provider: Option<Provider>,
    names: BTreeMap<String, String>,
}

impl BusinessNames {
    /// The names staff gave to Vagaro's businesses (the one provider that sends business ids).
    pub(crate) fn load(reader: &clientele_store::Reader) -> ApiResult<BusinessNames> {
        Ok(BusinessNames {
            provider: Some(Provider::Vagaro),
            names: reader.business_names(Provider::Vagaro)?,
        })
    }

    pub(crate) fn name(&self, provider: Provider, id: &str) -> Option<&str> {
        (self.provider == Some(provider))
            .then(|| self.names.get(id).map(String::as_str))
            .flatten()
    }

    /// `sentence` with every named business id of `provider` replaced by its name, where the id
    /// stands as a whole word ("Removed from business U2FsdGVkX18z…" → "Removed from business
    /// Salon Uptown"; "Added to businesses b1, b2"). Other providers' sentences are unchanged.
    pub(crate) fn in_sentence(&self, provider: Provider, sentence: &str) -> String {
        if self.provider != Some(provider) || self.names.is_empty() {
            return sentence.to_string();
        }
        let mut out = String::with_capacity(sentence.len());
        let mut rest = sentence;
        'scan: while !rest.is_empty() {
            let at_word_start = out.is_empty() || out.ends_with([' ', ',', '(', ';']);
            if at_word_start {
                for (id, name) in &self.names {
                    if let Some(after) = rest.strip_prefix(id.as_str())
                        && (after.is_empty() || after.starts_with([' ', ',', ')', ';', '.']))
                    {
                        out.push_str(name);
                        rest = after;
                        continue 'scan;
                    }
                }
            }
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                out.push(c);
            }
            rest = chars.as_str();
        }
        out
    }

    /// A list of business ids as the screens show it: each one's name, or the id.
    pub(crate) fn in_list(
        &self,
        provider: Provider,
        value: &serde_json::Value,
    ) -> serde_json::Value {
        match value {
            serde_json::Value::Array(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(
                        |item| match item.as_str().and_then(|id| self.name(provider, id)) {
                            Some(name) => serde_json::Value::String(name.to_string()),
                            None => item.clone(),
                        },
                    )
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

impl Operations {
    /// One provider's business ids that customers' records list or that staff named: named
    /// ones first, then the most used.
    pub fn businesses(&self, provider_id: &str) -> ApiResult<Vec<BusinessView>> {
        let provider = provider(provider_id)?;
        Ok(self
            .store
            .reader()?
            .businesses(provider)?
            .into_iter()
            .map(|b| BusinessView {
                provider,
                id: b.id,
                name: b.name,
                customers: b.customers,
            })
            .collect())
    }

    /// Names one of a provider's business ids (an empty name forgets it).
    pub fn name_business(&self, provider_id: &str, id: &str, name: &str) -> ApiResult<()> {
        let provider = provider(provider_id)?;
        Ok(self.store.writer()?.set_business_name(provider, id, name)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names() -> BusinessNames {
        BusinessNames {
            provider: Some(Provider::Vagaro),
            names: BTreeMap::from([
                ("b1".to_string(), "Salon Uptown".to_string()),
                ("U2FsdGVkX18z".to_string(), "Downtown".to_string()),
            ]),
        }
    }

    #[test]
    fn named_ids_read_as_names_only_as_whole_words_of_their_provider() {
        let n = names();
        let v = Provider::Vagaro;
        assert_eq!(
            n.in_sentence(v, "Removed from business U2FsdGVkX18z"),
            "Removed from business Downtown"
        );
        assert_eq!(
            n.in_sentence(
                v,
                "Added to businesses b1, b2; removed from business U2FsdGVkX18z"
            ),
            "Added to businesses Salon Uptown, b2; removed from business Downtown"
        );
        // Part of another word, or another provider's sentence: unchanged.
        assert_eq!(
            n.in_sentence(v, "Added to business b10"),
            "Added to business b10"
        );
        assert_eq!(n.in_sentence(v, "Tagged ab1"), "Tagged ab1");
        assert_eq!(n.in_sentence(Provider::Tiquo, "Tagged b1"), "Tagged b1");
        assert_eq!(
            n.in_list(v, &json!(["b1", "b2"])),
            json!(["Salon Uptown", "b2"])
        );
    }
}
