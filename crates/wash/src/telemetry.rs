//! OpenTelemetry for `wash host` and `wash dev`: off by default; on with
//! `--otel-endpoint` or the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (and
//! `_TRACES_`/`_METRICS_` variants). OTLP over gRPC or HTTP/protobuf
//! (`OTEL_EXPORTER_OTLP_PROTOCOL`, default `http/protobuf`), exported in
//! batches from tokio tasks; `OTEL_SDK_DISABLED=true` turns it off.

use anyhow::{Context, Result, bail};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{MetricExporter, SpanExporter, WithExportConfig};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;

/// The exporters, flushed on shutdown.
pub struct Telemetry {
    traces: SdkTracerProvider,
    metrics: SdkMeterProvider,
}

impl Telemetry {
    /// Sends what is buffered and stops the exporters.
    pub fn shutdown(self) {
        if let Err(e) = self.traces.shutdown() {
            eprintln!("warning: OpenTelemetry traces: {e}");
        }
        if let Err(e) = self.metrics.shutdown() {
            eprintln!("warning: OpenTelemetry metrics: {e}");
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Whether the flag or the environment asks for telemetry.
pub fn wanted(endpoint: Option<&str>) -> bool {
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return false;
    }
    endpoint.is_some()
        || [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        ]
        .iter()
        .any(|name| env(name).is_some())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Grpc,
    HttpProtobuf,
}

fn protocol(signal: &str) -> Result<Protocol> {
    let value = env(&format!("OTEL_EXPORTER_OTLP_{signal}_PROTOCOL"))
        .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|| "http/protobuf".into());
    match value.as_str() {
        "grpc" => Ok(Protocol::Grpc),
        "http/protobuf" => Ok(Protocol::HttpProtobuf),
        other => bail!(
            "OTEL_EXPORTER_OTLP_PROTOCOL `{other}` is not supported: use `grpc` or `http/protobuf`"
        ),
    }
}

/// The tracer and meter providers with OTLP exporters, and the `tracing`
/// layer that feeds spans to them. Must run inside the tokio runtime.
pub fn start<S>(
    endpoint: Option<&str>,
) -> Result<(
    Telemetry,
    tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
)>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let endpoint = endpoint.map(|e| e.trim_end_matches('/').to_string());
    let spans = match protocol("TRACES")? {
        Protocol::Grpc => {
            let mut builder = SpanExporter::builder().with_tonic();
            if let Some(endpoint) = &endpoint {
                builder = builder.with_endpoint(endpoint.clone());
            }
            builder.build()
        }
        Protocol::HttpProtobuf => {
            let mut builder = SpanExporter::builder().with_http();
            if let Some(endpoint) = &endpoint {
                builder = builder.with_endpoint(format!("{endpoint}/v1/traces"));
            }
            builder.build()
        }
    }
    .context("cannot set up the OTLP trace exporter")?;
    let metrics = match protocol("METRICS")? {
        Protocol::Grpc => {
            let mut builder = MetricExporter::builder().with_tonic();
            if let Some(endpoint) = &endpoint {
                builder = builder.with_endpoint(endpoint.clone());
            }
            builder.build()
        }
        Protocol::HttpProtobuf => {
            let mut builder = MetricExporter::builder().with_http();
            if let Some(endpoint) = &endpoint {
                builder = builder.with_endpoint(format!("{endpoint}/v1/metrics"));
            }
            builder.build()
        }
    }
    .context("cannot set up the OTLP metric exporter")?;

    let mut resource = opentelemetry_sdk::Resource::builder();
    if env("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("wash");
    }
    let resource = resource.build();
    let traces = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(spans, Tokio).build())
        .with_resource(resource.clone())
        .build();
    let interval = env("OTEL_METRIC_EXPORT_INTERVAL")
        .and_then(|ms| ms.parse().ok())
        .map(std::time::Duration::from_millis)
        .unwrap_or(std::time::Duration::from_secs(60));
    let meters = SdkMeterProvider::builder()
        .with_reader(
            PeriodicReader::builder(metrics, Tokio)
                .with_interval(interval)
                .build(),
        )
        .with_resource(resource)
        .build();
    opentelemetry::global::set_meter_provider(meters.clone());
    let layer = tracing_opentelemetry::layer().with_tracer(traces.tracer("wash"));
    wash_runtime::telemetry::enable();
    Ok((
        Telemetry {
            traces,
            metrics: meters,
        },
        layer,
    ))
}
