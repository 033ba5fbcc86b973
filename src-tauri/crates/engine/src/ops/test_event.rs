//! "Send a test message": a correctly signed sample from the connection's provider, marked as a
//! test (it shows in Activity, never among the customers), sent the real way — and words that
//! say exactly what it proved, and what it didn't.
//!
//! What a test can prove depends on where it goes:
//! - **On this computer**, Clientele signs the sample with the secret it saved and posts it to
//!   its own listener. That proves the secret was saved and is the one the listener checks with,
//!   and that the listener is receiving — not that the provider can reach this computer, nor
//!   that the secret is the provider's. Only the provider's own first message proves that, which
//!   the Connect flow then waits for.
//! - **On a relay**, the relay posts the sample over real HTTP(S) to its public address (where
//!   providers post), and checks that it arrived at this very relay. That proves the address
//!   reaches the relay — DNS, firewall, proxy, certificate — and that the relay checks with the
//!   secret it keeps. The desk then collects the test like any message. When the relay knows no
//!   public address, or the address fails, the words say what whoever runs the relay must fix.

use super::{Operations, provider};
use crate::error::{ApiResult, AppError};
use chrono::{DateTime, Utc};
use clientele_core::Provider;
use clientele_core::providers;
use clientele_core::relay_protocol::{TestOutcome, TestProblem};
use clientele_server::{TEST_HEADER, webhook_path};
use clientele_store::Connection;
use serde::Serialize;
use ts_rs::TS;

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct TestEventResult {
    pub ok: bool,
    /// What the test proved (and what it couldn't), or what went wrong and what to do.
    pub message: String,
}

/// A test event, ready to post (its headers carry the signature and the test token).
#[derive(Debug)]
pub(crate) struct TestEvent {
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// "Tiquo 'main-salon'"
fn named(p: Provider, name: &str) -> String {
    format!("{} '{name}'", p.display_name())
}

/// The `message` of a listener's JSON answer, or "".
fn said(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// What this computer's listener answering `code` (with body `text`) to a test event proved.
pub(crate) fn local_result(
    p: Provider,
    name: &str,
    signed: bool,
    code: u16,
    text: &str,
) -> TestEventResult {
    let who = p.display_name();
    match code {
        200 if signed => TestEventResult {
            ok: true,
            message: format!(
                "Clientele checked a sample message for {} with the {} you pasted, at this computer's address. This doesn't show that {who} can reach this computer yet: {who}'s own first message will.",
                named(p, name),
                p.secret_word()
            ),
        },
        200 => TestEventResult {
            ok: true,
            message: format!(
                "Clientele received a sample message for {} at this computer's address (nothing was checked: this connection has no {}). This doesn't show that {who} can reach this computer yet: {who}'s own first message will.",
                named(p, name),
                p.secret_word()
            ),
        },
        _ => TestEventResult {
            ok: false,
            message: format!("The test message was refused: {}", said(text)),
        },
    }
}

/// Words for a relay's test outcome.
pub(crate) mod relay_words {
    use super::*;

    /// The relay knows no address providers can reach.
    pub(crate) fn no_public_url(listening: &str) -> TestOutcome {
        TestOutcome {
            ok: false,
            message: format!(
                "The relay doesn't know an address that providers can reach: it listens on {listening} and was started without --public-url. Whoever runs the relay must start it with the address providers use (for example --public-url https://relay.example.com), then send the test again."
            ),
            sent_to: None,
            problem: Some(TestProblem::NoPublicUrl),
        }
    }

    /// Nothing (or not the relay) answered at the public address.
    pub(crate) fn unreachable(
        p: Provider,
        public_url: &str,
        url: &str,
        reason: &str,
    ) -> TestOutcome {
        TestOutcome {
            ok: false,
            message: format!(
                "The relay couldn't reach its own public address {public_url} ({reason}). {} sends its messages there, so whoever runs the relay must make that address work: check --public-url, the name's DNS record, the firewall and any proxy in front of the relay.",
                p.display_name()
            ),
            sent_to: Some(url.to_string()),
            problem: Some(TestProblem::Unreachable),
        }
    }

    /// The public address's certificate isn't trusted.
    pub(crate) fn untrusted(public_url: &str, url: &str, reason: &str) -> TestOutcome {
        TestOutcome {
            ok: false,
            message: format!(
                "The relay's public address {public_url} answered with a certificate that isn't trusted ({reason}). Providers refuse such an address too: whoever runs the relay must give it a certificate from a public authority (such as Let's Encrypt)."
            ),
            sent_to: Some(url.to_string()),
            problem: Some(TestProblem::Unreachable),
        }
    }

    /// The public address answered `code`, but didn't store the test at this relay.
    pub(crate) fn refused(public_url: &str, url: &str, code: u16, text: &str) -> TestOutcome {
        let said = said(text);
        let message = if code == 401 && !said.is_empty() {
            format!("The relay's public address {public_url} refused the test message: {said}")
        } else {
            format!(
                "The relay's public address {public_url} answered{}, but the test message didn't reach this relay: the address may lead to another server. Whoever runs the relay must check --public-url and any proxy in front of the relay.",
                if code == 200 {
                    String::new()
                } else {
                    format!(
                        " {code}{}",
                        if said.is_empty() {
                            String::new()
                        } else {
                            format!(" (“{said}”)")
                        }
                    )
                }
            )
        };
        TestOutcome {
            ok: false,
            message,
            sent_to: Some(url.to_string()),
            problem: Some(TestProblem::Refused),
        }
    }

    /// The test arrived at this relay through its public address.
    pub(crate) fn arrived(
        p: Provider,
        name: &str,
        signed: bool,
        public_url: &str,
        url: &str,
        own_certificate_only: bool,
    ) -> TestOutcome {
        let who = p.display_name();
        let checked = if signed {
            format!("and checked it with the {} it keeps", p.secret_word())
        } else {
            format!(
                "(nothing was checked: this connection has no {})",
                p.secret_word()
            )
        };
        let certificate = if own_certificate_only {
            " Its certificate is one this relay made or was given privately, which many providers refuse: a certificate from a public authority (such as Let's Encrypt) avoids that."
        } else {
            ""
        };
        TestOutcome {
            ok: true,
            message: format!(
                "The relay received a sample message for {} at its public address {public_url} {checked}. This computer collects it in a moment; it shows in Activity and won't appear among your customers.{certificate} This doesn't show that {who} has the address and the {} yet: {who}'s own first message will.",
                named(p, name),
                p.secret_word()
            ),
            sent_to: Some(url.to_string()),
            problem: None,
        }
    }
}

impl Operations {
    /// Sends a correctly signed sample the real way — through this computer's listener, or, for
    /// the relay's connections, through the relay's public address — marked as a test so it shows
    /// in Activity but never makes a customer.
    pub fn send_test_event(
        &self,
        provider_id: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<TestEventResult> {
        let p = provider(provider_id)?;
        let connection = self
            .store
            .reader()?
            .connection(p, name)?
            .ok_or_else(|| AppError::no_connection(p, name))?;
        if connection.via_relay {
            return self.send_relay_test_event(p, name);
        }
        let status = self
            .listener
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(address) = status.address.filter(|_| status.running) else {
            return Ok(TestEventResult {
                ok: false,
                message: "Clientele isn't receiving messages right now, so the test couldn't be sent. Check Settings → Receiving messages.".into(),
            });
        };
        let test = self.test_event(&connection, now);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(10)))
            .build()
            .into();
        let url = format!("http://{address}{}", test.path);
        let mut request = agent.post(&url).header("content-type", "application/json");
        for (k, v) in &test.headers {
            request = request.header(k.as_str(), v.as_str());
        }
        Ok(match request.send(&test.body[..]) {
            Ok(mut response) => {
                let code = response.status().as_u16();
                let text = response.body_mut().read_to_string().unwrap_or_default();
                local_result(p, name, connection.requires_secret, code, &text)
            }
            Err(e) => TestEventResult {
                ok: false,
                message: format!("The test message couldn't be sent: {e}"),
            },
        })
    }

    /// A test event for one of the relay's connections: the relay sends it to its public
    /// address (only it holds the secret), and this desk then pulls it like any other.
    fn send_relay_test_event(&self, p: Provider, name: &str) -> ApiResult<TestEventResult> {
        let Some((_, relay)) = self.relay_admin()? else {
            return Ok(TestEventResult {
                ok: false,
                message: "This connection receives through the relay, and only a desk that manages the relay's connections can send it a test. Ask whoever runs the relay.".into(),
            });
        };
        let outcome = super::relay::block_on(relay.send_test_event(p, name))?;
        let message = match (&outcome.sent_to, outcome.ok) {
            // A relay from before the test went through its public address.
            (None, true) => format!(
                "The relay checked a sample message for {} with the {} it keeps; this computer collects it in a moment. This relay is an older version, so the test didn't go through its public address: update the relay to check that too.",
                named(p, name),
                p.secret_word()
            ),
            _ => outcome.message,
        };
        Ok(TestEventResult {
            ok: outcome.ok,
            message,
        })
    }

    /// The signed test event for `connection`: a sample message from its provider, marked with
    /// this process's test token. Without its secret the test goes unsigned, and the listener's
    /// refusal says why.
    pub(crate) fn test_event(&self, connection: &Connection, now: DateTime<Utc>) -> TestEvent {
        signed_test_event(&*self.secrets, self.test_token(), connection, now)
    }
}

/// The signed test event for `connection`, marked with `token` (the listening process's test
/// token). Without its secret the test goes unsigned, and the listener's refusal says why.
pub(crate) fn signed_test_event(
    secrets: &dyn clientele_secrets::SecretStore,
    token: &clientele_core::Sensitive<String>,
    connection: &Connection,
    now: DateTime<Utc>,
) -> TestEvent {
    let p = connection.provider;
    let secret = if connection.requires_secret {
        secrets.get(p, &connection.name).ok().flatten()
    } else {
        None
    };
    let body = providers::sample_body(
        p,
        &format!("clientele-test-{}", now.timestamp_millis()),
        "test@example.com",
        now,
    );
    let mut headers = match &secret {
        Some(secret) => providers::sign(p, secret, &body, now),
        None => Vec::new(),
    };
    headers.push((TEST_HEADER.into(), token.expose().clone()));
    TestEvent {
        path: webhook_path(p, &connection.name),
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_test_says_what_it_proved_and_what_it_did_not() {
        let ok = local_result(Provider::Tiquo, "main-salon", true, 200, "{}");
        assert!(ok.ok);
        assert!(
            ok.message.starts_with(
                "Clientele checked a sample message for Tiquo 'main-salon' with the signing secret you pasted"
            ),
            "{}",
            ok.message
        );
        assert!(
            ok.message
                .contains("This doesn't show that Tiquo can reach this computer yet"),
            "{}",
            ok.message
        );
        assert!(!ok.message.contains("It works"));
        let unsigned = local_result(Provider::Zupy, "main", false, 200, "{}");
        assert!(
            unsigned.message.contains("nothing was checked"),
            "{}",
            unsigned.message
        );
        let refused = local_result(
            Provider::Vagaro,
            "main",
            true,
            401,
            r#"{"message":"The verification token didn't match."}"#,
        );
        assert!(!refused.ok);
        assert_eq!(
            refused.message,
            "The test message was refused: The verification token didn't match."
        );
    }

    #[test]
    fn a_relay_s_failures_say_what_whoever_runs_it_must_fix() {
        let none = relay_words::no_public_url("http://0.0.0.0:8443");
        assert!(
            !none.ok && none.message.contains("--public-url"),
            "{}",
            none.message
        );
        let other = relay_words::refused("https://r.example.com", "u", 404, "Not Found");
        assert!(other.message.contains("answered 404"), "{}", other.message);
        assert!(
            other.message.contains("another server"),
            "{}",
            other.message
        );
        let accepted_elsewhere = relay_words::refused("https://r.example.com", "u", 200, "OK");
        assert!(
            accepted_elsewhere
                .message
                .contains("answered, but the test message didn't reach this relay"),
            "{}",
            accepted_elsewhere.message
        );
        let arrived = relay_words::arrived(
            Provider::Tiquo,
            "online",
            true,
            "https://r.example.com",
            "https://r.example.com/hooks/tiquo/online",
            true,
        );
        assert!(arrived.ok);
        assert!(
            arrived.message.starts_with(
                "The relay received a sample message for Tiquo 'online' at its public address https://r.example.com and checked it with the signing secret it keeps."
            ),
            "{}",
            arrived.message
        );
        assert!(
            arrived.message.contains("Let's Encrypt"),
            "{}",
            arrived.message
        );
    }
}
