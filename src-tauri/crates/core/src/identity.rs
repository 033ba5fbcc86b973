//! Identity keys: the normalized email addresses and phone numbers that link source profiles from
//! different providers into one person.
//!
//! A key must be *plausible* before it may link anyone: ResDiary's own sample carries
//! `MobileNumber: "3"`, booking tools are full of `noemail@…` placeholders, and a wrong link merges
//! two customers' histories. So emails are checked for shape and known placeholders, and phones
//! are parsed and validated by `phonenumber` (libphonenumber's metadata), never by a regex.

use phonenumber::country;

use phonenumber::Mode;
/// A country for phone numbers written without a country code.
pub use phonenumber::country::Id as CountryId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// What kind of value links two profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    Email,
    Phone,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Email => "email",
            KeyKind::Phone => "phone",
        }
    }

    pub fn parse(s: &str) -> Option<KeyKind> {
        match s {
            "email" => Some(KeyKind::Email),
            "phone" => Some(KeyKind::Phone),
            _ => None,
        }
    }
}

/// One normalized identity key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IdentityKey {
    pub kind: KeyKind,
    pub value: String,
}

impl fmt::Display for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.value)
    }
}

/// Local parts (or whole values) that booking tools use when a customer gave no address.
const PLACEHOLDER_LOCAL_PARTS: &[&str] = &[
    "none",
    "noemail",
    "no-email",
    "no.email",
    "no_email",
    "nomail",
    "noreply",
    "no-reply",
    "donotreply",
    "do-not-reply",
    "null",
    "na",
    "n/a",
    "unknown",
    "test",
    "email",
    "nobody",
];

/// Trimmed, lower-cased email when it is a plausible address, else `None`.
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let plausible = !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    let placeholder = PLACEHOLDER_LOCAL_PARTS.contains(&local);
    (plausible && !placeholder).then_some(email)
}

/// Parses a default country code such as `GB` or `us`.
pub fn parse_country(code: &str) -> Option<country::Id> {
    code.trim().to_uppercase().parse().ok()
}

/// A parsed, valid phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    /// `+447911123456`
    pub e164: String,
    /// The national significant number's digits, `7911123456`: what people type when searching.
    pub national_digits: String,
    /// The number as written in its own country (`07911 123456`).
    pub national: String,
}

/// Parses `raw` as a phone number, using `default_country` for numbers written without a country
/// code. Only numbers that libphonenumber considers valid are returned.
///
/// Results are remembered (a bounded memo shared by every thread): validating a number with
/// libphonenumber runs dozens of regular expressions, and the same numbers come back again and
/// again — an export formats a person's phone on every row of their timeline, derivation reads a
/// profile's number each time its email, phone or country changes, and a derivation that
/// parses deliveries on one thread and folds them on another asks about the same numbers on
/// both. The answer depends only on the arguments, so remembering it changes nothing.
pub fn parse_phone(raw: &str, default_country: Option<country::Id>) -> Option<Phone> {
    let (country, key) = memo_key(raw, default_country);
    if let Some(found) = remembered_phone(&key, country) {
        return found;
    }
    let parsed = parse_phone_uncached(raw, default_country);
    let mut memo = PHONE_MEMO
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // A valid number is also asked about in its E.164 form, without a country.
    if let Some(phone) = &parsed {
        memo.insert(None, phone.e164.clone(), parsed.clone());
    }
    memo.insert(country, key.into_owned(), parsed.clone());
    parsed
}

/// What the memo files `raw` under: one number written with different spacing is asked about
/// once, not once per way of writing it (`+44 7911 123456`, `+447911123456`).
///
/// Only where that cannot change the answer: text of nothing but digits, a leading `+` and the
/// separators libphonenumber removes before reading a number (spaces, `-`, `.`) is filed by its
/// digits (and `+`); anything else (brackets, letters, extensions, `00` prefixes) by the text
/// as given. A number that starts with `+` names its own country, so the default country plays
/// no part in its answer and it is filed without one — where its E.164 form already is.
fn memo_key(
    raw: &str,
    default_country: Option<country::Id>,
) -> (Option<country::Id>, Cow<'_, str>) {
    let trimmed = raw.trim();
    let body = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let plain = !body.is_empty()
        && body.starts_with(|c: char| c.is_ascii_digit())
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'-' | b'.'));
    if !plain {
        return (default_country, Cow::Borrowed(raw));
    }
    let international = body.len() < trimmed.len();
    let country = if international { None } else { default_country };
    if trimmed.len() == raw.len() && body.bytes().all(|b| b.is_ascii_digit()) {
        return (country, Cow::Borrowed(raw));
    }
    let mut key = String::with_capacity(trimmed.len());
    if international {
        key.push('+');
    }
    key.extend(body.chars().filter(char::is_ascii_digit));
    (country, Cow::Owned(key))
}

/// Entries the phone memo keeps before it starts afresh (a few MB at most): enough for the
/// numbers a derivation pass meets between parsing a delivery and saving its profile.
const PHONE_MEMO_ENTRIES: usize = 131_072;

/// By default country, then by the text as given: a lookup borrows `raw`, so a number already
/// seen costs no allocation.
#[derive(Default)]
struct PhoneMemo {
    by_country: std::collections::HashMap<
        Option<country::Id>,
        std::collections::HashMap<String, Option<Phone>>,
    >,
    len: usize,
}

impl PhoneMemo {
    fn insert(&mut self, country: Option<country::Id>, raw: String, phone: Option<Phone>) {
        if self.len >= PHONE_MEMO_ENTRIES {
            *self = PhoneMemo::default();
        }
        if self
            .by_country
            .entry(country)
            .or_default()
            .insert(raw, phone)
            .is_none()
        {
            self.len += 1;
        }
    }
}

static PHONE_MEMO: std::sync::LazyLock<std::sync::Mutex<PhoneMemo>> =
    std::sync::LazyLock::new(Default::default);

/// What the memo knows about `raw` (None: not asked yet).
fn remembered_phone(raw: &str, default_country: Option<country::Id>) -> Option<Option<Phone>> {
    PHONE_MEMO
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .by_country
        .get(&default_country)
        .and_then(|numbers| numbers.get(raw))
        .cloned()
}

fn parse_phone_uncached(raw: &str, default_country: Option<country::Id>) -> Option<Phone> {
    let raw = raw.trim();
    // Too short to be anyone's number (ResDiary's "3"), and libphonenumber happily parses those.
    if raw.chars().filter(char::is_ascii_digit).count() < 6 {
        return None;
    }
    let number = phonenumber::parse(default_country, raw).ok()?;
    if !phonenumber::is_valid(&number) {
        return None;
    }
    Some(Phone {
        e164: number.format().mode(Mode::E164).to_string(),
        national_digits: number.national().value().to_string(),
        national: number.format().mode(Mode::National).to_string(),
    })
}

/// Loads libphonenumber's metadata now. It is parsed lazily on first use, which takes long
/// enough (hundreds of milliseconds in a debug build) that a listener should pay it before it
/// accepts deliveries rather than in the middle of a burst.
pub fn warm_up() {
    let _ = parse_phone("+44 7911 123456", None);
}

/// The national number's digits of `e164`, a number already validated into E.164 form (a stored
/// identity key), without validating it again: validation — dozens of regular expressions — is
/// most of what parsing costs, and search terms need the digits of every member's every phone
/// each time a person changes.
pub fn national_digits_of_e164(e164: &str) -> Option<String> {
    // A key was made by `parse_phone`, which remembered it in this form.
    if let Some(Some(phone)) = remembered_phone(e164, None) {
        return Some(phone.national_digits);
    }
    let number = phonenumber::parse(None, e164).ok()?;
    Some(number.national().value().to_string())
}

/// Why a phone number does or doesn't become an identity key: what the Person screen says next to
/// a number that links nobody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneCheck {
    /// A valid number: it links records that share it.
    Valid(Phone),
    /// Fewer than six digits (ResDiary's sample sends `"3"`).
    TooShort,
    /// Written without a country code, and no country to read it in (no default country set and
    /// none on the customer's record).
    NoCountry,
    /// The phone rules of `country` (the one it was read in, when known) say no such number
    /// exists: mistyped, or a range kept for films and TV such as the UK's 07700 900xxx.
    Invalid { country: Option<country::Id> },
}

/// Reads `raw` as [`parse_phone`] does, and says why it isn't a valid number when it isn't.
pub fn check_phone(raw: &str, default_country: Option<country::Id>) -> PhoneCheck {
    if let Some(phone) = parse_phone(raw, default_country) {
        return PhoneCheck::Valid(phone);
    }
    let trimmed = raw.trim();
    if trimmed.chars().filter(char::is_ascii_digit).count() < 6 {
        return PhoneCheck::TooShort;
    }
    let international = trimmed.starts_with('+') || trimmed.starts_with("00");
    if !international && default_country.is_none() {
        return PhoneCheck::NoCountry;
    }
    let country = match phonenumber::parse(default_country, trimmed) {
        Ok(number) => number
            .country()
            .id()
            .or_else(|| main_country_for_code(number.code().value())),
        Err(_) => default_country.filter(|_| !international),
    };
    PhoneCheck::Invalid { country }
}

/// The country a calling code belongs to first (`44` → GB, `1` → US).
fn main_country_for_code(code: u16) -> Option<country::Id> {
    let regions = phonenumber::metadata::DATABASE.by_code(&code)?;
    let main = regions
        .iter()
        .find(|m| m.is_main_country_for_code())
        .or(regions.first())?;
    main.id().parse().ok()
}

/// A country's calling code (`GB` → 44).
pub fn calling_code(country: country::Id) -> Option<u16> {
    phonenumber::metadata::DATABASE
        .by_id(country.as_ref())
        .map(|m| m.country_code())
}

/// Every country libphonenumber knows the numbers of, with its calling code, by ISO code.
pub fn phone_countries() -> Vec<(String, u16)> {
    let mut all: Vec<(String, u16)> = phonenumber::metadata::DATABASE
        .iter()
        .filter(|m| m.id().len() == 2 && m.id().chars().all(|c| c.is_ascii_uppercase()))
        .map(|m| (m.id().to_string(), m.country_code()))
        .collect();
    all.sort();
    all
}

/// The digit strings search finds a phone number by, whether or not it is valid: as written
/// internationally without the `+` (`447700900123`), and every run of four or more digits that
/// ends the national number (`7700900123`, `0900123`, …), which is what people type — the whole
/// number with or without its trunk zero, or "the one ending 0123". Search strips a query's
/// leading zeros and `+` to match.
///
/// A valid number gives the same terms as its identity key; one the phone rules refuse still
/// gives its digits, so a number the profile shows can always be searched for.
pub fn phone_search_terms(raw: &str, default_country: Option<country::Id>) -> Vec<String> {
    const MIN_RUN: usize = 4;
    let suffixes = |digits: &str, into: &mut Vec<String>| {
        for start in 0..digits.len().saturating_sub(MIN_RUN - 1) {
            into.push(digits[start..].to_string());
        }
    };
    let mut terms = Vec::new();
    if let Some(phone) = parse_phone(raw, default_country) {
        terms.push(phone.e164.trim_start_matches('+').to_string());
        suffixes(&phone.national_digits, &mut terms);
    } else {
        let trimmed = raw.trim();
        let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
        if digits.len() < MIN_RUN {
            return terms;
        }
        let international = trimmed.starts_with('+') || trimmed.starts_with("00");
        let loose = phonenumber::parse(default_country, trimmed).ok();
        match loose {
            Some(number) => {
                let national = number.national().value().to_string();
                terms.push(format!("{}{national}", number.code().value()));
                suffixes(&national, &mut terms);
            }
            None if international => {
                let full = digits.strip_prefix("00").unwrap_or(&digits).to_string();
                suffixes(&full, &mut terms);
            }
            None => {
                let national = digits.trim_start_matches('0');
                if let Some(code) = default_country.and_then(calling_code) {
                    terms.push(format!("{code}{national}"));
                }
                suffixes(national, &mut terms);
            }
        }
    }
    terms.retain(|t| t.len() >= MIN_RUN);
    terms.sort();
    terms.dedup();
    terms
}

/// E.164 form of `raw` when it is a valid number.
pub fn normalize_phone(raw: &str, default_country: Option<country::Id>) -> Option<String> {
    parse_phone(raw, default_country).map(|p| p.e164)
}

/// The identity keys of a profile's current canonical fields (`email`, `phone`), sorted and
/// without duplicates.
pub fn identity_keys<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a Value)>,
    default_country: Option<country::Id>,
) -> Vec<IdentityKey> {
    let mut keys: Vec<IdentityKey> = fields
        .into_iter()
        .filter_map(|(field, value)| {
            let text = value.as_str()?;
            match field {
                "email" => normalize_email(text).map(|value| IdentityKey {
                    kind: KeyKind::Email,
                    value,
                }),
                "phone" => normalize_phone(text, default_country).map(|value| IdentityKey {
                    kind: KeyKind::Phone,
                    value,
                }),
                _ => None,
            }
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[test]
    fn national_digits_of_stored_keys_are_the_parsed_ones() {
        for (raw, country) in [
            ("07911 123456", "GB"),
            ("(11) 96595-8122", "BR"),
            ("(415) 555-2671", "US"),
            ("06 12 34 56 78", "FR"),
        ] {
            let phone = parse_phone_uncached(raw, parse_country(country)).expect(raw);
            assert_eq!(
                national_digits_of_e164(&phone.e164).as_deref(),
                Some(phone.national_digits.as_str()),
                "{raw}"
            );
        }
        assert_eq!(national_digits_of_e164("not a phone"), None);
    }

    /// The memo answers exactly what parsing answers, asked first or second, in any form.
    #[test]
    fn remembered_phone_numbers_are_the_parsed_ones() {
        let gb = parse_country("GB");
        for (raw, country) in [
            ("07911 123456", gb),
            ("+44 7911 123456", None),
            ("+447911123456", None),
            ("(11) 96595-8122", parse_country("BR")),
            ("3", gb),
            ("not a phone", None),
            // Filed by their digits: each must still get its own answer.
            ("07911-123-456", gb),
            ("07911.123456", None),
            (" +44 7911 123456 ", gb),
            ("+44 7911 123456", parse_country("US")),
            ("+1 202-555-0143", gb),
            ("+1 (202) 555-0143", gb),
            ("0044 7911 123456", gb),
            ("0044 7911 123456", parse_country("US")),
            ("12345", gb),
            ("123 45", gb),
            ("+", gb),
            ("-7911 123456", gb),
        ] {
            let first = parse_phone(raw, country);
            let again = parse_phone(raw, country);
            assert_eq!(first, parse_phone_uncached(raw, country), "{raw}");
            assert_eq!(again, first, "{raw}");
            if let Some(phone) = &first {
                assert_eq!(
                    parse_phone(&phone.e164, None),
                    parse_phone_uncached(&phone.e164, None),
                    "{raw} as E.164"
                );
            }
        }
    }

    /// One number written several ways is one memo entry; what could read differently is not.
    #[test]
    fn the_memo_files_a_number_by_its_digits_only_where_that_is_safe() {
        let gb = parse_country("GB");
        let us = parse_country("US");
        let key = |raw, country| {
            let (country, key) = memo_key(raw, country);
            (country, key.into_owned())
        };
        let e164 = (None, "+447911123456".to_string());
        assert_eq!(key("+44 7911 123456", gb), e164);
        assert_eq!(key("+44-7911-123.456", us), e164);
        assert_eq!(key(" +447911123456 ", None), e164);
        assert_eq!(key("07911 123456", gb), (gb, "07911123456".to_string()));
        assert_eq!(key("07911 123456", us), (us, "07911123456".to_string()));
        for as_given in [
            "+44 (0)7911 123456",
            "0800 FLOWERS",
            "07911 123456 ext 2",
            "+ 44 7911",
        ] {
            assert_eq!(key(as_given, gb), (gb, as_given.to_string()), "{as_given}");
        }
    }

    #[test]
    fn emails_are_trimmed_lowercased_and_placeholders_refused() {
        assert_eq!(
            normalize_email("  Ana.Silva@Example.COM \n").as_deref(),
            Some("ana.silva@example.com")
        );
        for bad in [
            "",
            "none",
            "noemail@salon.com",
            "NoReply@x.org",
            "a@b",
            "a b@c.com",
            "@x.com",
            "x@.com",
            "x@y@z.com",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad:?} must not link anyone");
        }
    }

    #[test]
    fn phones_normalize_to_e164_with_default_country() {
        let gb = parse_country("gb");
        assert_eq!(
            normalize_phone("07911 123456", gb).as_deref(),
            Some("+447911123456")
        );
        assert_eq!(
            normalize_phone("+44 7911 123456", None).as_deref(),
            Some("+447911123456")
        );
        let us = parse_country("US");
        assert_eq!(
            normalize_phone("(914) 555-1212", us).as_deref(),
            Some("+19145551212")
        );
        assert_eq!(
            normalize_phone("+5511965958122", None).as_deref(),
            Some("+5511965958122")
        );
    }

    #[test]
    fn implausible_phones_never_link() {
        let gb = parse_country("GB");
        for bad in ["3", "", "000000", "12345", "not a number", "+1234567890"] {
            assert_eq!(
                normalize_phone(bad, gb),
                None,
                "{bad:?} must not link anyone"
            );
        }
        // Without a default country, a national number is ambiguous: no key.
        assert_eq!(normalize_phone("07911 123456", None), None);
    }

    /// Ofcom keeps 07700 900000–900999 for films and TV: libphonenumber calls them invalid, so
    /// they link nobody, but search still finds them however they are written.
    #[test]
    fn invalid_numbers_are_explained_and_still_searchable() {
        let gb = parse_country("GB");
        assert_eq!(
            check_phone("+447700900123", gb),
            PhoneCheck::Invalid { country: gb }
        );
        assert_eq!(
            check_phone("07700 900123", gb),
            PhoneCheck::Invalid { country: gb }
        );
        assert_eq!(check_phone("07700 900123", None), PhoneCheck::NoCountry);
        assert_eq!(check_phone("3", gb), PhoneCheck::TooShort);
        assert!(matches!(
            check_phone("07911 123456", gb),
            PhoneCheck::Valid(_)
        ));

        for (raw, country) in [
            ("+447700900123", gb),
            ("+44 7700 900123", None),
            ("07700 900123", gb),
            ("0044 7700 900123", None),
        ] {
            let terms = phone_search_terms(raw, country);
            for wanted in ["447700900123", "7700900123", "900123", "0123"] {
                assert!(
                    terms.contains(&wanted.to_string()),
                    "{raw}: {wanted} in {terms:?}"
                );
            }
        }
        // A valid number gives what its identity key gave search before.
        let terms = phone_search_terms("07911 123456", gb);
        assert!(terms.contains(&"447911123456".to_string()), "{terms:?}");
        assert!(terms.contains(&"7911123456".to_string()), "{terms:?}");
        assert!(phone_search_terms("3", gb).is_empty());
    }

    #[test]
    fn countries_have_calling_codes() {
        assert_eq!(calling_code(parse_country("GB").unwrap()), Some(44));
        let all = phone_countries();
        assert!(all.contains(&("BR".to_string(), 55)), "{all:?}");
        assert!(all.len() > 200, "{}", all.len());
        assert!(all.iter().all(|(id, _)| parse_country(id).is_some()));
    }

    #[test]
    fn keys_come_from_email_and_phone_only_sorted_and_unique() {
        let fields = BTreeMap::from([
            ("email".to_string(), json!("A@Example.com")),
            ("phone".to_string(), json!("+44 7911 123456")),
            ("company".to_string(), json!("a@example.com")),
            ("first_name".to_string(), json!(null)),
        ]);
        let keys = identity_keys(fields.iter().map(|(k, v)| (k.as_str(), v)), None);
        assert_eq!(
            keys,
            vec![
                IdentityKey {
                    kind: KeyKind::Email,
                    value: "a@example.com".into()
                },
                IdentityKey {
                    kind: KeyKind::Phone,
                    value: "+447911123456".into()
                },
            ]
        );
    }
}
