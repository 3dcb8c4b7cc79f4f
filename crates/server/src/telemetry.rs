//! Logging (filter with `RUST_LOG`, default `info`; text or JSON lines), the
//! request id every response and every log line of a request carry, and the
//! per-request metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing_subscriber::EnvFilter;

use crate::startup::AppState;

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: one line per event, colours on a terminal.
    #[default]
    Text,
    /// One JSON object per line; `spans` lists the enclosing spans, the request's first
    /// (`request_id`, `method`, `path`).
    Json,
}

pub fn init(default_filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // Ignore the error when a subscriber is already set (tests).
    let _ = match format {
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init(),
        LogFormat::Json => builder.json().with_current_span(false).with_span_list(true).try_init(),
    };
}

pub const REQUEST_ID: &str = "x-request-id";

/// A caller's id is kept only if it is short and plain, so it cannot forge
/// log lines or carry a secret of any size.
fn acceptable_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Gives every request an id (the caller's `x-request-id` when acceptable, else
/// a new UUID), which the request's log span and the response carry.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| acceptable_request_id(id))
        .map(HeaderValue::from_str)
        .and_then(Result::ok)
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).unwrap_or(HeaderValue::from_static("-"))
        });
    request.headers_mut().insert(REQUEST_ID, id.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

/// Counts the request and its latency under its route pattern.
pub async fn record_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = request.method().clone();
    let response = next.run(request).await;
    state.service.metrics().record_request(&route, method.as_str(), response.status().as_u16(), started.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::acceptable_request_id;

    #[test]
    fn only_short_plain_request_ids_are_kept() {
        assert!(acceptable_request_id("3f1c9a7e-2b1d-4c1e-9f00-123456789abc"));
        assert!(acceptable_request_id("lb.trace:42_a"));
        assert!(!acceptable_request_id(""));
        assert!(!acceptable_request_id(&"a".repeat(65)));
        assert!(!acceptable_request_id("two words"));
        assert!(!acceptable_request_id("line\nbreak"));
        assert!(!acceptable_request_id("{\"json\":1}"));
    }
}
