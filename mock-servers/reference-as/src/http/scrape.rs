//! `GET /metrics`: the metadata and JSON caches' counters in the Prometheus text format.
//!
//! Open like the discovery document: it holds counts and sizes only, never a client ID or a URL.
//! Every scrape processes the caches' pending evictions first, so the eviction counters and the
//! entry gauges are current.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::metrics;

/// `GET /metrics`.
pub(super) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let body = metrics::exposition(&state.resolver.cache_reports());
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(metrics::CONTENT_TYPE),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}
