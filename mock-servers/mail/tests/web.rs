//! The inbox over real HTTP: the JSON API and the HTML pages.
#![allow(clippy::unwrap_used)]

mod common;

use common::{RawClient, server};
use mock_mail::MailServer;
use reqwest::StatusCode;

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Delivers one message over SMTP with the given subject and body.
async fn deliver(mail: &MailServer, to: &str, subject: &str, body: &str) {
    let mut client = RawClient::greeted(mail.smtp_addr()).await;
    let content = format!("From: <sender@as.test>\r\nSubject: {subject}\r\n\r\n{body}\r\n");
    assert_eq!(client.transaction(&[to], &content).await, 250);
}

async fn get_json(url: String) -> (StatusCode, serde_json::Value) {
    let response = http().get(url).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_json_api_lists_filters_fetches_and_clears_messages() {
    let mail = server().await;
    deliver(&mail, "a@x.test", "first", "one").await;
    deliver(&mail, "b@x.test", "second", "two").await;
    deliver(&mail, "A@X.test", "third", "three").await;
    let base = mail.http_url();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    let (status, all) = get_json(format!("{base}/api/messages")).await;
    assert_eq!(status, StatusCode::OK);
    let subjects: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["first", "second", "third"], "newest last");
    let (_, to_a) = get_json(format!("{base}/api/messages?to=a%40x.test")).await;
    let subjects: Vec<&str> = to_a
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["first", "third"]);

    let id = all[1]["id"].as_u64().unwrap();
    let (status, one) = get_json(format!("{base}/api/messages/{id}")).await;
    assert_eq!(
        (status, one["body"].as_str()),
        (StatusCode::OK, Some("two\n"))
    );
    for field in [
        "id",
        "seq",
        "received_at_ms",
        "mail_from",
        "rcpt_to",
        "headers",
        "subject",
        "body",
        "raw",
    ] {
        assert!(one.get(field).is_some(), "{field} missing from {one:#}");
    }
    for missing in ["999", "abc"] {
        let (status, error) = get_json(format!("{base}/api/messages/{missing}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(error["error"], "not_found", "{error:#}");
    }

    let response = http()
        .delete(format!("{base}/api/messages"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (_, after) = get_json(format!("{base}/api/messages")).await;
    assert_eq!(after, serde_json::json!([]));
    assert!(mail.inbox().is_empty());
}

#[tokio::test]
async fn mail_is_ordered_with_the_http_journal() {
    let mail = server().await;
    http()
        .get(format!("{}/api/messages", mail.http_url()))
        .send()
        .await
        .unwrap();
    deliver(&mail, "a@x.test", "after the request", "x").await;
    let request_seq = mail.http_journal().entries()[0].seq;
    assert!(mail.inbox().messages()[0].seq > request_seq);
}

#[tokio::test]
async fn the_html_pages_escape_everything_a_sender_wrote() {
    let mail = server().await;
    deliver(
        &mail,
        "victim@x.test",
        "<script>alert('subject')</script>",
        "<script>alert(\"body\")</script> & <b>",
    )
    .await;
    let base = mail.http_url();

    let response = http().get(format!("{base}/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let policy = response
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    let index = response.text().await.unwrap();
    assert!(!index.contains("<script"), "{index}");
    assert!(
        index.contains("&lt;script&gt;alert(&#39;subject&#39;)&lt;/script&gt;"),
        "{index}"
    );
    assert!(
        index.contains(
            "<pre>&lt;script&gt;alert(&quot;body&quot;)&lt;/script&gt; &amp; &lt;b&gt;\n</pre>"
        ),
        "{index}"
    );
    assert!(
        index.contains("<meta http-equiv=\"refresh\" content=\"5\">"),
        "{index}"
    );
    assert!(
        index.contains("victim@x.test") && index.contains("sender@as.test"),
        "{index}"
    );

    let id = mail.inbox().messages()[0].id;
    let page = http()
        .get(format!("{base}/messages/{id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<script"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(&#39;subject&#39;)"),
        "{page}"
    );

    let missing = http()
        .get(format!("{base}/messages/<img>"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let text = missing.text().await.unwrap();
    assert!(text.contains("No message &lt;img&gt;"), "{text}");
}
