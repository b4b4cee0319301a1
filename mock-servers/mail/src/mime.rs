//! Just enough RFC 5322 / MIME reading to show a message to a test: the header block, a decoded
//! subject, and a single-part text body with its transfer encoding undone.
//!
//! Senders such as lettre pick quoted-printable or base64 on their own as soon as a body holds a
//! non-ASCII character or a long line, so a test that looks for a login code in the raw text would
//! break on an innocent wording change. Multipart bodies are left as they are: the reference AS
//! sends single-part text, and a half-right MIME tree would mislead more than the raw text does.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Base64 as found in mail: padding optional, trailing bits tolerated.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The readable parts of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// Header fields in order, unfolded, values trimmed but not decoded.
    pub headers: Vec<(String, String)>,
    /// The Subject with RFC 2047 encoded words decoded; empty if there is none.
    pub subject: String,
    /// The text after the header block, transfer encoding undone, line ends as LF.
    pub body: String,
}

/// Reads a message as received (CRLF or LF line ends).
pub(crate) fn parse(raw: &[u8]) -> Parsed {
    let (header_block, body) = split_header_block(raw);
    let headers = parse_headers(&String::from_utf8_lossy(header_block));
    let field = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let subject = field("Subject")
        .map(decode_encoded_words)
        .unwrap_or_default();
    let content_type = field("Content-Type").unwrap_or("text/plain");
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let charset = parameter(content_type, "charset");
    let body = if media_type.starts_with("text/") {
        let encoding = field("Content-Transfer-Encoding")
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let decoded = match encoding.as_str() {
            "quoted-printable" => decode_quoted_printable(body),
            // Undecodable base64 is shown as sent rather than lost.
            "base64" => decode_base64(body).unwrap_or_else(|| body.to_vec()),
            _ => body.to_vec(),
        };
        decode_charset(&decoded, charset.as_deref().unwrap_or("utf-8"))
            .unwrap_or_else(|| String::from_utf8_lossy(&decoded).into_owned())
    } else {
        String::from_utf8_lossy(body).into_owned()
    };
    Parsed {
        headers,
        subject,
        body: body.replace("\r\n", "\n"),
    }
}

/// Splits at the first empty line. Content whose first line is no header field has no header
/// block at all, so a bare text is all body rather than a garbled header.
fn split_header_block(raw: &[u8]) -> (&[u8], &[u8]) {
    let first_line = raw.split(|&b| b == b'\n').next().unwrap_or_default();
    if !looks_like_field(first_line) {
        return (&[], raw);
    }
    let mut start = 0;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        let end = start + line.len();
        if line == b"\n" || line == b"\r\n" {
            return (&raw[..start], &raw[end..]);
        }
        start = end;
    }
    (raw, &[])
}

/// `name:` where the name is printable ASCII without spaces (RFC 5322 §2.2).
fn looks_like_field(line: &[u8]) -> bool {
    match line.iter().position(|&b| b == b':') {
        Some(colon) => colon > 0 && line[..colon].iter().all(|&b| (33..=126).contains(&b)),
        None => false,
    }
}

/// Unfolds continuation lines and splits each field at its colon.
fn parse_headers(block: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            // RFC 5322 §2.2.3: unfolding removes the line break and keeps the whitespace.
            if let Some((_, value)) = headers.last_mut() {
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.to_owned()));
        }
    }
    for (_, value) in &mut headers {
        *value = value.trim().to_owned();
    }
    headers
}

/// A `key=value` parameter of a structured header such as Content-Type, unquoted.
fn parameter(value: &str, key: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|part| {
        let (name, value) = part.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case(key)
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// Undoes quoted-printable (RFC 2045 §6.7): `=XX` escapes, `=` soft line breaks, and trailing
/// whitespace that transports may have added. A malformed escape is kept literally.
fn decode_quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    let last = lines.len().saturating_sub(1);
    for (index, line) in lines.into_iter().enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = line.trim_ascii_end();
        let (line, soft_break) = match line.strip_suffix(b"=") {
            Some(rest) => (rest, true),
            None => (line, false),
        };
        let mut bytes = line.iter().copied();
        while let Some(byte) = bytes.next() {
            if byte != b'=' {
                out.push(byte);
                continue;
            }
            let mut lookahead = bytes.clone();
            match (
                lookahead.next().and_then(hex_value),
                lookahead.next().and_then(hex_value),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    bytes = lookahead;
                }
                _ => out.push(b'='),
            }
        }
        if !soft_break && index != last {
            out.push(b'\n');
        }
    }
    out
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

/// Base64 with line breaks and other whitespace ignored.
fn decode_base64(input: &[u8]) -> Option<Vec<u8>> {
    let compact: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    LENIENT_BASE64.decode(compact).ok()
}

/// Bytes in a named charset as text; `None` for a charset this sink does not know.
fn decode_charset(bytes: &[u8], charset: &str) -> Option<String> {
    match charset.to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" | "us-ascii" | "ascii" => {
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
        // Latin-1 bytes are exactly the first 256 code points.
        "iso-8859-1" | "latin1" | "latin-1" => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        _ => None,
    }
}

/// Decodes RFC 2047 encoded words (`=?utf-8?Q?caf=C3=A9?=`, `=?UTF-8?B?...?=`) in a header value;
/// whitespace between two adjacent encoded words is dropped, as §6.2 says. Words that do not
/// decode stay as written.
fn decode_encoded_words(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, candidate) = rest.split_at(start);
        if let Some((text, consumed)) = decode_word(candidate) {
            if !(after_word && before.chars().all(char::is_whitespace)) {
                out.push_str(before);
            }
            out.push_str(&text);
            rest = &candidate[consumed..];
            after_word = true;
        } else {
            out.push_str(before);
            out.push_str("=?");
            rest = &candidate[2..];
            after_word = false;
        }
    }
    out.push_str(rest);
    out
}

/// One encoded word at the start of `text`: its decoded text and its length in `text`.
fn decode_word(text: &str) -> Option<(String, usize)> {
    let inner = text.strip_prefix("=?")?;
    let (charset, rest) = inner.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let encoded = &rest[..end];
    if [charset, encoding, encoded]
        .iter()
        .any(|part| part.contains(char::is_whitespace))
    {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => decode_base64(encoded.as_bytes())?,
        // The Q encoding is quoted-printable with `_` standing for a space.
        "Q" | "q" => decode_quoted_printable(encoded.replace('_', " ").as_bytes()),
        _ => return None,
    };
    // `rest` is a suffix of `text`; the word ends just after its `?=`.
    let consumed = text.len() - rest.len() + end + 2;
    // RFC 2231 §5 lets a language tag follow the charset: `utf-8*en`.
    let charset = charset.split('*').next().unwrap_or(charset);
    Some((decode_charset(&bytes, charset)?, consumed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_printable_bodies_are_decoded_with_soft_breaks_joined() {
        let raw = b"Content-Type: text/plain; charset=utf-8\r\n\
            Content-Transfer-Encoding: quoted-printable\r\n\r\n\
            Your code is 123456 =E2=80=94 valid for ten min=\r\nutes.  \r\n\
            A literal =3D and a stray = sign.\r\n";
        let parsed = parse(raw);
        assert_eq!(
            parsed.body,
            "Your code is 123456 \u{2014} valid for ten minutes.\nA literal = and a stray = sign.\n"
        );
    }

    #[test]
    fn base64_bodies_are_decoded_across_line_breaks() {
        let raw = b"Content-Transfer-Encoding: BASE64\r\n\r\nWW91ciBjb2Rl\r\nIGlzIDY1NDMyMQ==\r\n";
        assert_eq!(parse(raw).body, "Your code is 654321");
    }

    #[test]
    fn undecodable_base64_is_kept_as_sent() {
        let raw = b"Content-Transfer-Encoding: base64\r\n\r\nnot*base64!\r\n";
        assert_eq!(parse(raw).body, "not*base64!\n");
    }

    #[test]
    fn latin1_bodies_become_the_same_characters() {
        let raw = b"Content-Type: text/plain; charset=\"ISO-8859-1\"\nContent-Transfer-Encoding: quoted-printable\n\ncaf=E9\n";
        assert_eq!(parse(raw).body, "caf\u{e9}\n");
    }

    #[test]
    fn multipart_bodies_are_left_undecoded() {
        let raw = b"Content-Type: multipart/alternative; boundary=x\r\nContent-Transfer-Encoding: base64\r\n\r\n--x\r\n";
        assert_eq!(parse(raw).body, "--x\n");
    }

    #[test]
    fn headers_are_unfolded_in_order_and_the_subject_decoded() {
        let raw = b"From: AS <as@x.test>\r\nSubject: =?utf-8?b?Q2Fmw6k=?=\r\n =?UTF-8?Q?_login_code?= (ok)\r\nX-Empty:\r\n\r\nbody";
        let parsed = parse(raw);
        assert_eq!(
            parsed.headers[0],
            ("From".to_owned(), "AS <as@x.test>".to_owned())
        );
        assert_eq!(parsed.headers[2], ("X-Empty".to_owned(), String::new()));
        assert_eq!(parsed.subject, "Caf\u{e9} login code (ok)");
        assert_eq!(parsed.body, "body");
    }

    #[test]
    fn malformed_encoded_words_stay_as_written() {
        for text in [
            "=?utf-8?X?abc?=",
            "=?utf-8?Q?never closed",
            "a =? b",
            "=?koi8-r?B?8NLJ18XU?=",
        ] {
            assert_eq!(decode_encoded_words(text), text);
        }
        assert_eq!(decode_encoded_words("=?utf-8*en?q?hi?= there"), "hi there");
    }

    #[test]
    fn text_without_a_header_block_is_all_body() {
        let parsed = parse(b"just words: no headers\r\n\r\nmore");
        assert_eq!(parsed.headers, Vec::new());
        assert_eq!(parsed.body, "just words: no headers\n\nmore");
        let no_body = parse(b"Subject: only headers\r\n");
        assert_eq!(
            (no_body.subject.as_str(), no_body.body.as_str()),
            ("only headers", "")
        );
    }
}
