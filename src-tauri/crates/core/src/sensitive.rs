//! `Sensitive<T>` marks a value that must never reach a log, a database, an export or the webview.
//! It has a redacting `Debug`, no `Display` and no `Serialize`, so the compiler stops accidental
//! leaks; the one way in is [`Sensitive::expose`], which is easy to grep for.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The wrapped value. Call sites are the audit trail: keep them few.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sensitive(<redacted>)")
    }
}

impl From<String> for Sensitive<String> {
    fn from(value: String) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Sensitive::new("whsec_topsecret".to_string());
        let shown = format!("{s:?} {:#?}", s);
        assert!(
            !shown.contains("topsecret"),
            "Debug leaked the secret: {shown}"
        );
        assert_eq!(s.expose(), "whsec_topsecret");
    }
}
