//! Just enough HTML reading to drive login and consent pages the way a browser would.
//!
//! The harness must not depend on one AS's field names beyond the ones a user types, so it reads
//! every `<form>` on a page, keeps the hidden and pre-filled fields, and submits them back with the
//! user's input added. This is a tolerant tag scanner, not an HTML parser: it only has to cope with
//! well-formed pages from an AS under test, and it never panics on anything else.

/// One `<form>` found on a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// The form's `id` attribute, if any.
    pub id: Option<String>,
    /// The `action` attribute (empty means the page's own URL).
    pub action: String,
    /// The `method` attribute, lower-cased (`get` when absent).
    pub method: String,
    /// Named `<input>` fields with their current values, in document order.
    pub fields: Vec<(String, String)>,
    /// Named `<button>`s (and submit inputs) with their values.
    pub buttons: Vec<(String, String)>,
}

impl Form {
    /// The value of field `name`, if the form has one.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the form has a field (of any type) named `name`.
    pub fn has_field(&self, name: &str) -> bool {
        self.fields.iter().any(|(n, _)| n == name)
    }

    /// The fields to submit: the form's own values, with `overrides` replacing or adding entries,
    /// plus the chosen button.
    pub fn submission(
        &self,
        overrides: &[(&str, &str)],
        button: Option<(&str, &str)>,
    ) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .fields
            .iter()
            .filter(|(n, _)| !overrides.iter().any(|(o, _)| o == n))
            .cloned()
            .collect();
        out.extend(
            overrides
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
        );
        if let Some((n, v)) = button {
            out.push((n.to_owned(), v.to_owned()));
        }
        out
    }
}

/// Every form on the page, in document order.
pub fn forms(html: &str) -> Vec<Form> {
    let mut forms = Vec::new();
    let mut current: Option<Form> = None;
    for tag in tags(html) {
        match tag.name.as_str() {
            "form" if !tag.closing => {
                current = Some(Form {
                    id: tag.attr("id").map(str::to_owned),
                    action: tag.attr("action").unwrap_or_default().to_owned(),
                    method: tag.attr("method").unwrap_or("get").to_ascii_lowercase(),
                    fields: Vec::new(),
                    buttons: Vec::new(),
                });
            }
            "form" => forms.extend(current.take()),
            "input" | "button" | "textarea" | "select" if !tag.closing => {
                let Some(form) = current.as_mut() else {
                    continue;
                };
                let Some(name) = tag.attr("name") else {
                    continue;
                };
                let value = tag.attr("value").unwrap_or_default().to_owned();
                let kind = tag.attr("type").unwrap_or_default().to_ascii_lowercase();
                if tag.name == "button" || kind == "submit" {
                    form.buttons.push((name.to_owned(), value));
                } else {
                    form.fields.push((name.to_owned(), value));
                }
            }
            _ => {}
        }
    }
    // An unclosed form at the end of the page still counts.
    forms.extend(current);
    forms
}

/// A start or end tag with its attributes.
struct Tag {
    name: String,
    closing: bool,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Scans `html` for tags; text, comments and malformed bits are skipped.
fn tags(html: &str) -> Vec<Tag> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        if let Some(after) = rest.strip_prefix("!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let closing = rest.starts_with('/');
        let body = if closing { &rest[1..] } else { rest };
        let name_len = body
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(body.len());
        if name_len == 0 {
            continue;
        }
        let name = body[..name_len].to_ascii_lowercase();
        let (attrs, consumed) = attributes(&body[name_len..]);
        rest = &body[name_len + consumed..];
        out.push(Tag {
            name,
            closing,
            attrs,
        });
    }
    out
}

/// Parses attributes up to the closing `>`; returns them and the bytes consumed.
fn attributes(s: &str) -> (Vec<(String, String)>, usize) {
    let bytes = s.as_bytes();
    let mut attrs = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            return (attrs, i);
        }
        if bytes[i] == b'>' {
            return (attrs, i + 1);
        }
        let name_start = i;
        while i < bytes.len()
            && !matches!(bytes[i], b'=' | b'>' | b'/')
            && !bytes[i].is_ascii_whitespace()
        {
            i += 1;
        }
        let name = s[name_start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                let start = i + 1;
                let end = s[start..]
                    .find(quote as char)
                    .map_or(s.len(), |e| start + e);
                value = decode_entities(&s[start..end]);
                i = (end + 1).min(s.len());
            } else {
                let start = i;
                while i < bytes.len() && bytes[i] != b'>' && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = decode_entities(&s[start..i]);
            }
        }
        if !name.is_empty() {
            attrs.push((name, value));
        }
    }
}

/// Decodes the entities an HTML escaper produces in attribute values.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hidden_fields_inputs_and_buttons_of_each_form() {
        let html = r#"<!doctype html><p>hi <b>there</b></p>
            <!-- <form id="commented"> -->
            <form id="code-form" method="POST" action="/login/code">
              <input type="hidden" name="request_id" value="r&amp;1">
              <input type=hidden name=csrf value=abc>
              <input name="code" autocomplete="one-time-code">
              <button type="submit" name="decision" value="allow">Allow</button>
            </form>
            <form action='/other'><input name='x' value='&quot;y&quot;'/></form>"#;
        let forms = forms(html);
        assert_eq!(forms.len(), 2);
        let f = &forms[0];
        assert_eq!(f.id.as_deref(), Some("code-form"));
        assert_eq!(f.method, "post");
        assert_eq!(f.action, "/login/code");
        assert_eq!(f.field("request_id"), Some("r&1"));
        assert_eq!(f.field("csrf"), Some("abc"));
        assert_eq!(f.field("code"), Some(""));
        assert_eq!(f.buttons, vec![("decision".into(), "allow".into())]);
        assert_eq!(forms[1].field("x"), Some("\"y\""));
        let sent = f.submission(&[("code", "123456")], Some(("decision", "allow")));
        assert!(sent.contains(&("code".into(), "123456".into())));
        assert!(sent.contains(&("csrf".into(), "abc".into())));
    }

    #[test]
    fn survives_truncated_and_garbled_markup() {
        for html in [
            "<",
            "<form",
            "<form id=\"x",
            "<input name=a value='",
            "</",
            "<<<>>>",
            "<form><input name=a>",
        ] {
            let _ = forms(html);
        }
        assert_eq!(
            forms("<form><input name=a value=1>")[0].field("a"),
            Some("1")
        );
    }
}
