//! `GET /metrics`: what operators watch, in the Prometheus text format
//! (OpenMetrics flavour, which Prometheus reads natively).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use domain::HashingLoad;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The route's pattern (`/invitations/{id}`), never the raw path: bounded, and free of ids.
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: &'static str,
}

/// What happened to an invitation.
#[derive(Debug, Clone, Copy)]
pub enum InvitationOutcome {
    Created,
    Redeemed,
    Revoked,
    Resent,
}

impl InvitationOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Redeemed => "redeemed",
            Self::Revoked => "revoked",
            Self::Resent => "resent",
        }
    }
}

fn latency_histogram() -> Histogram {
    // 1 ms … 10 s: a read is a millisecond, a sign-in tens, an overloaded one seconds.
    Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
}

/// The service's metrics; one per running service, so tests see only their own.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    refused: Family<CodeLabels, Counter>,
    sign_ups: Counter,
    sign_ins: Family<OutcomeLabels, Counter>,
    invitations: Family<OutcomeLabels, Counter>,
}

impl Metrics {
    pub fn new(hashing: Option<Arc<HashingLoad>>) -> Self {
        let mut registry = Registry::with_prefix("invitegate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered, by route, method and status", requests.clone());
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer a request, by route",
            prometheus_client::registry::Unit::Seconds,
            latency.clone(),
        );
        let refused = Family::<CodeLabels, Counter>::default();
        registry.register(
            "refused_requests",
            "Requests refused: too_many_attempts (429) or unavailable (503, overload)",
            refused.clone(),
        );
        let sign_ups = Counter::default();
        registry.register("sign_ups", "Accounts created", sign_ups.clone());
        let sign_ins = Family::<OutcomeLabels, Counter>::default();
        registry.register("sign_ins", "Sign-in attempts by outcome (ok, refused)", sign_ins.clone());
        let invitations = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "invitations",
            "Invitations by outcome (created, redeemed, revoked, resent)",
            invitations.clone(),
        );
        if let Some(load) = hashing {
            registry.register_collector(Box::new(HashingCollector(load)));
        }
        Self { registry, requests, latency, refused, sign_ups, sign_ins, invitations }
    }

    pub fn record_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels { route: route.to_owned(), method: method.to_owned(), status })
            .inc();
        self.latency.get_or_create(&RouteLabels { route: route.to_owned() }).observe(elapsed.as_secs_f64());
        let code = match status {
            429 => "too_many_attempts",
            503 => "unavailable",
            _ => return,
        };
        self.refused.get_or_create(&CodeLabels { code }).inc();
    }

    pub fn sign_up(&self) {
        self.sign_ups.inc();
    }

    pub fn sign_in(&self, ok: bool) {
        self.sign_ins.get_or_create(&OutcomeLabels { outcome: if ok { "ok" } else { "refused" } }).inc();
    }

    pub fn invitation(&self, outcome: InvitationOutcome) {
        self.invitations.get_or_create(&OutcomeLabels { outcome: outcome.label() }).inc();
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Reads the hashing queue's counters at scrape time.
#[derive(Debug)]
struct HashingCollector(Arc<HashingLoad>);

impl prometheus_client::collector::Collector for HashingCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauge = |value: &std::sync::atomic::AtomicUsize| {
            ConstGauge::new(i64::try_from(value.load(Ordering::Relaxed)).unwrap_or(i64::MAX))
        };
        let queued = gauge(&self.0.queued);
        queued.encode(encoder.encode_descriptor(
            "password_hashes_queued",
            "Password hashes waiting for a hashing thread",
            None,
            queued.metric_type(),
        )?)?;
        let running = gauge(&self.0.running);
        running.encode(encoder.encode_descriptor(
            "password_hashes_running",
            "Password hashes being computed",
            None,
            running.metric_type(),
        )?)?;
        let refused = ConstCounter::new(self.0.refused.load(Ordering::Relaxed));
        refused.encode(encoder.encode_descriptor(
            "password_hashes_refused",
            "Password hashes refused because the queue was full",
            None,
            refused.metric_type(),
        )?)?;
        Ok(())
    }
}
