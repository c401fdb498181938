//! Logs to stderr and, when an OTLP endpoint is configured by the standard `OTEL_*` variables,
//! spans to an OpenTelemetry collector; a caller's `traceparent` becomes the parent of its
//! request's span.
//!
//! The exporter is off unless `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (and `OTEL_SDK_DISABLED` is not `true`,
//! `OTEL_TRACES_EXPORTER` not `none`): a government network often has no collector, and a
//! server must not spend a thread retrying one that is not there.

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::config::LogFormat;

/// Flushes the spans still batched when the process ends (dropped at the end of `main`).
pub struct Guard(Option<SdkTracerProvider>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("traces: the last spans could not be sent: {e}");
            }
        }
    }
}

/// Whether the `OTEL_*` variables ask for trace export.
pub fn export_wanted(var: impl Fn(&str) -> Option<String>) -> bool {
    let set = |k: &str| var(k).is_some_and(|v| !v.trim().is_empty());
    let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let none = var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"));
    (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) && !disabled && !none
}

/// Installs the log output (filtered by `PLEDGEFLOW_LOG`) and, if wanted, the span exporter.
pub fn init(format: LogFormat) -> Guard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PLEDGEFLOW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sea_orm=warn,sqlx=warn"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Json => fmt.json().with_filter(filter).boxed(),
        LogFormat::Text => fmt.with_filter(filter).boxed(),
    };
    let (otel, provider, problem) = if export_wanted(|k| std::env::var(k).ok()) {
        match exporter() {
            Ok(provider) => {
                let tracer = provider.tracer("pledgeflow");
                // Only this crate's spans (the request, its transitions, a sweep's firings) go
                // out; the log's events stay in the log.
                let spans = tracing_subscriber::filter::filter_fn(|m| m.is_span() && m.target().starts_with("pledgeflow") && *m.level() <= tracing::Level::DEBUG);
                (Some(tracing_opentelemetry::layer().with_tracer(tracer).with_filter(spans)), Some(provider), None)
            }
            Err(e) => (None, None, Some(e)),
        }
    } else {
        (None, None, None)
    };
    tracing_subscriber::registry().with(fmt).with(otel).init();
    if let Some(e) = problem {
        tracing::warn!(error = %e, "traces: the OTLP exporter could not be built; no spans are exported");
    } else if provider.is_some() {
        tracing::info!("traces: spans exported over OTLP/HTTP as the OTEL_* variables say");
    }
    Guard(provider)
}

fn exporter() -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().with_protocol(opentelemetry_otlp::Protocol::HttpBinary).build()?;
    // The resource reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the name defaults to ours.
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name("pledgeflow");
    }
    let resource = resource.with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))).build();
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

struct Headers<'a>(&'a axum::http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Makes the caller's W3C `traceparent` (and `tracestate`) the parent of `span`; a missing
/// or malformed header leaves the span a root of its own trace.
pub fn continue_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    let _ = span.set_parent(parent);
}

#[cfg(test)]
mod tests {
    use super::export_wanted;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn export_is_off_unless_an_endpoint_is_set_and_not_disabled() {
        assert!(!export_wanted(env(&[])));
        assert!(export_wanted(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")])));
        assert!(export_wanted(env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/v1/traces")])));
        assert!(!export_wanted(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_SDK_DISABLED", "TRUE")])));
        assert!(!export_wanted(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_TRACES_EXPORTER", "none")])));
        assert!(!export_wanted(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])));
    }
}
