//! Hearing other instances' commits: one connection per store runs `LISTEN clientele_relay` and
//! turns each notification into a [`StoreEvent`]. When the connection is lost (PostgreSQL
//! restarted, the network cut it) it reconnects with backoff and then announces both events,
//! since something may have been committed meanwhile.

use crate::CHANNEL;
use clientele_relay::store::StoreEvent;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_postgres::{AsyncMessage, Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How often the listening connection is checked (a dead connection can look alive).
const CHECK_EVERY: Duration = Duration::from_secs(15);
/// How long that check may take.
const CHECK_WITHIN: Duration = Duration::from_secs(10);
/// Reconnecting waits this long at first, doubling up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A connection with its notifications.
pub(crate) struct Listening {
    pub(crate) client: Client,
    /// Notification payloads; closed when the connection ends.
    notices: mpsc::UnboundedReceiver<String>,
}

impl Listening {
    /// Connects, and drives the connection in a task that passes notifications on.
    pub(crate) async fn connect(
        config: &Config,
        tls: &MakeRustlsConnect,
    ) -> Result<Listening, tokio_postgres::Error> {
        let (client, mut connection) = config.connect(tls.clone()).await?;
        let (tx, notices) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        let _ = tx.send(n.payload().to_string());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "the listening connection to PostgreSQL ended");
                        break;
                    }
                    None => break,
                }
            }
        });
        Ok(Listening { client, notices })
    }

    pub(crate) async fn listen(&mut self) -> Result<(), tokio_postgres::Error> {
        self.client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
    }
}

/// Listens for as long as the store lives (the task ends with its runtime).
pub(crate) async fn run(
    config: Config,
    tls: MakeRustlsConnect,
    events: broadcast::Sender<StoreEvent>,
    mut listening: Listening,
) {
    loop {
        watch(&mut listening, &events).await;
        tracing::warn!(
            "lost the database connection that hears other relay instances; reconnecting"
        );
        let mut backoff = BACKOFF_FIRST;
        listening = loop {
            tokio::time::sleep(backoff).await;
            match Listening::connect(&config, &tls).await {
                Ok(mut again) => match again.listen().await {
                    Ok(()) => break again,
                    Err(e) => tracing::debug!(error = %e, "LISTEN failed; trying again"),
                },
                Err(e) => tracing::debug!(error = %e, "reconnecting to PostgreSQL failed"),
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        };
        tracing::info!("listening for other relay instances again");
        // Anything committed while this was away was not heard: look again.
        let _ = events.send(StoreEvent::Deliveries);
        let _ = events.send(StoreEvent::Changes);
        let _ = events.send(StoreEvent::Connections);
    }
}

/// Passes notifications on until the connection is lost.
async fn watch(listening: &mut Listening, events: &broadcast::Sender<StoreEvent>) {
    let mut check = tokio::time::interval(CHECK_EVERY);
    check.tick().await;
    loop {
        tokio::select! {
            notice = listening.notices.recv() => match notice {
                Some(payload) => {
                    let event = match payload.as_str() {
                        "changes" => StoreEvent::Changes,
                        "connections" => StoreEvent::Connections,
                        _ => StoreEvent::Deliveries,
                    };
                    // No receiver is fine: nobody is waiting.
                    let _ = events.send(event);
                }
                None => return,
            },
            _ = check.tick() => {
                let alive = tokio::time::timeout(CHECK_WITHIN, listening.client.simple_query(""))
                    .await
                    .is_ok_and(|r| r.is_ok());
                if !alive {
                    return;
                }
            }
        }
    }
}
