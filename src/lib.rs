//! garim: a privacy gateway for LLM traffic.
//!
//! Data flows one way through the modules, in the order they run for a request:
//!
//! ```text
//! config -> server -> pipeline -> api -> detect -> mask -> forward -> restore -> audit
//!                                                                    (telemetry is a sink)
//! ```
//!
//! * [`config`]: raw serde structs, validated into the settings every stage reads.
//! * [`server`]: listeners (TCP, TLS), health/metrics endpoints, routing to the pipeline.
//! * [`pipeline`]: the one place that runs the stages in order for a request.
//! * [`api`]: one file per LLM API format: which fields carry text, how to rebuild the body,
//!   what that API's error shape is.
//! * [`detect`]: [`detect::Finding`] and the [`detect::Detector`] trait; regex rules.
//! * [`mask`]: placeholders, the vault that maps them back, and applying them to text.
//! * [`forward`]: the upstream HTTP client.
//! * [`restore`]: putting original values back into JSON bodies and SSE streams.
//! * [`audit`]: one record per request for compliance, never holding a raw value.
//! * [`telemetry`]: tracing set-up and Prometheus metrics.
//!
//! No stage imports a later one; the pipeline wires them together.

pub mod api;
pub mod audit;
pub mod config;
pub mod detect;
pub mod forward;
pub mod mask;
pub mod pipeline;
pub mod restore;
pub mod secret;
pub mod server;
pub mod telemetry;

pub use secret::Secret;
