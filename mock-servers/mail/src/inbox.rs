//! The inbox: every message the sink accepted, shared between the SMTP side, the web side and
//! tests in the same process.
//!
//! Each stored [`Message`] takes its `seq` from mock-kit's process-wide sequence, so mail slots into
//! the same order as the HTTP journals of the other mock parties: a judge can tell that a login
//! code was mailed after the authorization request and before the token request. Storage is
//! bounded (oldest messages go first) so a long-running `serve` cannot grow without limit.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::mime;
use crate::smtp::Envelope;

/// How many messages an inbox keeps by default before dropping the oldest.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// One accepted message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Inbox-local id, counting from 1; never reused, not even after [`Inbox::clear`].
    pub id: u64,
    /// Position in the process-wide order shared with the HTTP journals.
    pub seq: u64,
    /// Arrival time, milliseconds since the Unix epoch.
    pub received_at_ms: u64,
    /// Envelope sender (MAIL FROM); empty for a null sender.
    pub mail_from: String,
    /// Envelope recipients (RCPT TO), which may differ from the To/Cc headers (Bcc).
    pub rcpt_to: Vec<String>,
    /// Header fields in order, unfolded, values as sent.
    pub headers: Vec<(String, String)>,
    /// The Subject, RFC 2047 encoded words decoded.
    pub subject: String,
    /// The text after the header block: quoted-printable or base64 undone for single-part text,
    /// line ends as LF.
    pub body: String,
    /// The content exactly as received after dot-unstuffing (CRLF line ends; invalid UTF-8 shown
    /// as U+FFFD).
    pub raw: String,
}

impl Message {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether `address` is one of the envelope recipients (ASCII case-insensitive).
    pub fn is_addressed_to(&self, address: &str) -> bool {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        self.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(address))
    }
}

/// A shared, bounded list of [`Message`]s; clones share the same messages.
#[derive(Debug, Clone)]
pub struct Inbox {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Bumped after every delivery, so waiters wake without polling.
    arrivals: watch::Sender<u64>,
    capacity: usize,
}

#[derive(Debug)]
struct State {
    messages: VecDeque<Message>,
    next_id: u64,
}

impl Default for Inbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Inbox {
    /// An empty inbox keeping up to [`DEFAULT_CAPACITY`] messages.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// An empty inbox keeping up to `capacity` messages (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    messages: VecDeque::new(),
                    next_id: 1,
                }),
                arrivals: watch::Sender::new(0),
                capacity: capacity.max(1),
            }),
        }
    }

    /// Stores a message as if it had arrived over SMTP and wakes every waiter; returns it.
    pub fn deliver(&self, envelope: Envelope, data: &[u8]) -> Message {
        // Parse outside the lock: a big message must not stall readers.
        let parsed = mime::parse(data);
        let raw = String::from_utf8_lossy(data).into_owned();
        let message = {
            let mut state = self.lock();
            let message = Message {
                id: state.next_id,
                // Taken under the lock so inbox order and seq order agree.
                seq: mock_kit::journal::next_sequence(),
                received_at_ms: mock_kit::journal::now_ms(),
                mail_from: envelope.mail_from,
                rcpt_to: envelope.rcpt_to,
                headers: parsed.headers,
                subject: parsed.subject,
                body: parsed.body,
                raw,
            };
            state.next_id += 1;
            state.messages.push_back(message.clone());
            while state.messages.len() > self.shared.capacity {
                state.messages.pop_front();
            }
            message
        };
        self.shared
            .arrivals
            .send_modify(|count| *count = count.wrapping_add(1));
        message
    }

    /// Every stored message, oldest first.
    pub fn messages(&self) -> Vec<Message> {
        self.lock().messages.iter().cloned().collect()
    }

    /// Messages whose envelope names `address` as a recipient (case-insensitive), oldest first.
    pub fn for_recipient(&self, address: &str) -> Vec<Message> {
        self.lock()
            .messages
            .iter()
            .filter(|m| m.is_addressed_to(address))
            .cloned()
            .collect()
    }

    /// The message with this id, if it is still stored.
    pub fn get(&self, id: u64) -> Option<Message> {
        self.lock().messages.iter().find(|m| m.id == id).cloned()
    }

    /// Number of stored messages.
    pub fn len(&self) -> usize {
        self.lock().messages.len()
    }

    /// Whether no message is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every stored message (ids keep counting).
    pub fn clear(&self) {
        self.lock().messages.clear();
    }

    /// The first message to `recipient` with `seq` above `after_seq` (any, if `None`), waiting
    /// up to `timeout` for one to arrive. Pass the `seq` of the last message seen, or a journal
    /// entry's `seq`, to ignore mail that was already there.
    pub async fn wait_for(
        &self,
        recipient: &str,
        after_seq: Option<u64>,
        timeout: Duration,
    ) -> Option<Message> {
        let find = || {
            self.lock()
                .messages
                .iter()
                .find(|m| {
                    after_seq.is_none_or(|after| m.seq > after) && m.is_addressed_to(recipient)
                })
                .cloned()
        };
        // Subscribe before looking, so a delivery between the look and the wait still wakes us.
        let mut arrivals = self.shared.arrivals.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(message) = find() {
                return Some(message);
            }
            match tokio::time::timeout_at(deadline, arrivals.changed()).await {
                Ok(Ok(())) => {}
                // Timed out (or, impossibly, the sender we own went away): one last look.
                _ => return find(),
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn envelope(to: &[&str]) -> Envelope {
        Envelope {
            mail_from: "as@x.test".to_owned(),
            rcpt_to: to.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn recipients_match_case_insensitively_and_ids_and_seqs_ascend() {
        let inbox = Inbox::new();
        let first = inbox.deliver(
            envelope(&["Alice@Example.TEST"]),
            b"Subject: one\r\n\r\nhi\r\n",
        );
        let second = inbox.deliver(
            envelope(&["bob@example.test", "alice@example.test"]),
            b"x\r\n",
        );
        assert_eq!((first.id, second.id), (1, 2));
        assert!(first.seq < second.seq);
        assert_eq!(first.subject, "one");
        let ids: Vec<u64> = inbox
            .for_recipient("<alice@example.test>")
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, [1, 2]);
        assert!(inbox.for_recipient("carol@example.test").is_empty());
        assert_eq!(inbox.get(2).unwrap().rcpt_to.len(), 2);
    }

    #[test]
    fn the_oldest_messages_are_dropped_beyond_capacity() {
        let inbox = Inbox::with_capacity(3);
        for _ in 0..5 {
            inbox.deliver(envelope(&["a@x.test"]), b"x\r\n");
        }
        let ids: Vec<u64> = inbox.messages().iter().map(|m| m.id).collect();
        assert_eq!(ids, [3, 4, 5]);
    }

    #[test]
    fn clearing_empties_the_inbox_but_ids_keep_counting() {
        let inbox = Inbox::new();
        inbox.deliver(envelope(&["a@x.test"]), b"x\r\n");
        inbox.clear();
        assert!(inbox.is_empty());
        assert_eq!(inbox.deliver(envelope(&["a@x.test"]), b"x\r\n").id, 2);
    }

    #[tokio::test]
    async fn wait_for_wakes_on_a_later_delivery_and_skips_older_mail() {
        let inbox = Inbox::new();
        let old = inbox.deliver(envelope(&["a@x.test"]), b"Subject: old\r\n\r\n");
        let sender = inbox.clone();
        let delivery = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            sender.deliver(envelope(&["b@x.test"]), b"Subject: other\r\n\r\n");
            sender.deliver(envelope(&["A@x.test"]), b"Subject: new\r\n\r\n");
        });
        let got = inbox
            .wait_for("a@x.test", Some(old.seq), Duration::from_secs(5))
            .await;
        assert_eq!(got.unwrap().subject, "new");
        delivery.await.unwrap();
        let immediate = inbox.wait_for("a@x.test", None, Duration::ZERO).await;
        assert_eq!(immediate.unwrap().subject, "old");
    }

    #[tokio::test]
    async fn wait_for_gives_up_after_the_timeout() {
        let inbox = Inbox::new();
        inbox.deliver(envelope(&["a@x.test"]), b"x\r\n");
        let started = std::time::Instant::now();
        assert_eq!(
            inbox
                .wait_for("nobody@x.test", None, Duration::from_millis(100))
                .await,
            None
        );
        assert!(started.elapsed() >= Duration::from_millis(100));
    }
}
