//! Customer field names: the canonical set every adapter maps onto, readable labels for staff,
//! and which fields are sensitive or merely bookkeeping.
//!
//! A field is either a **canonical** name from `docs/providers.md` (`email`, `loyalty_points`,
//! …) or a **provider-specific path** `"<provider>.<key as sent>"` (`vagaro.businessIds`,
//! `zupy.cpf`, `resdiary.CustomerFooChanged`) for anything without a canonical home, so nothing a
//! provider sends becomes unreachable. Staff never see either form raw: [`label`] turns both into
//! words.

/// The canonical customer fields (the minimum set in `docs/providers.md`).
pub const CANONICAL: &[&str] = &[
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "company",
    "title",
    "street_address",
    "city",
    "region_code",
    "region_name",
    "postal_code",
    "country_code",
    "country_name",
    "email_marketing_opt_in",
    "sms_marketing_opt_in",
    "loyalty_points",
    "loyalty_tier",
    "tags",
    "created_at",
    "updated_at",
    "deleted_at",
];

/// Labels that the generic rule would get wrong or make clumsy.
const LABELS: &[(&str, &str)] = &[
    ("email_marketing_opt_in", "Email marketing"),
    ("sms_marketing_opt_in", "SMS marketing"),
    ("created_at", "Created"),
    ("updated_at", "Last updated"),
    ("deleted_at", "Deleted"),
    ("resdiary.RelatedProviderId", "Restaurant ID"),
    ("vagaro.businessIds", "Businesses"),
    ("vagaro.businessGroupId", "Business group"),
    ("plain.markedAsSpamAt", "Marked as spam"),
    ("plain.customerGroupMemberships", "Customer groups"),
    ("plain.email.isVerified", "Email verified"),
    ("plain.email.verifiedAt", "Email verified on"),
    ("zupy.cpf", "CPF (tax ID)"),
    ("zupy.program_id", "Loyalty programme"),
];

/// Words kept in capitals when a label is built from a key.
const ACRONYMS: &[&str] = &[
    "id", "ids", "sms", "cpf", "url", "ip", "vip", "api", "ssn", "vat",
];

/// Last path segments that hold a national id or similar: never shown in a sentence, never
/// exported unless a mapping asks for them.
const SENSITIVE_KEYS: &[&str] = &[
    "cpf",
    "cnpj",
    "ssn",
    "tax_id",
    "taxid",
    "national_id",
    "nationalid",
    "passport",
    "passport_number",
];

/// Fields that change as a side effect of other changes (who/when of an edit, opt-in wording and
/// dates). They are kept and shown on expand, but a timeline sentence names them only when
/// nothing else changed.
const MINOR: &[&str] = &[
    "created_at",
    "updated_at",
    "plain.createdBy",
    "plain.updatedBy",
    "plain.markedAsSpamBy",
    "plain.email.verifiedAt",
    "vagaro.createdBy",
    "vagaro.modifiedBy",
];

/// Whether `field` is one of [`CANONICAL`].
pub fn is_canonical(field: &str) -> bool {
    CANONICAL.contains(&field)
}

/// Splits a provider-specific path into `(provider id, key as sent)`.
pub fn provider_path(field: &str) -> Option<(&str, &str)> {
    field.split_once('.')
}

/// A readable label: `"loyalty_points"` → "Loyalty points", `"email"` → "Email",
/// `"resdiary.ReceiveGroupEmailMarketing"` → "Email marketing (group)",
/// `"vagaro.dayPhone"` → "Day phone".
pub fn label(field: &str) -> String {
    if let Some((_, l)) = LABELS.iter().find(|(f, _)| *f == field) {
        return (*l).to_string();
    }
    if let Some(consent) = resdiary_consent(field) {
        return consent.label();
    }
    let key = match provider_path(field) {
        Some((_, key)) => key,
        None => field,
    };
    humanize(key)
}

/// Whether values of `field` must stay out of sentences, logs and default exports (national ids
/// such as Zupy's `cpf`).
pub fn is_sensitive(field: &str) -> bool {
    let last = field.rsplit('.').next().unwrap_or(field);
    SENSITIVE_KEYS.iter().any(|k| last.eq_ignore_ascii_case(k))
}

/// Whether `field` is bookkeeping that only matters when nothing else changed (see the `MINOR` list),
/// including ResDiary's opt-in wording and opt-in dates.
pub fn is_minor(field: &str) -> bool {
    MINOR.contains(&field) || resdiary_consent(field).is_some_and(|c| c.part != ConsentPart::Flag)
}

/// Whether `field` is something ResDiary reported that Clientele has no mapping for: a change
/// type kept verbatim as `resdiary.<ChangeType>`, or a customer key ResDiary added since. ResDiary
/// publishes neither list, so these get their own sentence instead of a guessed label.
pub fn is_unknown_change(field: &str) -> bool {
    match provider_path(field) {
        Some(("resdiary", key)) => {
            !KNOWN_RESDIARY_KEYS.contains(&key) && resdiary_consent(field).is_none()
        }
        _ => false,
    }
}

/// ResDiary customer keys with no canonical field that Clientele knows (besides the twelve
/// consent keys).
const KNOWN_RESDIARY_KEYS: &[&str] = &["RelatedProviderId"];

/// A marketing channel a consent field is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn word(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "SMS",
        }
    }
}

/// If `field` is a yes/no marketing consent, its channel and (for ResDiary) its scope
/// (`"group"` or `"restaurant"`).
pub fn consent(field: &str) -> Option<(Channel, Option<&'static str>)> {
    match field {
        "email_marketing_opt_in" => Some((Channel::Email, None)),
        "sms_marketing_opt_in" => Some((Channel::Sms, None)),
        _ => resdiary_consent(field)
            .filter(|c| c.part == ConsentPart::Flag)
            .map(|c| (c.channel, Some(c.scope))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConsentPart {
    Flag,
    Date,
    Text,
}

#[derive(Debug, Clone, Copy)]
struct ResdiaryConsent {
    scope: &'static str,
    channel: Channel,
    part: ConsentPart,
}

impl ResdiaryConsent {
    fn label(self) -> String {
        let channel = match self.channel {
            Channel::Email => "Email",
            Channel::Sms => "SMS",
        };
        let what = match self.part {
            ConsentPart::Flag => "marketing",
            ConsentPart::Date => "marketing opt-in date",
            ConsentPart::Text => "marketing opt-in wording",
        };
        format!("{channel} {what} ({})", self.scope)
    }
}

/// Recognises ResDiary's twelve consent keys: `Receive{Group|Restaurant}{Email|Sms}Marketing` and
/// `{Group|Restaurant}{Email|Sms}MarketingOptIn{DateTime|Text}`.
fn resdiary_consent(field: &str) -> Option<ResdiaryConsent> {
    let key = field.strip_prefix("resdiary.")?;
    let (rest, part) = if let Some(r) = key.strip_prefix("Receive") {
        (r.strip_suffix("Marketing")?, ConsentPart::Flag)
    } else if let Some(r) = key.strip_suffix("MarketingOptInDateTime") {
        (r, ConsentPart::Date)
    } else if let Some(r) = key.strip_suffix("MarketingOptInText") {
        (r, ConsentPart::Text)
    } else {
        return None;
    };
    let (scope, channel) = match rest {
        "GroupEmail" => ("group", Channel::Email),
        "GroupSms" => ("group", Channel::Sms),
        "RestaurantEmail" => ("restaurant", Channel::Email),
        "RestaurantSms" => ("restaurant", Channel::Sms),
        _ => return None,
    };
    Some(ResdiaryConsent {
        scope,
        channel,
        part,
    })
}

/// `businessGroupId` → "Business group ID", `qualification_value` → "Qualification value",
/// `email.isVerified` → "Email is verified".
fn humanize(key: &str) -> String {
    let words = split_words(key);
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let lower = w.to_lowercase();
        if ACRONYMS.contains(&lower.as_str()) {
            out.push_str(&acronym(&lower));
        } else if i == 0 {
            out.push_str(&capitalize(&lower));
        } else {
            out.push_str(&lower);
        }
    }
    if out.is_empty() { key.to_string() } else { out }
}

fn acronym(lower: &str) -> String {
    match lower {
        "ids" => "IDs".to_string(),
        other => other.to_uppercase(),
    }
}

/// Splits `snake_case`, `kebab-case`, dotted paths, `camelCase` and `PascalCase` (keeping runs of
/// capitals such as `VIPLevel` → `VIP`, `Level` together).
fn split_words(key: &str) -> Vec<String> {
    let chars: Vec<char> = key.chars().collect();
    let mut words = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if matches!(c, '_' | '-' | '.' | ' ' | '/') {
            push_word(&mut words, &mut cur);
            continue;
        }
        let prev = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
        let next = chars.get(i + 1).copied();
        let boundary = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
            });
        if boundary {
            push_word(&mut words, &mut cur);
        }
        cur.push(c);
    }
    push_word(&mut words, &mut cur);
    words
}

fn push_word(words: &mut Vec<String>, cur: &mut String) {
    if !cur.is_empty() {
        words.push(std::mem::take(cur));
    }
}

/// Upper-cases the first character.
pub(crate) fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_labels() {
        assert_eq!(label("loyalty_points"), "Loyalty points");
        assert_eq!(label("email"), "Email");
        assert_eq!(label("first_name"), "First name");
        assert_eq!(label("sms_marketing_opt_in"), "SMS marketing");
        assert_eq!(label("region_code"), "Region code");
        assert_eq!(CANONICAL.len(), 22);
        for f in CANONICAL {
            assert!(is_canonical(f));
            assert!(!label(f).contains('_'), "{f}");
        }
    }

    #[test]
    fn provider_paths_read_as_words() {
        assert_eq!(label("vagaro.dayPhone"), "Day phone");
        assert_eq!(label("vagaro.businessIds"), "Businesses");
        assert_eq!(label("plain.externalId"), "External ID");
        assert_eq!(label("plain.markedAsSpamAt"), "Marked as spam");
        assert_eq!(
            label("resdiary.ReceiveGroupEmailMarketing"),
            "Email marketing (group)"
        );
        assert_eq!(
            label("resdiary.RestaurantSmsMarketingOptInText"),
            "SMS marketing opt-in wording (restaurant)"
        );
        assert_eq!(label("resdiary.CustomerFooChanged"), "Customer foo changed");
        assert_eq!(label("zupy.cpf"), "CPF (tax ID)");
        assert_eq!(label("zupy.qualification_value"), "Qualification value");
        assert_eq!(label("standard.VIPLevel"), "VIP level");
        assert_eq!(
            label("standard.loyalty-card2Number"),
            "Loyalty card2 number"
        );
    }

    #[test]
    fn sensitivity() {
        assert!(is_sensitive("zupy.cpf"));
        assert!(is_sensitive("standard.customer.ssn"));
        assert!(!is_sensitive("email"));
        assert!(!is_sensitive("zupy.company_id"));
    }

    #[test]
    fn consent_fields() {
        assert_eq!(
            consent("email_marketing_opt_in"),
            Some((Channel::Email, None))
        );
        assert_eq!(
            consent("resdiary.ReceiveRestaurantSmsMarketing"),
            Some((Channel::Sms, Some("restaurant")))
        );
        assert_eq!(consent("resdiary.GroupSmsMarketingOptInText"), None);
        assert!(is_minor("resdiary.GroupSmsMarketingOptInText"));
        assert!(is_minor("updated_at"));
        assert!(!is_minor("resdiary.ReceiveGroupSmsMarketing"));
        assert!(is_unknown_change("resdiary.CustomerFooChanged"));
        assert!(!is_unknown_change("resdiary.ReceiveGroupSmsMarketing"));
        assert!(!is_unknown_change("phone"));
    }
}
