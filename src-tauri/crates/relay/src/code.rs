//! Pairing codes: what an admin reads out over the phone so a desk can pair with the relay, such
//! as `K7QF-2MQD`.
//!
//! **Shape.** Eight characters shown as two groups of four: seven random ones and a check
//! character. The alphabet is Crockford's base 32 (`0123456789ABCDEFGHJKMNPQRSTVWXYZ`): digits
//! and capitals without `I`, `L`, `O` and `U`, which are too easily heard or read as `1`, `1`, `0`
//! and `V`. Seven random characters are 35 bits; with a code good for [`CODE_LIFETIME`], used
//! once, and guesses slowed down per address ([`crate::throttle`]), that is far more than anyone
//! can guess.
//!
//! **Forgiving to type.** [`PairingCode::parse`] ignores case, spaces and dashes anywhere, and
//! reads `O` as `0`, `I` and `L` as `1`, and `U` as `V`: whatever someone hears or copies, if it
//! can only mean one code, it is that code.
//!
//! **Typos are caught on the desk.** The check character is computed by the Luhn mod N algorithm
//! over the 32 symbols, so a mistyped code is refused before anything is sent to the relay, in
//! words that say it is a typo (not "wrong code", which would send people back to the admin for a
//! new one). Luhn mod N catches every single wrong character, and every swap of two neighbouring
//! characters but one: swapping `0` and `Z` (the first and last symbols) leaves the sum unchanged,
//! as `09` ↔ `90` does for credit-card numbers. [`PairingCode::generate`] therefore never makes a
//! code in which `0` and `Z` stand next to each other (which costs about 1.4 % of the codes, a
//! fraction of a bit), so for every code it hands out, every neighbour swap is caught too. The
//! tests prove both properties exhaustively.
//!
//! The relay stores a code only as [`PairingCode::hash`]; a code never appears in `Debug` output
//! (it is a secret until it is used). Its `Display` is the `XXXX-XXXX` form, for the admin's
//! screen.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::random::{self, RandomUnavailable};

/// How long a pairing code can be used after it is made: 15 minutes, long enough to read it out
/// over the phone and type it, short enough that a code written down somewhere soon opens nothing.
pub const CODE_LIFETIME: chrono::Duration = chrono::Duration::minutes(15);

/// The 32 symbols, in the order of their values (Crockford's base 32).
pub const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Characters in a code, the check character included.
pub const CODE_LEN: usize = 8;

/// Random characters in a code (the rest is the check character).
const RANDOM_LEN: usize = CODE_LEN - 1;

/// The one pair of symbols whose neighbour swap Luhn mod 32 can't see: `0` and `Z`.
const BLIND_PAIR: (u8, u8) = (0, 31);

/// A pairing code: seven random symbols and a Luhn mod 32 check symbol.
#[derive(Clone, PartialEq, Eq)]
pub struct PairingCode {
    /// The eight symbols as ASCII, normalized (upper case, no dash).
    chars: [u8; CODE_LEN],
}

/// Why what was typed is not a pairing code. Messages are shown as they are, so they never
/// repeat the code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Too few or too many characters (spaces and dashes aside).
    #[error("A pairing code has 8 characters, like K7QF-2MQD.")]
    WrongLength,
    /// A character no code contains (punctuation, an accented letter, …).
    #[error(
        "Pairing codes have only letters and digits, so {character:?} can't be part of one. \
         Check the code and type it again."
    )]
    NotInAlphabet { character: char },
    /// The check character doesn't match: something was mistyped.
    #[error("That code has a typo: check it and type it again.")]
    Typo,
}

impl PairingCode {
    /// A new code from the operating system's random source.
    pub fn generate() -> Result<PairingCode, RandomUnavailable> {
        // Each draw is kept with probability about 0.986, so 64 draws all failing means the
        // random source is broken, not unlucky (chance 0.014^64).
        for _ in 0..64 {
            let draw: [u8; RANDOM_LEN] = random::bytes("pairing code")?;
            if let Some(code) = Self::from_random(draw) {
                return Ok(code);
            }
        }
        Err(RandomUnavailable {
            what: "pairing code",
        })
    }

    /// The code whose random part is the low five bits of each byte (256 is a multiple of 32,
    /// so uniform bytes give uniform symbols), or `None` when it would have `0` and `Z` side by
    /// side (see the module docs).
    fn from_random(draw: [u8; RANDOM_LEN]) -> Option<PairingCode> {
        let mut values = [0u8; CODE_LEN];
        for (value, byte) in values.iter_mut().zip(draw) {
            *value = byte & 31;
        }
        values[RANDOM_LEN] = check_value(&values[..RANDOM_LEN]);
        let blind = values
            .windows(2)
            .any(|pair| (pair[0], pair[1]) == BLIND_PAIR || (pair[1], pair[0]) == BLIND_PAIR);
        (!blind).then(|| PairingCode::from_values(values))
    }

    fn from_values(values: [u8; CODE_LEN]) -> PairingCode {
        PairingCode {
            chars: values.map(|v| ALPHABET[usize::from(v)]),
        }
    }

    /// Reads a code as people type it: case, spaces and dashes don't matter, and `O`, `I`, `L`
    /// and `U` are read as `0`, `1`, `1` and `V`. Refuses a wrong length, a character no code has,
    /// and a code whose check character doesn't match (a typo).
    pub fn parse(text: &str) -> Result<PairingCode, CodeError> {
        let mut values = [0u8; CODE_LEN];
        let mut len = 0;
        for c in text.chars() {
            if c.is_whitespace() || is_dash(c) {
                continue;
            }
            let value = symbol_value(c).ok_or(CodeError::NotInAlphabet { character: c })?;
            // Stop at once on long input (it may come from the network).
            let slot = values.get_mut(len).ok_or(CodeError::WrongLength)?;
            *slot = value;
            len += 1;
        }
        if len != CODE_LEN {
            return Err(CodeError::WrongLength);
        }
        if luhn_sum(&values) != 0 {
            return Err(CodeError::Typo);
        }
        Ok(PairingCode::from_values(values))
    }

    /// SHA-256 of the eight normalized characters (upper case, no dash): what the relay stores
    /// and looks codes up by.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.chars).into()
    }
}

/// `XXXX-XXXX`.
impl fmt::Display for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |chars: &[u8]| chars.iter().map(|&b| char::from(b)).collect::<String>();
        write!(f, "{}-{}", text(&self.chars[..4]), text(&self.chars[4..]))
    }
}

impl fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairingCode(<redacted>)")
    }
}

/// Hyphen-minus and the dashes a phone's keyboard or a copied document may put in its place.
fn is_dash(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2212}'
    )
}

/// A typed character's symbol value, forgiving case and the four look-alike letters.
fn symbol_value(c: char) -> Option<u8> {
    let c = match c.to_ascii_uppercase() {
        'O' => '0',
        'I' | 'L' => '1',
        'U' => 'V',
        other => other,
    };
    let byte = u8::try_from(c).ok()?;
    ALPHABET
        .iter()
        .position(|&symbol| symbol == byte)
        .and_then(|i| u8::try_from(i).ok())
}

/// What symbol `value` adds to the Luhn mod 32 sum when it stands `from_right` places from the
/// right end of the code (0 = the check character): itself at even places; doubled at odd ones,
/// with a result of 32 or more written in base 32 and its two digits added (`2v - 31`).
fn addend(value: u8, from_right: usize) -> u32 {
    let v = u32::from(value);
    if from_right.is_multiple_of(2) {
        v
    } else {
        let doubled = 2 * v;
        doubled / 32 + doubled % 32
    }
}

/// The Luhn mod 32 sum of a whole code (check character last), mod 32: zero for a valid code.
fn luhn_sum(values: &[u8; CODE_LEN]) -> u32 {
    values
        .iter()
        .rev()
        .enumerate()
        .map(|(from_right, &v)| addend(v, from_right))
        .sum::<u32>()
        % 32
}

/// The check value that makes `random`'s Luhn mod 32 sum zero once appended.
fn check_value(random: &[u8]) -> u8 {
    let sum: u32 = random
        .iter()
        .rev()
        .enumerate()
        // The check character will be place 0, so the last random one is place 1.
        .map(|(i, &v)| addend(v, i + 1))
        .sum();
    // (32 - sum % 32) % 32 is below 32, so it fits a u8.
    u8::try_from((32 - sum % 32) % 32).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value_of(symbol: u8) -> u8 {
        ALPHABET.iter().position(|&s| s == symbol).unwrap() as u8
    }

    fn text(chars: &[u8]) -> String {
        String::from_utf8(chars.to_vec()).unwrap()
    }

    /// A valid code with the given random part, blind pair or not.
    fn code_with(random: [u8; RANDOM_LEN]) -> [u8; CODE_LEN] {
        let mut values = [0u8; CODE_LEN];
        values[..RANDOM_LEN].copy_from_slice(&random);
        values[RANDOM_LEN] = check_value(&random);
        values.map(|v| ALPHABET[usize::from(v)])
    }

    #[test]
    fn the_alphabet_is_crockfords_32_without_look_alike_letters() {
        assert_eq!(ALPHABET.len(), 32);
        for letter in b"ILOU" {
            assert!(!ALPHABET.contains(letter));
        }
        let mut sorted = ALPHABET.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 32, "symbols repeat");
    }

    /// The Luhn sum is a sum over places, so a change at one place changes it by the difference
    /// of that place's addends, whatever the other characters are. Checking every symbol at
    /// every place is therefore a proof for all 32^8 codes.
    #[test]
    fn every_single_wrong_character_is_caught_proved_exhaustively() {
        for place in 0..CODE_LEN {
            let mut seen = [false; 32];
            for value in 0..32u8 {
                let addend = (addend(value, place) % 32) as usize;
                assert!(
                    !seen[addend],
                    "two symbols add the same at place {place}, so swapping one for the other \
                     would go unnoticed"
                );
                seen[addend] = true;
            }
        }
    }

    /// Likewise a neighbour swap changes the sum by the difference of two places' addends, so
    /// checking every pair of symbols at every pair of neighbouring places covers all codes.
    #[test]
    fn every_neighbour_swap_but_zero_and_z_is_caught_proved_exhaustively() {
        let mut blind = Vec::new();
        for place in 0..CODE_LEN - 1 {
            for a in 0..32u8 {
                for b in 0..32u8 {
                    if a == b {
                        continue;
                    }
                    let before = addend(a, place + 1) + addend(b, place);
                    let after = addend(b, place + 1) + addend(a, place);
                    if before % 32 == after % 32 {
                        blind.push((a.min(b), a.max(b)));
                    }
                }
            }
        }
        blind.sort_unstable();
        blind.dedup();
        assert_eq!(
            blind,
            [BLIND_PAIR],
            "the only neighbour swap Luhn mod 32 misses must be 0 <-> Z, which generated codes avoid"
        );
    }

    #[test]
    fn generated_codes_are_valid_varied_and_never_have_the_blind_pair() {
        let codes: Vec<PairingCode> = (0..500).map(|_| PairingCode::generate().unwrap()).collect();
        let mut seen_symbols = [false; 32];
        for code in &codes {
            let shown = code.to_string();
            assert_eq!(shown.len(), 9);
            assert_eq!(&shown[4..5], "-");
            assert_eq!(PairingCode::parse(&shown).unwrap(), *code);
            let joined = text(&code.chars);
            assert!(!joined.contains("0Z") && !joined.contains("Z0"), "{shown}");
            for &c in &code.chars {
                seen_symbols[usize::from(value_of(c))] = true;
            }
        }
        assert!(seen_symbols.iter().all(|&s| s), "some symbol never appears");
        let mut distinct: Vec<&[u8; 8]> = codes.iter().map(|c| &c.chars).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), codes.len());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Any valid code (not only generated ones): every one of its 8 × 31 single-character
        /// typos is refused as a typo.
        #[test]
        fn any_single_typo_in_any_code_is_refused(random in prop::array::uniform7(0u8..32)) {
            let good = code_with(random);
            prop_assert!(PairingCode::parse(&text(&good)).is_ok());
            for place in 0..CODE_LEN {
                for &wrong in ALPHABET.iter().filter(|&&s| s != good[place]) {
                    let mut typo = good;
                    typo[place] = wrong;
                    prop_assert_eq!(PairingCode::parse(&text(&typo)), Err(CodeError::Typo));
                }
            }
        }

        /// Every code `generate` can make: every swap of two different neighbours is refused.
        #[test]
        fn any_neighbour_swap_in_a_generated_code_is_refused(draw in prop::array::uniform7(any::<u8>())) {
            let Some(code) = PairingCode::from_random(draw) else {
                return Ok(());
            };
            for place in 0..CODE_LEN - 1 {
                let mut swapped = code.chars;
                swapped.swap(place, place + 1);
                if swapped != code.chars {
                    prop_assert_eq!(PairingCode::parse(&text(&swapped)), Err(CodeError::Typo));
                }
            }
        }

        /// However a code is typed — case, spaces, dashes, look-alike letters — it reads as the
        /// same code with the same hash.
        #[test]
        fn sloppy_typing_reads_as_the_same_code(
            draw in prop::array::uniform7(any::<u8>()),
            lower in prop::array::uniform8(any::<bool>()),
            gaps in prop::array::uniform8(prop::sample::select(vec!["", "", " ", "-", "  ", " - ", "\u{2013}"])),
            look_alikes in any::<bool>(),
        ) {
            let Some(code) = PairingCode::from_random(draw) else {
                return Ok(());
            };
            let mut typed = String::new();
            for (i, &c) in code.chars.iter().enumerate() {
                typed.push_str(gaps[i]);
                let c = match (look_alikes, c) {
                    (true, b'0') => 'O',
                    (true, b'1') => if i.is_multiple_of(2) { 'I' } else { 'l' },
                    (true, b'V') => 'U',
                    (_, c) => char::from(c),
                };
                typed.push(if lower[i] { c.to_ascii_lowercase() } else { c });
            }
            let read = PairingCode::parse(&typed);
            prop_assert_eq!(read.as_ref(), Ok(&code), "typed {:?}", typed);
            prop_assert_eq!(read.unwrap().hash(), code.hash());
        }
    }

    #[test]
    fn the_example_in_messages_is_a_real_code() {
        let example = PairingCode::parse("K7QF-2MQD").expect("the example must be valid");
        assert_eq!(example.to_string(), "K7QF-2MQD");
        assert!(CodeError::WrongLength.to_string().contains("K7QF-2MQD"));
        assert_eq!(PairingCode::parse("K7QF-2MXD"), Err(CodeError::Typo));
    }

    #[test]
    fn forgiving_reading_of_the_example() {
        let code = PairingCode::parse("K7QF-2MQD").unwrap();
        for typed in [
            "k7qf2mqd",
            " K7QF 2MQD ",
            "K-7-Q-F-2-M-Q-D",
            "k7qf\u{2013}2mqd",
            "K7QF\t2MQD\n",
        ] {
            assert_eq!(PairingCode::parse(typed).as_ref(), Ok(&code), "{typed:?}");
        }
        // O, I, L, U: a code with 0, 1 and V typed with the look-alike letters.
        let with_look_alikes = code_with([0, 1, 27, 1, 5, 0, 9]);
        assert_eq!(text(&with_look_alikes[..7]), "01V1509");
        let typed = format!("OIuL5o9{}", char::from(with_look_alikes[7]));
        assert_eq!(
            PairingCode::parse(&typed).unwrap().chars,
            with_look_alikes,
            "{typed}"
        );
    }

    #[test]
    fn wrong_lengths_are_refused_in_plain_words() {
        for typed in ["", " - ", "K7QF-2MQ", "K7QF-2MQDD", "K7QF-2MQD-K7QF-2MQD"] {
            let err = PairingCode::parse(typed).unwrap_err();
            assert_eq!(err, CodeError::WrongLength, "{typed:?}");
            assert_eq!(
                err.to_string(),
                "A pairing code has 8 characters, like K7QF-2MQD."
            );
        }
        // Long input is refused without reading all of it.
        let flood = "A".repeat(1_000_000);
        assert_eq!(PairingCode::parse(&flood), Err(CodeError::WrongLength));
    }

    #[test]
    fn characters_no_code_has_are_named() {
        for (typed, bad) in [
            ("K7QF_2MQD", '_'),
            ("K7QF.2MQD", '.'),
            ("K7QÉ-2MQD", 'É'),
            ("K7QF-2MQ!", '!'),
        ] {
            let err = PairingCode::parse(typed).unwrap_err();
            assert_eq!(
                err,
                CodeError::NotInAlphabet { character: bad },
                "{typed:?}"
            );
            let message = err.to_string();
            assert!(message.contains(&format!("'{bad}'")), "{message}");
            assert!(message.ends_with("type it again."), "{message}");
        }
    }

    #[test]
    fn a_typo_says_so() {
        let err = PairingCode::parse("K7QF-2MQE").unwrap_err();
        assert_eq!(err, CodeError::Typo);
        assert_eq!(
            err.to_string(),
            "That code has a typo: check it and type it again."
        );
    }

    #[test]
    fn the_hash_is_sha256_of_the_eight_normalized_characters() {
        let code = PairingCode::parse("k7qf 2mqd").unwrap();
        let expected: [u8; 32] = Sha256::digest(b"K7QF2MQD").into();
        assert_eq!(code.hash(), expected);
        assert_ne!(PairingCode::generate().unwrap().hash(), expected);
    }

    #[test]
    fn debug_never_shows_the_code() {
        let code = PairingCode::parse("K7QF-2MQD").unwrap();
        let shown = format!("{code:?} {code:#?}");
        assert!(
            !shown.contains("K7QF") && !shown.contains("2MQD"),
            "{shown}"
        );
    }

    #[test]
    fn codes_last_a_quarter_of_an_hour() {
        assert_eq!(CODE_LIFETIME.num_seconds(), 15 * 60);
    }
}
