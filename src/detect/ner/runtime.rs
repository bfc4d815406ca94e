//! The ONNX Runtime library: where it is, and the one process-wide `ort` environment.
//!
//! What: garim links `ort` with `load-dynamic`, so nothing is downloaded or linked at build
//! time; the shared library `libonnxruntime.so.1.31.1` is loaded when the first NER model is.
//! [`locate`] finds it: an explicit path (configuration), else the environment variables
//! `GARIM_ORT_DYLIB` then `ORT_DYLIB_PATH`, else `./.ort/lib/libonnxruntime.so.1.31.1`, where
//! `scripts/install-onnxruntime.sh` puts it (from the `onnxruntime` wheel on PyPI).
//! [`environment`] loads it and builds the environment once per process.
//!
//! Why: a missing library must be a clear, actionable startup error, not a crash.
//!
//! Limits: ONNX Runtime allows one environment per process and one loaded library: the first
//! successful [`environment`] call wins; later calls get the same environment whatever path
//! they name. A failed attempt is not cached, so installing the library and retrying works.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;

/// The ONNX Runtime release the `ort` crate (rc.15, API 31) is built against.
pub const ORT_VERSION: &str = "1.31.1";

/// Environment variables naming the library, in the order they are read.
pub const DYLIB_ENV_VARS: [&str; 2] = ["GARIM_ORT_DYLIB", "ORT_DYLIB_PATH"];

/// Where `scripts/install-onnxruntime.sh` installs the library, relative to the working directory.
pub fn default_dylib_path() -> PathBuf {
    PathBuf::from(format!(".ort/lib/libonnxruntime.so.{ORT_VERSION}"))
}

/// `rel` next to the running binary, or two levels up from it (the repository root of a cargo
/// `target/<profile>/` build), whichever first satisfies `ok`. Lets the binary find the
/// repository's `.ort/` and `models/` when started from another directory.
pub fn beside_cargo_build(rel: &Path, ok: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    let exe_dir = std::env::current_exe().ok()?.parent()?.to_path_buf();
    [exe_dir.join(rel), exe_dir.join("../..").join(rel)]
        .into_iter()
        .find(|p| ok(p))
}

/// Why the runtime could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No library at the path that was chosen.
    #[error(
        "ONNX Runtime library not found at `{path}` (from {source_of}); run \
         scripts/install-onnxruntime.sh and set GARIM_ORT_DYLIB to the path it prints"
    )]
    NotFound { path: PathBuf, source_of: String },
    /// The file exists but could not be loaded (wrong version, wrong architecture, ...).
    #[error(
        "could not load the ONNX Runtime library `{path}`: {reason}; garim needs ONNX Runtime \
         {ORT_VERSION} (run scripts/install-onnxruntime.sh)"
    )]
    Load { path: PathBuf, reason: String },
    /// The library loaded but the environment could not be created.
    #[error("could not create the ONNX Runtime environment: {reason}")]
    Init { reason: String },
}

impl RuntimeError {
    /// The detectors cannot run: the service is unavailable, by no fault of the client.
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::SERVICE_UNAVAILABLE
    }

    pub fn fault(&self) -> &'static str {
        "internal"
    }
}

/// The library path to use and where that choice came from (for error messages).
pub fn locate(configured: Option<&Path>) -> Result<PathBuf, RuntimeError> {
    let (path, source_of) = if let Some(p) = configured {
        (p.to_path_buf(), "configuration".to_owned())
    } else if let Some((var, p)) = DYLIB_ENV_VARS.iter().find_map(|v| {
        std::env::var_os(v)
            .filter(|s| !s.is_empty())
            .map(|s| (*v, PathBuf::from(s)))
    }) {
        (p, format!("environment variable {var}"))
    } else {
        // ./.ort/lib, else the same next to a cargo build of this repository
        // (target/<profile>/garim -> ../../.ort/lib), so the binary works from any directory.
        let cwd = default_dylib_path();
        let beside = (!cwd.is_file())
            .then(|| beside_cargo_build(&cwd, |p| p.is_file()))
            .flatten();
        (beside.unwrap_or(cwd), "the default location".to_owned())
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(RuntimeError::NotFound { path, source_of })
    }
}

static ENV: Mutex<Option<Environment>> = Mutex::new(None);

/// The process-wide ONNX Runtime environment, loading the library found by [`locate`] the
/// first time. Thread-safe; cheap after the first success.
pub fn environment(configured: Option<&Path>) -> Result<Environment, RuntimeError> {
    let mut slot = ENV.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(env) = slot.as_ref() {
        return Ok(env.clone());
    }
    let path = locate(configured)?;
    let builder = ort::init_from(&path).map_err(|e| RuntimeError::Load {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let env = builder
        .with_name("garim")
        .build()
        .map_err(|e| RuntimeError::Init {
            reason: e.to_string(),
        })?;
    *slot = Some(env.clone());
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_library_says_what_to_run() {
        let err = locate(Some(Path::new("/nonexistent/libonnxruntime.so.1.31.1"))).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("scripts/install-onnxruntime.sh"), "{msg}");
        assert!(msg.contains("/nonexistent/"), "{msg}");
        assert!(msg.contains("configuration"), "{msg}");
        assert_eq!(err.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn default_path_is_the_install_scripts() {
        assert_eq!(
            default_dylib_path(),
            PathBuf::from("./.ort/lib/libonnxruntime.so.1.31.1")
                .strip_prefix("./")
                .unwrap()
        );
    }
}
