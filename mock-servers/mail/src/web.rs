//! The inbox over HTTP: a JSON API for the harness and other processes, and two small HTML pages
//! for a person running `serve` who wants to read the login codes.
//!
//! Routes: `GET /api/messages[?to=addr]` (JSON array, oldest first), `GET /api/messages/{id}`
//! (one message, or a 404 JSON error), `DELETE /api/messages` (204, clears), `GET /` (the list,
//! newest first, refreshing every 5 s) and `GET /messages/{id}` (one message). Mail content is
//! whatever a sender chose to write, so every value is HTML-escaped and the pages are served with
//! a Content-Security-Policy that forbids scripts.

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::inbox::{Inbox, Message};

/// The router serving `inbox`.
pub fn router(inbox: Inbox) -> Router {
    Router::new()
        .route("/", get(index_page))
        .route("/messages/{id}", get(message_page))
        .route("/api/messages", get(list_messages).delete(clear_messages))
        .route("/api/messages/{id}", get(one_message))
        .with_state(inbox)
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    to: Option<String>,
}

async fn list_messages(
    State(inbox): State<Inbox>,
    Query(query): Query<ListQuery>,
) -> Json<Vec<Message>> {
    Json(match query.to {
        Some(address) => inbox.for_recipient(&address),
        None => inbox.messages(),
    })
}

async fn one_message(State(inbox): State<Inbox>, Path(id): Path<String>) -> Response {
    match id.parse().ok().and_then(|id| inbox.get(id)) {
        Some(message) => Json(message).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({
                "error": "not_found",
                "error_description": format!("no message with id {id:?} (ids are positive integers; cleared or evicted messages are gone)"),
            })),
        )
            .into_response(),
    }
}

async fn clear_messages(State(inbox): State<Inbox>) -> StatusCode {
    inbox.clear();
    StatusCode::NO_CONTENT
}

async fn index_page(State(inbox): State<Inbox>) -> Response {
    let messages = inbox.messages();
    let mut body = format!("<h1>mock-mail: {} message(s)</h1>\n", messages.len());
    if messages.is_empty() {
        body.push_str("<p class=\"empty\">No mail yet. This page refreshes every 5 seconds.</p>\n");
    }
    for message in messages.iter().rev() {
        let _ = write!(
            body,
            "<article>\n<h2><a href=\"/messages/{id}\">{subject}</a></h2>\n\
             <p class=\"meta\">#{id} &middot; {time} &middot; from {from} &middot; to {to}</p>\n\
             <pre>{text}</pre>\n</article>\n",
            id = message.id,
            subject = escape(display_subject(message)),
            time = format_utc(message.received_at_ms),
            from = escape(display_sender(message)),
            to = escape(&message.rcpt_to.join(", ")),
            text = escape(&message.body),
        );
    }
    page(
        "mock-mail inbox",
        "<meta http-equiv=\"refresh\" content=\"5\">\n",
        &body,
    )
}

async fn message_page(State(inbox): State<Inbox>, Path(id): Path<String>) -> Response {
    let Some(message) = id.parse().ok().and_then(|id| inbox.get(id)) else {
        let mut response = page(
            "mock-mail: no such message",
            "",
            &format!(
                "<h1>No message {}</h1>\n<p><a href=\"/\">Back to the inbox</a></p>\n",
                escape(&id)
            ),
        );
        *response.status_mut() = StatusCode::NOT_FOUND;
        return response;
    };
    let mut body = format!(
        "<p><a href=\"/\">&larr; Inbox</a></p>\n<h1>{subject}</h1>\n<table>\n\
         <tr><th>Received</th><td>{time}</td></tr>\n\
         <tr><th>Envelope from</th><td>{from}</td></tr>\n\
         <tr><th>Envelope to</th><td>{to}</td></tr>\n",
        subject = escape(display_subject(&message)),
        time = format_utc(message.received_at_ms),
        from = escape(display_sender(&message)),
        to = escape(&message.rcpt_to.join(", ")),
    );
    for (name, value) in &message.headers {
        let _ = writeln!(
            body,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(name),
            escape(value)
        );
    }
    let _ = write!(
        body,
        "</table>\n<pre>{}</pre>\n<details><summary>Raw message</summary>\n<pre>{}</pre>\n</details>\n",
        escape(&message.body),
        escape(&message.raw),
    );
    page(
        &format!("mock-mail: {}", display_subject(&message)),
        "",
        &body,
    )
}

fn display_subject(message: &Message) -> &str {
    if message.subject.is_empty() {
        "(no subject)"
    } else {
        &message.subject
    }
}

fn display_sender(message: &Message) -> &str {
    if message.mail_from.is_empty() {
        "<> (null sender)"
    } else {
        &message.mail_from
    }
}

/// Wraps `body` in a complete page. The policy allows the inline stylesheet and nothing else, so
/// even markup that slipped past escaping could not run a script.
fn page(title: &str, head: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n{head}<title>{title}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        title = escape(title),
    );
    let mut response = Html(html).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    response
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}\
article{border-top:1px solid #ccc;padding:.5rem 0}h2{font-size:1.1rem;margin:.3rem 0}\
.meta,.empty{color:#666;font-size:.9rem}pre{background:#f6f6f6;padding:.6rem;white-space:pre-wrap;overflow-wrap:anywhere}\
th{text-align:left;padding-right:1rem;vertical-align:top}";

pub use mock_kit::html::escape;

/// `YYYY-MM-DD hh:mm:ss UTC` for milliseconds since the Unix epoch.
fn format_utc(ms: u64) -> String {
    let seconds = ms / 1000;
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let time = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        time / 3600,
        time % 3600 / 60,
        time % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `civil_from_days`,
/// restricted to dates after the epoch so it needs no signed arithmetic).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x&y')</script> \"q\""),
            "&lt;script&gt;alert(&#39;x&amp;y&#39;)&lt;/script&gt; &quot;q&quot;"
        );
    }

    #[test]
    fn times_render_as_utc_calendar_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_798_761_599_999), "2026-12-31 23:59:59 UTC");
    }
}
