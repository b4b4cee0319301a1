//! RouteSpec: what scenario files may say, and the errors they get when they say it wrong.
#![allow(clippy::unwrap_used)]

use metadata_host::{HostError, Route, RouteSpec};

fn parse(text: &str) -> Result<RouteSpec, toml::de::Error> {
    toml::from_str(text)
}

fn convert(text: &str) -> Result<Route, HostError> {
    Route::try_from(parse(text).unwrap())
}

#[test]
fn unknown_fields_are_rejected_by_name() {
    let error = parse("stauts = 302").unwrap_err().to_string();
    assert!(error.contains("unknown field `stauts`"), "{error}");
    let error = parse("document = {}\ntrickle = { chunk = 1, interval = 5 }")
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown field `interval`"), "{error}");
    let error = parse("status = 200\n[[then]]\nstatus = 200\nlocaton = \"/x\"")
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown field `locaton`"), "{error}");
}

#[test]
fn a_status_that_is_no_u16_is_a_parse_error() {
    assert!(parse("status = 70000").is_err());
    assert!(parse("status = \"302\"").is_err());
}

#[test]
fn every_field_is_accepted_together() {
    let route = convert(
        r#"
        status = 200
        document = { client_name = "All" }
        content_type = "application/cimd+json"
        headers = { "Cache-Control" = "no-store", Expires = "0" }
        delay_ms = 1
        trickle = { chunk = 64, interval_ms = 1 }
        oversize = 4096
        content_length = 10
        endless = false
        etag = "W/\"v1\""
        then = [{ raw = "{", content_type = "" }, { json = [1, 2] }, { status = 302, location = "/x" }]
        "#,
    );
    assert!(route.is_ok(), "{route:?}");
}

#[test]
fn a_document_must_be_an_object_and_fixture_paths_are_not_resolved_here() {
    let error = convert(r#"document = "metadata/public-client.json""#).unwrap_err();
    assert!(
        matches!(error, HostError::DocumentNotObject { found: "a string" }),
        "{error:?}"
    );
    assert!(error.to_string().contains("use `json`"), "{error}");
    let error = convert("document = [1]").unwrap_err();
    assert!(
        matches!(error, HostError::DocumentNotObject { found: "an array" }),
        "{error:?}"
    );
}

#[test]
fn two_bodies_in_one_reply_are_refused() {
    let error = convert("document = {}\nraw = \"x\"").unwrap_err();
    assert_eq!(
        error.to_string(),
        "a reply has one body, but both `document` and `raw` are set"
    );
}

#[test]
fn a_reply_with_neither_body_nor_status_is_refused() {
    assert!(matches!(
        convert("delay_ms = 5").unwrap_err(),
        HostError::NoStatusOrBody
    ));
}

#[test]
fn a_location_needs_an_explicit_status() {
    let error = convert(r#"location = "/elsewhere""#).unwrap_err();
    assert!(
        matches!(error, HostError::LocationWithoutStatus),
        "{error:?}"
    );
}

#[test]
fn informational_and_out_of_range_statuses_are_refused() {
    for (status, code) in [("101", 101), ("99", 99), ("1000", 1000)] {
        let error = convert(&format!("status = {status}")).unwrap_err();
        assert!(
            matches!(error, HostError::InvalidStatus(c) if c == code),
            "{error:?}"
        );
    }
}

#[test]
fn headers_http_cannot_carry_are_refused() {
    let error = convert("status = 200\nheaders = { \"Bad Name\" = \"x\" }").unwrap_err();
    assert_eq!(error.to_string(), "invalid header name \"Bad Name\"");
    let error = convert("status = 200\nheaders = { Expires = \"a\\nb\" }").unwrap_err();
    assert!(
        matches!(error, HostError::InvalidHeaderValue { .. }),
        "{error:?}"
    );
    let error = convert("status = 200\ncontent_type = \"a\\u0000b\"").unwrap_err();
    assert!(
        matches!(error, HostError::InvalidHeaderValue { .. }),
        "{error:?}"
    );
}

#[test]
fn a_header_given_twice_in_different_case_is_refused() {
    let error = convert("status = 200\nheaders = { ETag = \"\\\"a\\\"\", etag = \"\\\"b\\\"\" }")
        .unwrap_err();
    assert!(
        matches!(error, HostError::DuplicateHeader { .. }),
        "{error:?}"
    );
}

#[test]
fn a_zero_byte_trickle_is_refused() {
    let error = convert("document = {}\ntrickle = { chunk = 0, interval_ms = 10 }").unwrap_err();
    assert!(matches!(error, HostError::ZeroTrickleChunk), "{error:?}");
}

#[test]
fn chunked_and_a_declared_length_are_refused_together() {
    let error = convert("document = {}\nchunked = true\ncontent_length = 3").unwrap_err();
    assert!(matches!(error, HostError::ConflictingFraming), "{error:?}");
}

#[test]
fn errors_inside_then_name_the_entry() {
    let error = convert("status = 500\nthen = [{ document = {} }, { status = 42 }]").unwrap_err();
    assert_eq!(
        error.to_string(),
        "then[1]: status 42 cannot be scripted: use a final status from 200 to 999"
    );
    let error =
        convert("status = 500\nthen = [{ status = 200, then = [{ status = 200 }] }]").unwrap_err();
    assert!(
        matches!(&error, HostError::InThen { index: 0, error } if matches!(**error, HostError::NestedThen)),
        "{error:?}"
    );
}

#[test]
fn specs_also_parse_from_json() {
    let spec: RouteSpec = serde_json::from_str(
        r#"{"status": 302, "location": "{origin}/x", "then": [{"status": 200}]}"#,
    )
    .unwrap();
    assert_eq!(spec.then.len(), 1);
    assert!(Route::try_from(spec).is_ok());
}
