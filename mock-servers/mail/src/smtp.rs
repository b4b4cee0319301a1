//! The SMTP session as a pure state machine, and the line framer that feeds it.
//!
//! [`Session`] knows the RFC 5321 subset this sink speaks (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP,
//! VRFY, QUIT) but does no I/O: the connection driver in [`crate::server`] reads [`Frame`]s with a
//! [`LineReader`], hands each to [`Session::handle`] and acts on the returned [`Step`]. Keeping the
//! sockets out lets the unit tests below walk every state without a network, and keeps the rule
//! "nothing a client sends may panic the server" in one place: every input maps to a reply.

use std::fmt::Write as _;
use std::io;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Most recipients one transaction may name (RFC 5321 §4.5.3.1.8 asks for at least 100).
pub const MAX_RECIPIENTS: usize = 100;

/// Longest command line accepted, in bytes without the line ending. RFC 5321 allows 512; a sink
/// has no reason to be stricter than a real relay, so it tolerates more before answering 500.
pub const MAX_COMMAND_LINE: usize = 4096;

/// How the server treats mail, switchable at run time to test how a sender copes with failure.
///
/// The connection driver reads the current behaviour at each decision point, so a switch applies
/// to connections that are already open as well as new ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Behaviour {
    /// Accept every well-formed message (the default).
    #[default]
    Accept,
    /// Answer every RCPT TO with this reply code (e.g. 550, or 450 for a temporary refusal).
    /// A code outside 400..=599 would tell the client the recipient was accepted, so it is
    /// replaced by 550.
    RejectRecipients(u16),
    /// Take the whole message, then answer 451 after the final dot and store nothing.
    TempFail,
    /// Send the 220 greeting, then close the connection without reading anything.
    DropAfterGreeting,
}

/// One SMTP reply: a code and one or more text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    /// A single-line reply.
    pub fn new(code: u16, text: impl Into<String>) -> Self {
        Self {
            code,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply (`250-first`, …, `250 last`), as EHLO sends.
    pub fn multi(code: u16, lines: Vec<String>) -> Self {
        Self { code, lines }
    }

    /// The three-digit reply code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The reply as it goes on the wire, every line ending in CRLF.
    pub fn to_wire(&self) -> String {
        let mut wire = String::new();
        let last = self.lines.len().saturating_sub(1);
        for (index, line) in self.lines.iter().enumerate() {
            let separator = if index == last { ' ' } else { '-' };
            let _ = write!(wire, "{}{separator}{line}\r\n", self.code);
        }
        if self.lines.is_empty() {
            let _ = write!(wire, "{}\r\n", self.code);
        }
        wire
    }
}

/// One unit of client input, as cut by [`LineReader`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete line without its line ending (CRLF or a bare LF).
    Line(Vec<u8>),
    /// A line longer than the limit; its bytes were discarded. Holds the discarded length.
    TooLong(usize),
}

/// Who sent a message and to whom, as given in MAIL FROM and RCPT TO.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// The reverse path; empty for a null sender (`MAIL FROM:<>`, used by bounces).
    pub mail_from: String,
    /// The forward paths, in the order accepted.
    pub rcpt_to: Vec<String>,
}

/// What the connection driver does after feeding one frame to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to send (a line of message content was taken).
    Silent,
    /// Send this reply and read on.
    Reply(Reply),
    /// A message is complete: store it, then send 250 with its id.
    Deliver {
        /// The transaction's sender and recipients.
        envelope: Envelope,
        /// The message content, dot-unstuffed, every line ending in CRLF.
        data: Vec<u8>,
    },
    /// Send this reply, then close the connection.
    Close(Reply),
}

/// Fixed parameters of every session on one server.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    /// Name announced in the greeting and in EHLO.
    pub hostname: String,
    /// Largest message accepted, in bytes of content (after dot-unstuffing, CRLF line ends).
    pub max_message_bytes: usize,
}

/// The state of one SMTP conversation.
#[derive(Debug)]
pub struct Session {
    limits: SessionLimits,
    greeted: bool,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
    data: Option<Content>,
}

/// Message content being received after DATA.
#[derive(Debug, Default)]
struct Content {
    bytes: Vec<u8>,
    /// Bytes the client sent for this message, counted even after the limit, when `bytes` is
    /// emptied and no longer grows.
    received: usize,
}

impl Session {
    /// A new session, before the client's EHLO/HELO.
    pub fn new(limits: SessionLimits) -> Self {
        Self {
            limits,
            greeted: false,
            mail_from: None,
            rcpt_to: Vec::new(),
            data: None,
        }
    }

    /// The greeting sent when the connection opens.
    pub fn greeting(&self) -> Reply {
        Reply::new(
            220,
            format!("{} ESMTP mock-mail ready", self.limits.hostname),
        )
    }

    /// The reply sent before closing an idle connection.
    pub fn idle_timeout_reply(&self) -> Reply {
        Reply::new(
            421,
            format!(
                "4.4.2 {} Idle timeout, closing connection",
                self.limits.hostname
            ),
        )
    }

    /// The longest line the framer should buffer next. During DATA a single line may be as long
    /// as a whole message; anything longer overflows the message anyway.
    pub fn line_limit(&self) -> usize {
        if self.data.is_some() {
            self.limits.max_message_bytes
        } else {
            MAX_COMMAND_LINE
        }
    }

    /// Whether the session is inside DATA, reading message content.
    pub fn in_data(&self) -> bool {
        self.data.is_some()
    }

    /// Advances the session by one frame of client input under the current `behaviour`.
    pub fn handle(&mut self, frame: Frame, behaviour: Behaviour) -> Step {
        if self.data.is_some() {
            return self.content(frame, behaviour);
        }
        let line = match frame {
            Frame::TooLong(_) => return reply(500, "5.5.2 Line too long"),
            Frame::Line(line) => line,
        };
        // Non-UTF-8 bytes become U+FFFD, so garbage simply fails to match any command.
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_matches(|c: char| c == ' ' || c == '\t');
        let (verb, args) = match line.split_once([' ', '\t']) {
            Some((verb, args)) => (verb, args.trim_start_matches([' ', '\t'])),
            None => (line, ""),
        };
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => self.hello(args, true),
            "HELO" => self.hello(args, false),
            "MAIL" => self.mail(args),
            "RCPT" => self.rcpt(args, behaviour),
            "DATA" => self.start_data(args),
            "RSET" if args.is_empty() => {
                self.reset();
                reply(250, "2.0.0 OK")
            }
            "NOOP" => reply(250, "2.0.0 OK"),
            "VRFY" if args.is_empty() => reply(501, "5.5.4 Syntax: VRFY <address>"),
            "VRFY" => reply(
                252,
                "2.5.0 Cannot VRFY user, but will accept message and attempt delivery",
            ),
            "QUIT" if args.is_empty() => Step::Close(Reply::new(
                221,
                format!("2.0.0 {} closing connection", self.limits.hostname),
            )),
            "RSET" | "QUIT" => reply(501, "5.5.4 Syntax: no parameters allowed"),
            "EXPN" | "HELP" | "TURN" | "ETRN" | "AUTH" | "STARTTLS" | "BDAT" | "SEND" | "SOML"
            | "SAML" => reply(502, "5.5.1 Command not implemented"),
            _ => reply(500, "5.5.2 Command unrecognized"),
        }
    }

    /// Forgets the current transaction (RSET, a new EHLO, or the end of DATA).
    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
        self.data = None;
    }

    fn hello(&mut self, domain: &str, extended: bool) -> Step {
        if domain.is_empty() {
            return reply(
                501,
                if extended {
                    "5.5.4 Syntax: EHLO domain"
                } else {
                    "5.5.4 Syntax: HELO domain"
                },
            );
        }
        // RFC 5321 §4.1.4: EHLO/HELO in mid-transaction resets it.
        self.reset();
        self.greeted = true;
        let hostname = self.limits.hostname.clone();
        if !extended {
            return Step::Reply(Reply::new(250, hostname));
        }
        Step::Reply(Reply::multi(
            250,
            vec![
                hostname,
                "PIPELINING".to_owned(),
                format!("SIZE {}", self.limits.max_message_bytes),
                "8BITMIME".to_owned(),
                "SMTPUTF8".to_owned(),
                "ENHANCEDSTATUSCODES".to_owned(),
            ],
        ))
    }

    fn mail(&mut self, args: &str) -> Step {
        if !self.greeted {
            return reply(503, "5.5.1 Send HELO/EHLO first");
        }
        if self.mail_from.is_some() {
            return reply(503, "5.5.1 Nested MAIL command");
        }
        let Some(rest) = strip_prefix_ignore_case(args, "FROM:") else {
            return reply(501, "5.5.4 Syntax: MAIL FROM:<address>");
        };
        let Some((address, params)) = split_path(rest) else {
            return reply(501, "5.5.4 Syntax: MAIL FROM:<address>");
        };
        if !valid_address(address) {
            return reply(501, "5.1.7 Bad sender address syntax");
        }
        for param in params.split_ascii_whitespace() {
            let (key, value) = param
                .split_once('=')
                .map_or((param, None), |(k, v)| (k, Some(v)));
            match (key.to_ascii_uppercase().as_str(), value) {
                ("SIZE", Some(value)) => match value.parse::<u64>() {
                    Ok(size)
                        if size
                            > u64::try_from(self.limits.max_message_bytes).unwrap_or(u64::MAX) =>
                    {
                        return reply(552, "5.3.4 Message size exceeds fixed maximum message size");
                    }
                    Ok(_) => {}
                    Err(_) => return reply(501, "5.5.4 Syntax: SIZE=<number of bytes>"),
                },
                ("BODY", Some(value))
                    if value.eq_ignore_ascii_case("7BIT")
                        || value.eq_ignore_ascii_case("8BITMIME") => {}
                ("BODY", _) => return reply(501, "5.5.4 Syntax: BODY=7BIT or BODY=8BITMIME"),
                ("SMTPUTF8", None) => {}
                _ => return reply(555, "5.5.4 MAIL FROM parameter not recognized"),
            }
        }
        self.mail_from = Some(address.to_owned());
        reply(250, "2.1.0 OK")
    }

    fn rcpt(&mut self, args: &str, behaviour: Behaviour) -> Step {
        if !self.greeted || self.mail_from.is_none() {
            return reply(503, "5.5.1 Need MAIL before RCPT");
        }
        let Some(rest) = strip_prefix_ignore_case(args, "TO:") else {
            return reply(501, "5.5.4 Syntax: RCPT TO:<address>");
        };
        let Some((address, params)) = split_path(rest) else {
            return reply(501, "5.5.4 Syntax: RCPT TO:<address>");
        };
        if address.is_empty() || !valid_address(address) {
            return reply(501, "5.1.3 Bad recipient address syntax");
        }
        if !params.trim().is_empty() {
            return reply(555, "5.5.4 RCPT TO parameter not recognized");
        }
        if self.rcpt_to.len() >= MAX_RECIPIENTS {
            return reply(452, "4.5.3 Too many recipients");
        }
        if let Behaviour::RejectRecipients(code) = behaviour {
            let code = if (400..=599).contains(&code) {
                code
            } else {
                550
            };
            return Step::Reply(Reply::new(
                code,
                format!("{}.1.1 Recipient rejected (scripted behaviour)", code / 100),
            ));
        }
        self.rcpt_to.push(address.to_owned());
        reply(250, "2.1.5 OK")
    }

    fn start_data(&mut self, args: &str) -> Step {
        if !args.is_empty() {
            return reply(501, "5.5.4 Syntax: no parameters allowed");
        }
        if !self.greeted || self.mail_from.is_none() {
            return reply(503, "5.5.1 Need MAIL command");
        }
        if self.rcpt_to.is_empty() {
            return reply(503, "5.5.1 Need RCPT command");
        }
        self.data = Some(Content::default());
        reply(354, "End data with <CR><LF>.<CR><LF>")
    }

    /// One frame of message content after DATA.
    fn content(&mut self, frame: Frame, behaviour: Behaviour) -> Step {
        let max = self.limits.max_message_bytes;
        let Some(content) = self.data.as_mut() else {
            return Step::Silent;
        };
        match frame {
            Frame::Line(line) if line == b"." => return self.finish_data(behaviour),
            Frame::Line(line) => {
                // RFC 5321 §4.5.2: the client doubled every leading dot; take one away.
                let text = line.strip_prefix(b".").unwrap_or(&line);
                content.received = content.received.saturating_add(text.len() + 2);
                if content.received <= max {
                    content.bytes.extend_from_slice(text);
                    content.bytes.extend_from_slice(b"\r\n");
                }
            }
            Frame::TooLong(length) => {
                content.received = content.received.saturating_add(length + 2);
            }
        }
        if content.received > max {
            // Past the limit nothing more is kept; free what was.
            content.bytes = Vec::new();
        }
        if content.received > max.saturating_mul(2) {
            // Reading a runaway message to its end would tie the connection up for as long as
            // the client likes; past twice the limit, answer and hang up.
            self.reset();
            return Step::Close(Reply::new(552, "5.3.4 Message too big; closing connection"));
        }
        Step::Silent
    }

    fn finish_data(&mut self, behaviour: Behaviour) -> Step {
        let content = self.data.take().unwrap_or_default();
        let envelope = Envelope {
            mail_from: self.mail_from.take().unwrap_or_default(),
            rcpt_to: std::mem::take(&mut self.rcpt_to),
        };
        if content.received > self.limits.max_message_bytes {
            return reply(552, "5.3.4 Message size exceeds fixed maximum message size");
        }
        if behaviour == Behaviour::TempFail {
            return reply(
                451,
                "4.3.0 Temporary failure (scripted behaviour); try again later",
            );
        }
        Step::Deliver {
            envelope,
            data: content.bytes,
        }
    }
}

fn reply(code: u16, text: &str) -> Step {
    Step::Reply(Reply::new(code, text))
}

/// `prefix` at the start of `text`, ASCII case-insensitively; returns the rest.
fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Splits `<address> params` into the address and the parameter text. Leniently accepts a space
/// after the colon and a bare address without angle brackets, as many senders produce them.
fn split_path(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    let (path, params) = if let Some(inner) = text.strip_prefix('<') {
        let end = inner.find('>')?;
        (&inner[..end], &inner[end + 1..])
    } else {
        let end = text.find(' ').unwrap_or(text.len());
        (&text[..end], &text[end..])
    };
    // An obsolete source route (`<@relay1,@relay2:user@host>`) names relays, not the mailbox.
    let address = match path.strip_prefix('@') {
        Some(_) => path.split_once(':').map_or(path, |(_, mailbox)| mailbox),
        None => path,
    };
    if !params.is_empty() && !params.starts_with(' ') {
        return None;
    }
    Some((address, params))
}

/// No whitespace or control characters, and no stray brackets.
fn valid_address(address: &str) -> bool {
    !address
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
}

/// Reads [`Frame`]s from a byte stream, accepting CRLF and bare LF line endings alike.
///
/// An over-long line is not buffered: once it passes the limit its bytes are dropped up to the
/// next LF and it comes out as [`Frame::TooLong`], so memory per connection stays bounded by the
/// limit whatever the client sends.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    buffer: Vec<u8>,
    /// Start of the unread bytes in `buffer`. Consumed lines only move this offset; the buffer
    /// is compacted once per read, so a pipelined burst of many lines is not copied per line.
    start: usize,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// Wraps a byte stream.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buffer: Vec::new(),
            start: 0,
        }
    }

    /// The next frame, or `None` when the stream ends (an unterminated last line is dropped:
    /// there is nobody left to answer it).
    pub async fn next_frame(&mut self, limit: usize) -> io::Result<Option<Frame>> {
        let mut discarded: Option<usize> = None;
        let mut scanned = self.start;
        loop {
            let unread = self.buffer.get(scanned..).unwrap_or_default();
            if let Some(offset) = unread.iter().position(|&b| b == b'\n') {
                let end = scanned + offset;
                let mut line = self.buffer.get(self.start..end).unwrap_or_default();
                self.start = end + 1;
                if let Some(stripped) = line.strip_suffix(b"\r") {
                    line = stripped;
                }
                return Ok(Some(match discarded {
                    Some(length) => Frame::TooLong(length + line.len()),
                    None if line.len() > limit => Frame::TooLong(line.len()),
                    None => Frame::Line(line.to_vec()),
                }));
            }
            self.buffer.drain(..self.start);
            self.start = 0;
            if self.buffer.len() > limit {
                *discarded.get_or_insert(0) += self.buffer.len();
                self.buffer.clear();
            }
            scanned = self.buffer.len();
            self.buffer.reserve(8192);
            if self.inner.read_buf(&mut self.buffer).await? == 0 {
                return Ok(None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn session(max: usize) -> Session {
        Session::new(SessionLimits {
            hostname: "mx.test".to_owned(),
            max_message_bytes: max,
        })
    }

    fn code(step: &Step) -> u16 {
        match step {
            Step::Reply(reply) | Step::Close(reply) => reply.code(),
            Step::Silent => 0,
            Step::Deliver { .. } => 1,
        }
    }

    fn line(text: &str) -> Frame {
        Frame::Line(text.as_bytes().to_vec())
    }

    /// Feeds `lines` and returns the reply code of each (0 for silent, 1 for a delivery).
    fn codes(session: &mut Session, lines: &[&str]) -> Vec<u16> {
        lines
            .iter()
            .map(|text| code(&session.handle(line(text), Behaviour::Accept)))
            .collect()
    }

    #[test]
    fn a_whole_transaction_delivers_unstuffed_content_with_crlf_line_ends() {
        let mut s = session(1024);
        let head = codes(
            &mut s,
            &[
                "EHLO client",
                "MAIL FROM:<a@x.test>",
                "RCPT TO:<b@y.test>",
                "DATA",
            ],
        );
        assert_eq!(head, [250, 250, 250, 354]);
        for text in ["Subject: hi", "", "..leading dot", "plain"] {
            assert_eq!(s.handle(line(text), Behaviour::Accept), Step::Silent);
        }
        let Step::Deliver { envelope, data } = s.handle(line("."), Behaviour::Accept) else {
            panic!("the final dot must deliver");
        };
        assert_eq!(envelope.mail_from, "a@x.test");
        assert_eq!(envelope.rcpt_to, ["b@y.test"]);
        assert_eq!(data, b"Subject: hi\r\n\r\n.leading dot\r\nplain\r\n");
        assert!(!s.in_data());
        assert_eq!(
            codes(&mut s, &["DATA"]),
            [503],
            "the transaction ended with the dot"
        );
    }

    #[test]
    fn ehlo_advertises_the_extensions_and_the_size_limit() {
        let Step::Reply(reply) = session(2048).handle(line("ehlo client"), Behaviour::Accept)
        else {
            panic!("EHLO must be answered");
        };
        let wire = reply.to_wire();
        assert!(wire.starts_with("250-mx.test\r\n"), "{wire}");
        for extension in [
            "250-PIPELINING\r\n",
            "250-SIZE 2048\r\n",
            "250-8BITMIME\r\n",
            "250-SMTPUTF8\r\n",
        ] {
            assert!(wire.contains(extension), "{extension} missing from {wire}");
        }
        assert!(wire.ends_with("250 ENHANCEDSTATUSCODES\r\n"), "{wire}");
    }

    #[test]
    fn commands_out_of_sequence_get_503() {
        let mut s = session(1024);
        assert_eq!(
            codes(
                &mut s,
                &["MAIL FROM:<a@x.test>", "RCPT TO:<b@y.test>", "DATA"]
            ),
            [503, 503, 503]
        );
        assert_eq!(
            codes(&mut s, &["HELO c", "DATA", "RCPT TO:<b@y.test>"]),
            [250, 503, 503]
        );
        assert_eq!(
            codes(&mut s, &["MAIL FROM:<>", "MAIL FROM:<a@x.test>", "DATA"]),
            [250, 503, 503]
        );
    }

    #[test]
    fn malformed_arguments_get_501_and_unknown_parameters_555() {
        let mut s = session(1024);
        let replies = codes(
            &mut s,
            &[
                "EHLO",
                "EHLO c",
                "MAIL TO:<a@x.test>",
                "MAIL FROM:<a@x.test",
                "MAIL FROM:<a b@x.test>",
                "MAIL FROM:<a@x.test> SIZE=lots",
                "MAIL FROM:<a@x.test> BODY=BINARYMIME",
                "MAIL FROM:<a@x.test> RET=HDRS",
                "MAIL FROM:<a@x.test>x",
                "MAIL FROM: <a@x.test> size=10 body=8bitmime smtputf8",
                "RCPT TO:<>",
                "RCPT TO:<b@y.test> NOTIFY=NEVER",
                "RCPT TO:b@y.test",
                "DATA now",
                "RSET everything",
                "VRFY",
            ],
        );
        assert_eq!(
            replies,
            [
                501, 250, 501, 501, 501, 501, 501, 555, 501, 250, 501, 555, 250, 501, 501, 501
            ]
        );
    }

    #[test]
    fn a_declared_size_over_the_limit_is_refused_with_552() {
        let mut s = session(100);
        assert_eq!(
            codes(
                &mut s,
                &[
                    "EHLO c",
                    "MAIL FROM:<a@x.test> SIZE=101",
                    "MAIL FROM:<a@x.test> SIZE=100"
                ]
            ),
            [250, 552, 250]
        );
    }

    #[test]
    fn content_over_the_limit_is_read_to_the_end_then_refused_and_the_session_goes_on() {
        let mut s = session(10);
        assert_eq!(
            codes(
                &mut s,
                &[
                    "EHLO c",
                    "MAIL FROM:<a@x.test>",
                    "RCPT TO:<b@y.test>",
                    "DATA"
                ]
            ),
            [250, 250, 250, 354]
        );
        assert_eq!(codes(&mut s, &["0123456789", "."]), [0, 552]);
        assert_eq!(codes(&mut s, &["NOOP", "MAIL FROM:<a@x.test>"]), [250, 250]);
    }

    #[test]
    fn a_runaway_message_is_cut_off_past_twice_the_limit() {
        let mut s = session(10);
        assert_eq!(
            codes(
                &mut s,
                &[
                    "EHLO c",
                    "MAIL FROM:<a@x.test>",
                    "RCPT TO:<b@y.test>",
                    "DATA"
                ]
            ),
            [250, 250, 250, 354]
        );
        assert_eq!(
            s.handle(Frame::TooLong(15), Behaviour::Accept),
            Step::Silent
        );
        assert!(
            matches!(s.handle(Frame::TooLong(5), Behaviour::Accept), Step::Close(r) if r.code() == 552)
        );
    }

    #[test]
    fn the_recipient_cap_answers_452_and_keeps_the_accepted_ones() {
        let mut s = session(1024);
        assert_eq!(
            codes(&mut s, &["EHLO c", "MAIL FROM:<a@x.test>"]),
            [250, 250]
        );
        for n in 0..MAX_RECIPIENTS {
            assert_eq!(codes(&mut s, &[&format!("RCPT TO:<r{n}@y.test>")]), [250]);
        }
        assert_eq!(
            codes(&mut s, &["RCPT TO:<one-too-many@y.test>", "DATA", "."]),
            [452, 354, 1]
        );
    }

    #[test]
    fn scripted_rejections_use_the_given_code_or_550_when_it_would_mean_success() {
        let mut s = session(1024);
        assert_eq!(
            codes(&mut s, &["EHLO c", "MAIL FROM:<a@x.test>"]),
            [250, 250]
        );
        assert_eq!(
            code(&s.handle(line("RCPT TO:<b@y.test>"), Behaviour::RejectRecipients(450))),
            450
        );
        assert_eq!(
            code(&s.handle(line("RCPT TO:<b@y.test>"), Behaviour::RejectRecipients(250))),
            550
        );
        assert_eq!(codes(&mut s, &["DATA"]), [503], "no recipient was accepted");
    }

    #[test]
    fn temp_fail_answers_451_after_the_dot_and_delivers_nothing() {
        let mut s = session(1024);
        codes(
            &mut s,
            &[
                "EHLO c",
                "MAIL FROM:<a@x.test>",
                "RCPT TO:<b@y.test>",
                "DATA",
                "hello",
            ],
        );
        assert_eq!(code(&s.handle(line("."), Behaviour::TempFail)), 451);
        assert!(!s.in_data());
    }

    #[test]
    fn unknown_verbs_get_500_and_known_unimplemented_ones_502() {
        let mut s = session(1024);
        assert_eq!(
            codes(
                &mut s,
                &[
                    "FROB",
                    "",
                    "\u{fffd}\u{1}",
                    "HELP",
                    "STARTTLS",
                    "VRFY bob",
                    "NOOP x"
                ]
            ),
            [500, 500, 500, 502, 502, 252, 250]
        );
        assert_eq!(
            code(&s.handle(Frame::TooLong(9000), Behaviour::Accept)),
            500
        );
    }

    #[test]
    fn source_routes_and_bare_addresses_are_taken_leniently() {
        assert_eq!(
            split_path("<@relay.test,@b.test:user@host.test> SIZE=1"),
            Some(("user@host.test", " SIZE=1"))
        );
        assert_eq!(split_path("user@host.test"), Some(("user@host.test", "")));
        assert_eq!(split_path("<>"), Some(("", "")));
        assert_eq!(split_path("<a@b"), None);
    }

    #[test]
    fn replies_render_multi_line_with_dashes_and_a_final_space() {
        let reply = Reply::multi(250, vec!["a".into(), "b".into(), "c".into()]);
        assert_eq!(reply.to_wire(), "250-a\r\n250-b\r\n250 c\r\n");
        assert_eq!(Reply::new(221, "bye").to_wire(), "221 bye\r\n");
    }

    async fn frames(input: &[u8], limit: usize) -> Vec<Frame> {
        let mut reader = LineReader::new(input);
        let mut out = Vec::new();
        while let Some(frame) = reader.next_frame(limit).await.unwrap() {
            out.push(frame);
        }
        out
    }

    #[tokio::test]
    async fn the_framer_takes_crlf_and_bare_lf_and_drops_an_unterminated_tail() {
        let got = frames(b"one\r\ntwo\nthree\r\r\n\ntail", 100).await;
        assert_eq!(got, [line("one"), line("two"), line("three\r"), line(""),]);
    }

    #[tokio::test]
    async fn the_framer_reports_over_long_lines_without_keeping_them() {
        let long = vec![b'x'; 50_000];
        let mut input = b"short\r\n".to_vec();
        input.extend_from_slice(&long);
        input.extend_from_slice(b"\r\nafter\r\n");
        let got = frames(&input, 4096).await;
        assert_eq!(got, [line("short"), Frame::TooLong(50_000), line("after")]);
    }
}
