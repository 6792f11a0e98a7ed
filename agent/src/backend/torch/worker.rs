//! The worker process: a Python running `agent/python/anefleet_torch/worker.py` (embedded in
//! the binary), spoken to over its stdin/stdout in length-prefixed frames. One worker per loaded
//! model; it dies with its [`Worker`].

use std::io::{BufReader, BufWriter, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::backend::{BackendError, Result};

/// The worker's source, written to the Python's `-c`.
const SOURCE: &str = include_str!("../../../python/anefleet_torch/worker.py");

/// Largest reply the agent reads: logits of a 256k vocabulary, an embedding batch, with room.
const MAX_FRAME: usize = 64 << 20;
/// A call that takes longer (a hung device, a deadlocked Python) kills the worker, and the cell
/// fails with that reason instead of holding the agent forever.
const CALL_TIMEOUT: Duration = Duration::from_secs(15 * 60);

pub struct Worker {
    child: Arc<Mutex<Child>>,
    stdin: BufWriter<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    python: String,
    /// When the call in progress started (ms since `born`, +1), 0 when none: the watchdog's.
    busy_since: Arc<AtomicU64>,
    timed_out: Arc<AtomicBool>,
    /// Set when a frame was lost or garbled: the stream is out of step, every later call fails.
    broken: bool,
}

/// A reply: its JSON, and the f32 values that came with it.
pub struct Reply {
    pub json: Value,
    pub values: Vec<f32>,
}

impl Worker {
    /// Starts `python` on the worker's source; its stderr goes to the agent's.
    pub fn start(python: &str) -> Result<Worker> {
        let mut child = Command::new(python)
            .args(["-u", "-c", SOURCE])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                BackendError::Inference(format!("cannot start `{python}` for the torch worker: {e} (pass --python or set ANEFLEET_PYTHON)"))
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(BackendError::Inference("the torch worker has no pipes".into()));
        };
        let child = Arc::new(Mutex::new(child));
        let (busy_since, timed_out) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        watchdog(Arc::downgrade(&child), busy_since.clone(), timed_out.clone());
        let (stdin, stdout) = (BufWriter::new(stdin), BufReader::new(stdout));
        Ok(Worker { child, stdin, stdout, python: python.to_string(), busy_since, timed_out, broken: false })
    }

    /// Sends one request and reads its reply; a reply with `"ok": false` is an error naming why.
    pub fn call(&mut self, request: &Value) -> Result<Reply> {
        if self.broken {
            return Err(self.broken("an earlier reply was garbled".into()));
        }
        self.busy_since.store(since_start_ms() + 1, Ordering::Relaxed);
        let reply = self.exchange(request);
        self.busy_since.store(0, Ordering::Relaxed);
        reply
    }

    fn exchange(&mut self, request: &Value) -> Result<Reply> {
        let body = serde_json::to_vec(request).map_err(|e| self.broken(e.to_string()))?;
        let len = u32::try_from(body.len()).map_err(|_| self.broken("request too large".into()))?;
        self.stdin
            .write_all(&len.to_le_bytes())
            .and_then(|()| self.stdin.write_all(&body))
            .and_then(|()| self.stdin.flush())
            .map_err(|e| self.broken(e.to_string()))?;
        let json: Value = serde_json::from_slice(&self.frame()?).map_err(|e| self.broken(format!("a reply that is not JSON: {e}")))?;
        let bytes = self.frame()?;
        if bytes.len() % 4 != 0 {
            return Err(self.broken(format!("a value frame of {} bytes, not whole f32s", bytes.len())));
        }
        if json.get("ok").and_then(Value::as_bool) != Some(true) {
            let error = json.get("error").and_then(Value::as_str).unwrap_or("no reason given");
            return Err(BackendError::Inference(format!("torch worker: {error}")));
        }
        let values = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        Ok(Reply { json, values })
    }

    /// The Python the worker runs on.
    pub fn python(&self) -> &str {
        &self.python
    }

    fn frame(&mut self) -> Result<Vec<u8>> {
        let mut head = [0u8; 4];
        self.stdout.read_exact(&mut head).map_err(|e| self.broken(format!("reply ended: {e}")))?;
        let n = u32::from_le_bytes(head) as usize;
        if n > MAX_FRAME {
            return Err(self.broken(format!("a reply of {n} bytes, above the {MAX_FRAME} allowed")));
        }
        let mut body = vec![0u8; n];
        self.stdout.read_exact(&mut body).map_err(|e| self.broken(format!("reply cut short: {e}")))?;
        Ok(body)
    }

    fn broken(&mut self, what: String) -> BackendError {
        self.broken = true;
        let status =
            self.child.lock().ok().and_then(|mut c| c.try_wait().ok().flatten()).map(|s| format!(" (it exited: {s})")).unwrap_or_default();
        let timed_out = if self.timed_out.load(Ordering::Relaxed) {
            format!(" (killed: a call took over {} s)", CALL_TIMEOUT.as_secs())
        } else {
            String::new()
        };
        BackendError::Inference(format!("torch worker on `{}`: {what}{status}{timed_out}", self.python))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Milliseconds since the first call of this process.
fn since_start_ms() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Kills the worker when a call runs past [`CALL_TIMEOUT`]; ends with the worker.
fn watchdog(child: std::sync::Weak<Mutex<Child>>, busy_since: Arc<AtomicU64>, timed_out: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let Some(child) = child.upgrade() else { return };
            let since = busy_since.load(Ordering::Relaxed);
            if since > 0 && since_start_ms().saturating_sub(since - 1) > CALL_TIMEOUT.as_millis() as u64 {
                tracing::error!("a torch worker call ran past {} s: killing the worker", CALL_TIMEOUT.as_secs());
                timed_out.store(true, Ordering::Relaxed);
                if let Ok(mut c) = child.lock() {
                    let _ = c.kill();
                }
                return;
            }
        }
    });
}

/// An unsigned field of a reply.
pub fn field_u64(r: &Reply, name: &str) -> Result<u64> {
    r.json.get(name).and_then(Value::as_u64).ok_or_else(|| BackendError::Inference(format!("torch worker: the reply has no `{name}`")))
}
