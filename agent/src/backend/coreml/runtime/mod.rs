//! CoreML on macOS through `objc2-core-ml`: compiling and caching models, loading them on a
//! compute unit, and the two model shapes the workloads drive — an encoder package
//! ([`encoder`]) and an anemll split decoder ([`anemll`]). [`plan`] reports where each
//! operation runs.

mod anemll;
mod arrays;
mod encoder;
mod plan;

pub use plan::placement;
mod rules;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use block2::RcBlock;
use objc2::rc::{Retained, autoreleasepool};
use objc2::runtime::ProtocolObject;
use objc2_core_ml::{
    MLComputeDeviceProtocol, MLComputeUnits, MLGPUComputeDevice, MLModel, MLModelConfiguration, MLNeuralEngineComputeDevice,
};
use objc2_foundation::{NSArray, NSError, NSString, NSURL};

use super::super::{BackendError, Loaded, Result};
use crate::inspect::compat::{OsVersion, check_os_support};

/// The units CoreML reports devices for on this Mac: `cpu` always, `gpu` and `ane` when such a
/// device is listed, `all` with them. Before macOS 14 there is no device list: every Mac has a GPU,
/// and Apple Silicon (never an Intel Mac) a Neural Engine.
pub fn available_units() -> Vec<&'static str> {
    autoreleased(|| {
        let mut units = vec!["cpu", "all"];
        let Some(devices) = all_compute_devices() else {
            units.push("gpu");
            if cfg!(target_arch = "aarch64") {
                units.push("ane");
            }
            return units;
        };
        if devices.iter().any(|d| is::<MLGPUComputeDevice>(&d)) {
            units.push("gpu");
        }
        if devices.iter().any(|d| is::<MLNeuralEngineComputeDevice>(&d)) {
            units.push("ane");
        }
        units
    })
}

type Devices = NSArray<ProtocolObject<dyn MLComputeDeviceProtocol>>;

/// `MLAllComputeDevices()` (macOS 14+), looked up when the agent runs: linked by name, the agent
/// would not even start on macOS 13, where the symbol does not exist.
fn all_compute_devices() -> Option<Retained<Devices>> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the symbol up.
    let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"MLAllComputeDevices".as_ptr()) };
    if symbol.is_null() {
        return None;
    }
    // SAFETY: the symbol is Core ML's `NSArray<id<MLComputeDeviceProtocol>> *MLAllComputeDevices(void)`,
    // which returns an autoreleased array; retaining it keeps it past the caller's pool.
    unsafe {
        let f: unsafe extern "C" fn() -> *mut Devices = std::mem::transmute(symbol);
        Retained::retain_autoreleased(f())
    }
}

/// Runs `f` inside an Objective-C autorelease pool, drained when `f` returns. CoreML hands back
/// and keeps autoreleased objects (feature providers, arrays, errors); on a thread without a pool
/// (the agent's cell thread is a plain Rust thread, reused cell after cell) they would never be
/// freed. The executor wraps every iteration in one ([`crate::executor`]'s measured loop, the
/// timer inside it); loads and the split decoder's stages have their own.
pub fn autoreleased<T>(f: impl FnOnce() -> T) -> T {
    autoreleasepool(|_| f())
}

/// Whether a compute device is of class `T`.
fn is<T: objc2::ClassType + objc2::DowncastTarget>(device: &ProtocolObject<dyn MLComputeDeviceProtocol>) -> bool {
    let object: &objc2::runtime::AnyObject = device.as_ref();
    object.downcast_ref::<T>().is_some()
}

/// Loads the artifact at `path` on `unit`: an anemll folder (`meta.yaml`) or a model package.
/// A model this macOS cannot load is refused first, with the version it needs.
pub fn load(unit: &str, path: &Path) -> Result<Loaded> {
    autoreleased(|| {
        if path.join("meta.yaml").is_file() {
            // Stateful (one KV-cache MLState) and multifunction (prefill / infer): macOS 15 APIs.
            refuse_unsupported(path, true)?;
            anemll::load(unit, path)
        } else {
            encoder::load(unit, path)
        }
    })
}

/// The macOS running here, when it can be read.
fn running_macos() -> Option<OsVersion> {
    crate::probe::macos::sysctl_string("kern.osproductversion").and_then(|v| v.parse::<OsVersion>().ok())
}

/// Refuses a model this macOS cannot load: a stateful or multifunction one (`stateful`) unless
/// this is macOS 15 or later for certain ([`rules::stateful_gate`], an unknown version refused),
/// then the model's minimum macOS (from its files) against the one running here, when known.
fn refuse_unsupported(path: &Path, stateful: bool) -> Result<()> {
    let running = running_macos();
    if stateful {
        rules::stateful_gate(running.map(|v| (v.major, v.minor))).map_err(|why| artifact(path, why))?;
    }
    let Some(running) = running else {
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
    if let Some(name) = function {
        // `functionName` is macOS 15+: never send the selector where it may not exist.
        rules::stateful_gate(running_macos().map(|v| (v.major, v.minor)))
            .map_err(|why| BackendError::Inference(format!("selecting function `{name}`: {why}")))?;
    }
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
    let cached = cache_root(path)?.join(format!("{digest}.mlmodelc"));
    if cached.is_dir() {
        return Ok(Compiled { dir: cached, compile_ms: 0.0 });
    }
    let t = Instant::now();
    let temp = compile(path)?;
    let compile_ms = t.elapsed().as_secs_f64() * 1e3;
    move_dir(&temp, &cached).map_err(|e| artifact(&cached, format!("keeping the compiled model: {e}")))?;
    Ok(Compiled { dir: cached, compile_ms })
}

/// Longest wait for CoreML to compile a model.
const COMPILE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// `+[MLModel compileModelAtURL:completionHandler:]` (macOS 13+), waited for (at most
/// [`COMPILE_TIMEOUT`]); the compiled model in a temporary folder.
fn compile(path: &Path) -> Result<PathBuf> {
    let (tx, rx) = mpsc::channel::<std::result::Result<PathBuf, String>>();
    let handler = RcBlock::new(move |url: *mut NSURL, error: *mut NSError| {
        // SAFETY: CoreML passes either a valid URL or a valid error, alive for the call.
        let outcome = unsafe { url.as_ref() }.and_then(url_path).ok_or_else(|| describe(unsafe { error.as_ref() }));
        let _ = tx.send(outcome);
    });
    // SAFETY: the URL and the block outlive the call; the block is called once.
    unsafe { MLModel::compileModelAtURL_completionHandler(&file_url(path), &handler) };
    match rx.recv_timeout(COMPILE_TIMEOUT) {
        Ok(Ok(dir)) => Ok(dir),
        Ok(Err(message)) => Err(artifact(path, format!("compiling: {message}"))),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Err(artifact(path, format!("compiling: CoreML had not finished after {} minutes; gave up", COMPILE_TIMEOUT.as_secs() / 60)))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(artifact(path, "compiling: CoreML never answered")),
    }
}

/// Loads the compiled model at `dir` with `config`.
fn load_model(dir: &Path, config: &MLModelConfiguration) -> Result<Retained<MLModel>> {
    // SAFETY: a valid URL and configuration; CoreML copies what it keeps.
    unsafe { MLModel::modelWithContentsOfURL_configuration_error(&file_url(dir), config) }
        .map_err(|e| artifact(dir, format!("loading: {}", describe(Some(&e)))))
}

/// Where compiled models of `model` are kept ([`rules::cache_root`]): `$ANEFLEET_COREML_CACHE`,
/// else `coreml/` in the agent's cache dir for the agent's artifacts, else
/// `$HOME/Library/Caches/anefleet/coreml`.
fn cache_root(model: &Path) -> Result<PathBuf> {
    let root = rules::cache_root(model, std::env::var_os("ANEFLEET_COREML_CACHE"), std::env::var_os("HOME")).ok_or_else(|| {
        artifact(model, "no folder for compiled models: the model is not in the agent's cache, HOME is unset; set ANEFLEET_COREML_CACHE")
    })?;
    std::fs::create_dir_all(&root).map_err(|e| artifact(&root, e.to_string()))?;
    Ok(root)
}

/// Moves CoreML's compiled model `from` (in a temporary folder of its own) to `to`: a rename, or
/// across file systems a copy to a temporary name beside `to` renamed into place, so `to` is
/// either absent or complete. A concurrent winner is kept. The temporary folder CoreML made
/// is removed once empty.
fn move_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    // CoreML's own folder, never a shared temporary directory itself.
    let shared = |dir: &Path| {
        let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        [std::env::temp_dir(), PathBuf::from("/tmp")].iter().any(|t| real(t) == real(dir))
    };
    let parent = from.parent().filter(|p| !p.as_os_str().is_empty() && !shared(p)).map(Path::to_path_buf);
    let moved = if std::fs::rename(from, to).is_ok() || to.is_dir() { Ok(()) } else { copy_into_place(from, to) };
    if from.exists() {
        let _ = std::fs::remove_dir_all(from);
    }
    if let Some(parent) = parent {
        // Only an empty folder goes: whatever else is in it is left alone.
        let _ = std::fs::remove_dir(parent);
    }
    moved
}

/// `cp -R from` to a temporary name in `to`'s folder, then a rename onto `to`.
fn copy_into_place(from: &Path, to: &Path) -> std::io::Result<()> {
    let name = to.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let temp = to.with_file_name(format!(".{name}.partial-{}-{nanos}", std::process::id()));
    let status = std::process::Command::new("/bin/cp").arg("-R").arg(from).arg(&temp).status();
    let renamed = match status {
        Ok(s) if s.success() => match std::fs::rename(&temp, to) {
            Err(_) if to.is_dir() => Ok(()),
            other => other,
        },
        Ok(s) => Err(std::io::Error::other(format!("cp -R exited with {s}"))),
        Err(e) => Err(e),
    };
    if temp.exists() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    renamed
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
