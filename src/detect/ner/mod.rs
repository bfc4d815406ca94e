//! NER detectors: token-classification models on ONNX Runtime.
//!
//! - [`runtime`]: finds `libonnxruntime` (config, `GARIM_ORT_DYLIB`, `ORT_DYLIB_PATH`,
//!   `./.ort/lib`) and builds the one process-wide environment;
//! - [`model`]: a generic HF-style token classifier described by `models/NAME/model.toml`
//!   (windowing, batching, BIO decoding, byte offsets);
//! - [`shape`]: drops model spans shaped like code (`adler32_` in `adler32_slice`,
//!   `adler` in `adler.write`), which the prose-trained models tag in pasted source;
//! - [`pool`]: a bounded pool of worker threads owning the sessions, with micro-batching and
//!   per-request time budgets (fail closed on timeout);
//! - [`route`]: the language router (Korean / English runs to each language's pool) and
//!   [`route::load`], which builds the pools from `[detect.ner]` once at start.
//!
//! Limits: inference is CPU-heavy and blocking. Callers on an async runtime must call these
//! detectors from `spawn_blocking` (or another dedicated thread), always.

pub mod model;
pub mod pool;
pub mod route;
pub mod runtime;
pub mod shape;

pub use model::{Manifest, ModelError, NerModel, TokenClassifier};
pub use pool::{NerPool, PoolConfig, PoolStats};
pub use route::{LoadError, NerRouter};
pub use runtime::RuntimeError;
