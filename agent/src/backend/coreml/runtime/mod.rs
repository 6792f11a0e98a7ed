//! CoreML on macOS through `objc2-core-ml`: compiling and caching models, loading them on a
//! compute unit, and the two model shapes the workloads drive — an encoder package
//! ([`encoder`]) and an anemll split decoder ([`anemll`]). [`plan`] reports where each
//! operation runs.

mod anemll;
mod arrays;
mod encoder;
mod plan;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use block2::RcBlock;
use objc2::rc::Retained;
use objc2::runtime::ProtocolObject;
use objc2_core_ml::{
    MLAllComputeDevices, MLComputeDeviceProtocol, MLComputeUnits, MLGPUComputeDevice, MLModel, MLModelConfiguration,
    MLNeuralEngineComputeDevice,
};
use objc2_foundation::{NSError, NSString, NSURL};

use super::super::{BackendError, Loaded, Result};
use crate::inspect::compat::{OsVersion, check_os_support};

/// The units CoreML reports devices for on this Mac: `cpu` always, `gpu` and `ane` when such a
/// device is listed, `all` with them.
pub fn available_units() -> Vec<&'static str> {
    // SAFETY: a plain class-method call returning an array of device objects.
    let devices = unsafe { MLAllComputeDevices() };
    let mut units = vec!["cpu", "all"];
    if devices.iter().any(|d| is::<MLGPUComputeDevice>(&d)) {
        units.push("gpu");
    }
    if devices.iter().any(|d| is::<MLNeuralEngineComputeDevice>(&d)) {
        units.push("ane");
    }
    units
}

/// Whether a compute device is of class `T`.
fn is<T: objc2::ClassType + objc2::DowncastTarget>(device: &ProtocolObject<dyn MLComputeDeviceProtocol>) -> bool {
    let object: &objc2::runtime::AnyObject = device.as_ref();
    object.downcast_ref::<T>().is_some()
}

/// Loads the artifact at `path` on `unit`: an anemll folder (`meta.yaml`) or a model package.
/// A model this macOS cannot load is refused first, with the version it needs.
pub fn load(unit: &str, path: &Path) -> Result<Loaded> {
    if path.join("meta.yaml").is_file() {
        refuse_unsupported(path)?;
        anemll::load(unit, path)
    } else {
        encoder::load(unit, path)
    }
}

/// The model's minimum macOS (from its files) against the one running here.
fn refuse_unsupported(path: &Path) -> Result<()> {
    let Some(running) = crate::probe::macos::sysctl_string("kern.osproductversion").and_then(|v| v.parse::<OsVersion>().ok()) else {
        return Ok(());
    };
    let info = crate::inspect::inspect(path).map_err(|e| artifact(path, e.to_string()))?;
    check_os_support(&info, running).map_err(|why| artifact(path, why))
}

/// `MLComputeUnits` behind a unit name.
fn compute_units(unit: &str) -> Result<MLComputeUnits> {
    Ok(match unit {
        "cpu" => MLComputeUnits::CPUOnly,
        "gpu" => MLComputeUnits::CPUAndGPU,
        "ane" => MLComputeUnits::CPUAndNeuralEngine,
        "all" => MLComputeUnits::All,
        other => return Err(BackendError::UnknownUnit { backend: super::BACKEND.into(), unit: other.into() }),
    })
}

/// A configuration for `unit`, optionally selecting one function of a multifunction model.
fn configuration(unit: &str, function: Option<&str>) -> Result<Retained<MLModelConfiguration>> {
    let units = compute_units(unit)?;
    // SAFETY: a fresh configuration object, set before any model uses it.
    unsafe {
        let config = MLModelConfiguration::new();
        config.setComputeUnits(units);
        if let Some(name) = function {
            config.setFunctionName(Some(&NSString::from_str(name)));
        }
        Ok(config)
    }
}

/// A compiled model (`.mlmodelc`) and how long compiling it took (0 when it was cached).
struct Compiled {
    dir: PathBuf,
    compile_ms: f64,
}

/// The compiled form of `path`: itself when it is a `.mlmodelc`, else the cached compilation
/// (keyed by the package's content digest), compiling it the first time.
fn compiled(path: &Path) -> Result<Compiled> {
    if path.extension().is_some_and(|e| e == "mlmodelc") {
        return Ok(Compiled { dir: path.to_path_buf(), compile_ms: 0.0 });
    }
    let digest = anefleet_proto::archive::digest_path(path).map_err(|e| artifact(path, format!("reading the package: {e}")))?;
    let cached = cache_root()?.join(format!("{digest}.mlmodelc"));
    if cached.is_dir() {
        return Ok(Compiled { dir: cached, compile_ms: 0.0 });
    }
    let t = Instant::now();
    let temp = compile(path)?;
    let compile_ms = t.elapsed().as_secs_f64() * 1e3;
    move_dir(&temp, &cached).map_err(|e| artifact(&cached, format!("keeping the compiled model: {e}")))?;
    Ok(Compiled { dir: cached, compile_ms })
}

/// `MLModel.compileModelAtURL`, waited for; the compiled model in a temporary folder.
fn compile(path: &Path) -> Result<PathBuf> {
    let (tx, rx) = mpsc::channel::<std::result::Result<PathBuf, String>>();
    let handler = RcBlock::new(move |url: *mut NSURL, error: *mut NSError| {
        // SAFETY: CoreML passes either a valid URL or a valid error, alive for the call.
        let outcome = unsafe { url.as_ref() }.and_then(url_path).ok_or_else(|| describe(unsafe { error.as_ref() }));
        let _ = tx.send(outcome);
    });
    // SAFETY: the URL and the block outlive the call; the block is called once.
    unsafe { MLModel::compileModelAtURL_completionHandler(&file_url(path), &handler) };
    match rx.recv() {
        Ok(Ok(dir)) => Ok(dir),
        Ok(Err(message)) => Err(artifact(path, format!("compiling: {message}"))),
        Err(_) => Err(artifact(path, "compiling: CoreML never answered")),
    }
}

/// Loads the compiled model at `dir` with `config`.
fn load_model(dir: &Path, config: &MLModelConfiguration) -> Result<Retained<MLModel>> {
    // SAFETY: a valid URL and configuration; CoreML copies what it keeps.
    unsafe { MLModel::modelWithContentsOfURL_configuration_error(&file_url(dir), config) }
        .map_err(|e| artifact(dir, format!("loading: {}", describe(Some(&e)))))
}

/// Where compiled models are kept: `$ANEFLEET_COREML_CACHE`, else
/// `~/Library/Caches/anefleet/coreml`.
fn cache_root() -> Result<PathBuf> {
    let root = match std::env::var_os("ANEFLEET_COREML_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join("Library/Caches/anefleet/coreml"),
    };
    std::fs::create_dir_all(&root).map_err(|e| artifact(&root, e.to_string()))?;
    Ok(root)
}

/// Renames `from` to `to`, copying across file systems; a concurrent winner is kept.
fn move_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    if std::fs::rename(from, to).is_ok() || to.is_dir() {
        return Ok(());
    }
    let status = std::process::Command::new("/bin/cp").arg("-R").arg(from).arg(to).status()?;
    if status.success() { Ok(()) } else { Err(std::io::Error::other(format!("cp -R exited with {status}"))) }
}

fn file_url(path: &Path) -> Retained<NSURL> {
    NSURL::fileURLWithPath(&NSString::from_str(&path.to_string_lossy()))
}

fn url_path(url: &NSURL) -> Option<PathBuf> {
    url.path().map(|p| PathBuf::from(p.to_string()))
}

/// An `NSError`'s description, or a placeholder when CoreML gave none.
fn describe(error: Option<&NSError>) -> String {
    error.map_or_else(|| "no error description".to_string(), |e| e.localizedDescription().to_string())
}

fn artifact(path: &Path, message: impl Into<String>) -> BackendError {
    BackendError::Artifact { path: path.display().to_string(), message: message.into() }
}
