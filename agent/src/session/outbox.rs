//! The agent's durable outbox. Every message a cell produces for the coordinator (CellStarted,
//! IntervalHistogram, CellFinished) is first written to a file of its own in a folder of the
//! agent's cache dir, then sent; it is deleted once the coordinator acknowledges it after a
//! durable commit. When a session breaks, the cell keeps running and its messages keep going to
//! the outbox; on reconnect, everything not acknowledged is sent again, in order.
//!
//! Each entry is `<seq as 20 digits>.msg`, the prost encoding of the `pb::AgentMessage` with its
//! `seq` set, written as `.tmp`, fsynced, renamed, and the folder fsynced. The encoded bytes are
//! also kept in memory, bounded by `max_bytes` (results are kept past the bound: a cell's final
//! result is never dropped).

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use prost::Message;
use tokio::sync::watch;

use anefleet_proto::pb::{self, agent_message::Body};

/// The extension of a kept entry.
const MSG: &str = "msg";
/// The extension of an entry being written.
const TMP: &str = "tmp";

/// Why the outbox could not keep or forget a message.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// Reading, writing or deleting a file or the folder failed.
    #[error("outbox {}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// Only CellStarted, IntervalHistogram and CellFinished are kept.
    #[error("the outbox keeps only a cell's messages, not {0}")]
    NotKept(&'static str),
}

/// One kept message.
struct Entry {
    cell_id: String,
    attempt: u32,
    /// A CellFinished.
    finished: bool,
    /// The prost encoding of the `pb::AgentMessage`, `seq` set: what the file holds.
    encoded: Vec<u8>,
}

impl Entry {
    /// The entry a file holds, if it decodes to a kept message with this seq.
    fn decode(seq: u64, encoded: Vec<u8>) -> Option<Entry> {
        let msg = pb::AgentMessage::decode(encoded.as_slice()).ok()?;
        let (cell_id, attempt, finished) = cell_of(msg.body.as_ref()?)?;
        (msg.seq == seq).then(|| Entry { cell_id: cell_id.to_string(), attempt, finished, encoded })
    }

    /// Whether the entry belongs to this attempt.
    fn is(&self, cell_id: &str, attempt: u32) -> bool {
        self.cell_id == cell_id && self.attempt == attempt
    }

    fn len(&self) -> u64 {
        self.encoded.len() as u64
    }
}

/// What is kept, in memory.
#[derive(Default)]
struct State {
    entries: BTreeMap<u64, Entry>,
    /// The bytes of `entries`.
    bytes: u64,
    /// The highest seq given out (or found at open).
    last_seq: u64,
    /// Messages not kept because the outbox was full.
    dropped: u64,
    /// Messages kept in memory only: their files could not be written.
    memory_only: u64,
    /// The attempt last warned about being dropped (cells run one at a time).
    warned: Option<(String, u32)>,
}

/// The durable outbox: Send + Sync, used behind an `Arc`.
pub struct Outbox {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
    /// Serializes puts, so that seqs become visible in order; held across their file writes,
    /// while `state` is held only to read or change memory.
    writing: Mutex<()>,
    last_put: watch::Sender<u64>,
}

impl Outbox {
    /// Opens (creating, mode 0700 on unix) `dir`, loads the entries there in seq order.
    /// Removes leftover temporary files (a crash mid-write) and entries that do not decode
    /// (logged with tracing::warn naming the file). Then removes *orphans*: entries of an attempt
    /// (cell_id, attempt) that has no CellFinished entry — at open nothing is running, so such an
    /// attempt was killed with the process and will be re-run elsewhere; log how many were dropped.
    /// `max_bytes` bounds the bytes of kept entries (see `put`).
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Outbox, OutboxError> {
        create_dir(dir)?;
        let (mut entries, last_seq) = load(dir)?;
        drop_orphans(dir, &mut entries)?;
        sync_dir(dir)?;
        let bytes = entries.values().map(Entry::len).sum();
        let state = State { entries, bytes, last_seq, ..State::default() };
        let (last_put, _) = watch::channel(last_seq);
        Ok(Outbox { dir: dir.to_path_buf(), max_bytes, state: Mutex::new(state), writing: Mutex::new(()), last_put })
    }

    /// Keeps the message durably and returns its seq (1, 2, 3… increasing, continuing after the
    /// highest seq found at open): write `<seq as 20 digits>.tmp`, fsync, rename to
    /// `<seq as 20 digits>.msg`, fsync the folder. The file holds the prost encoding of the
    /// pb::AgentMessage with `seq` set. Policy when full: if the kept bytes plus this message's
    /// would pass `max_bytes`, an IntervalHistogram or CellStarted is not kept (returns Ok(None),
    /// logs a warning once per attempt and counts it in `dropped()`), a CellFinished is always kept
    /// (a cell's final result is never dropped). A message whose file cannot be written is kept
    /// in memory only (logged, counted in `memory_only()`): it is still sent, but not across a
    /// restart. After a put that keeps the message, wakes `watch()` receivers.
    pub fn put(&self, body: Body) -> Result<Option<u64>, OutboxError> {
        let (cell_id, attempt, finished) = cell_of(&body).ok_or_else(|| OutboxError::NotKept(kind(&body)))?;
        let (cell_id, kind) = (cell_id.to_string(), kind(&body));
        let _writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = self.state().last_seq + 1;
        let encoded = pb::AgentMessage { body: Some(body), seq }.encode_to_vec();
        if !finished && !self.admit(&cell_id, attempt, encoded.len() as u64, kind) {
            return Ok(None);
        }
        if let Err(e) = self.write(seq, &encoded) {
            // A full disk or a folder removed under the agent: the report is still sent, from
            // memory, and only a restart before its acknowledgement loses it.
            let _ = remove(&entry_path(&self.dir, seq, TMP));
            tracing::error!(error = %e, cell = %cell_id, attempt, kind, "outbox: the report could not be written to disk; it is sent from memory, and lost if the agent stops before the coordinator acknowledges it");
            self.state().memory_only += 1;
        }
        self.keep(seq, Entry { cell_id, attempt, finished, encoded });
        self.last_put.send_replace(seq);
        Ok(Some(seq))
    }

    /// Kept messages with seq > `after`, in seq order (each with its `seq` set).
    pub fn after(&self, after: u64) -> Vec<pb::AgentMessage> {
        self.batch_after(after, usize::MAX)
    }

    /// At most `max` of the kept messages with seq > `after`, in seq order: a replay of a full
    /// outbox decodes a batch at a time, not everything on every call.
    pub fn batch_after(&self, after: u64, max: usize) -> Vec<pb::AgentMessage> {
        let state = self.state();
        let kept = state.entries.range((Bound::Excluded(after), Bound::Unbounded)).take(max);
        kept.filter_map(|(_, e)| pb::AgentMessage::decode(e.encoded.as_slice()).ok()).collect()
    }

    /// Forgets the entry the ack names: deletes its file only when seq, cell_id and attempt all
    /// match what is kept (an ack for anything else is ignored and returns false). The folder is
    /// not fsynced: an ack lost in a crash only sends the acknowledged message again.
    pub fn ack(&self, ack: &pb::Ack) -> Result<bool, OutboxError> {
        let Some(entry) = self.take(ack) else { return Ok(false) };
        if let Err(e) = remove(&entry_path(&self.dir, ack.seq, MSG)) {
            self.keep(ack.seq, entry);
            return Err(e);
        }
        Ok(true)
    }

    /// The attempts whose CellFinished is kept (not yet acknowledged), in seq order, deduplicated.
    pub fn finished(&self) -> Vec<pb::CellRef> {
        let state = self.state();
        let mut seen = HashSet::new();
        let finished = state.entries.values().filter(|e| e.finished && seen.insert((e.cell_id.as_str(), e.attempt)));
        finished.map(|e| pb::CellRef { cell_id: e.cell_id.clone(), attempt: e.attempt }).collect()
    }

    /// Number of kept entries.
    pub fn len(&self) -> usize {
        self.state().entries.len()
    }

    /// Whether no entry is kept.
    pub fn is_empty(&self) -> bool {
        self.state().entries.is_empty()
    }

    /// The bytes of the kept entries (their encodings, as in their files).
    pub fn bytes(&self) -> u64 {
        self.state().bytes
    }

    /// Messages not kept because the outbox was full, since open.
    pub fn dropped(&self) -> u64 {
        self.state().dropped
    }

    /// Messages kept in memory only since open: their files could not be written (see `put`).
    pub fn memory_only(&self) -> u64 {
        self.state().memory_only
    }

    /// A receiver whose value is the highest seq kept so far; it changes on every put.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.last_put.subscribe()
    }

    /// The memory state; a panic elsewhere leaves it consistent (each change is one short step).
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a message of `len` bytes fits; if not, counts it dropped and warns once per attempt.
    fn admit(&self, cell_id: &str, attempt: u32, len: u64, kind: &str) -> bool {
        let mut state = self.state();
        if state.bytes.saturating_add(len) <= self.max_bytes {
            return true;
        }
        state.dropped += 1;
        let attempt_key = (cell_id.to_string(), attempt);
        if state.warned.as_ref() != Some(&attempt_key) {
            let (bytes, max_bytes) = (state.bytes, self.max_bytes);
            tracing::warn!(cell = %cell_id, attempt, kind, bytes, max_bytes, "outbox full: not keeping this attempt's progress messages");
            state.warned = Some(attempt_key);
        }
        false
    }

    /// Writes the entry's file durably: `.tmp`, fsync, rename to `.msg`, fsync the folder. A
    /// folder removed under the agent (its cache cleaned) is made again.
    fn write(&self, seq: u64, encoded: &[u8]) -> Result<(), OutboxError> {
        let (tmp, msg) = (entry_path(&self.dir, seq, TMP), entry_path(&self.dir, seq, MSG));
        if !self.dir.is_dir() {
            tracing::warn!(dir = %self.dir.display(), "outbox: the folder was removed; making it again");
            create_dir(&self.dir)?;
        }
        write_synced(&tmp, encoded)?;
        fs::rename(&tmp, &msg).map_err(io(&msg))?;
        sync_dir(&self.dir)
    }

    /// Keeps the entry in memory.
    fn keep(&self, seq: u64, entry: Entry) {
        let mut state = self.state();
        state.last_seq = state.last_seq.max(seq);
        state.bytes += entry.len();
        if let Some(old) = state.entries.insert(seq, entry) {
            state.bytes -= old.len();
        }
    }

    /// Takes out of memory the entry the ack names, if it matches.
    fn take(&self, ack: &pb::Ack) -> Option<Entry> {
        let mut state = self.state();
        if !state.entries.get(&ack.seq)?.is(&ack.cell_id, ack.attempt) {
            return None;
        }
        let entry = state.entries.remove(&ack.seq)?;
        state.bytes -= entry.len();
        Some(entry)
    }
}

/// The cell id and attempt of a kept message, and whether it is a CellFinished.
fn cell_of(body: &Body) -> Option<(&str, u32, bool)> {
    match body {
        Body::CellStarted(m) => Some((&m.cell_id, m.attempt, false)),
        Body::Interval(m) => Some((&m.cell_id, m.attempt, false)),
        Body::CellFinished(m) => Some((&m.cell_id, m.attempt, true)),
        _ => None,
    }
}

/// The message's kind, for errors and logs.
fn kind(body: &Body) -> &'static str {
    match body {
        Body::Hello(_) => "Hello",
        Body::Heartbeat(_) => "Heartbeat",
        Body::CellStarted(_) => "CellStarted",
        Body::Interval(_) => "IntervalHistogram",
        Body::CellFinished(_) => "CellFinished",
    }
}

/// `<dir>/<seq as 20 digits>.<ext>`.
fn entry_path(dir: &Path, seq: u64, ext: &str) -> PathBuf {
    dir.join(format!("{seq:020}.{ext}"))
}

/// Maps an io error to one naming `path`.
fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutboxError + '_ {
    move |source| OutboxError::Io { path: path.to_path_buf(), source }
}

/// Creates the folder (and its parents), mode 0700 on unix.
fn create_dir(dir: &Path) -> Result<(), OutboxError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io(dir))
}

/// A name in the folder: a kept entry (its seq, None if the name does not parse), a leftover
/// temporary file, or something else (left alone).
enum Name {
    Msg(Option<u64>),
    Tmp,
    Other,
}

fn classify(path: &Path) -> Name {
    let seq = || path.file_stem()?.to_str().filter(|s| s.len() == 20)?.parse().ok();
    match path.extension().and_then(|e| e.to_str()) {
        Some(MSG) => Name::Msg(seq()),
        Some(TMP) => Name::Tmp,
        _ => Name::Other,
    }
}

/// The entries in the folder, and the highest seq found; removes leftover temporary files and
/// entries that do not decode.
fn load(dir: &Path) -> Result<(BTreeMap<u64, Entry>, u64), OutboxError> {
    let (mut entries, mut last_seq) = (BTreeMap::new(), 0);
    for item in fs::read_dir(dir).map_err(io(dir))? {
        let path = item.map_err(io(dir))?.path();
        match classify(&path) {
            Name::Tmp => remove(&path)?,
            Name::Msg(None) => remove_undecodable(&path)?,
            Name::Msg(Some(seq)) => {
                last_seq = last_seq.max(seq);
                if let Some(entry) = read_entry(&path, seq)? {
                    entries.insert(seq, entry);
                }
            }
            Name::Other => {}
        }
    }
    Ok((entries, last_seq))
}

/// The entry a file holds; None (the file removed) if it does not decode.
fn read_entry(path: &Path, seq: u64) -> Result<Option<Entry>, OutboxError> {
    let encoded = fs::read(path).map_err(io(path))?;
    match Entry::decode(seq, encoded) {
        Some(entry) => Ok(Some(entry)),
        None => remove_undecodable(path).map(|()| None),
    }
}

fn remove_undecodable(path: &Path) -> Result<(), OutboxError> {
    tracing::warn!(path = %path.display(), "outbox: removing an entry that does not decode");
    remove(path)
}

/// Removes the entries of attempts without a CellFinished entry: killed with the process.
fn drop_orphans(dir: &Path, entries: &mut BTreeMap<u64, Entry>) -> Result<(), OutboxError> {
    let orphans: Vec<u64> = {
        let finished: HashSet<(&str, u32)> = entries.values().filter(|e| e.finished).map(|e| (e.cell_id.as_str(), e.attempt)).collect();
        entries.iter().filter(|(_, e)| !finished.contains(&(e.cell_id.as_str(), e.attempt))).map(|(seq, _)| *seq).collect()
    };
    for seq in &orphans {
        remove(&entry_path(dir, *seq, MSG))?;
        entries.remove(seq);
    }
    if !orphans.is_empty() {
        tracing::warn!(dropped = orphans.len(), "outbox: dropped the messages of attempts that did not finish");
    }
    Ok(())
}

/// Deletes a file; one already gone is fine.
fn remove(path: &Path) -> Result<(), OutboxError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(path)(e)),
        _ => Ok(()),
    }
}

/// Writes a new file (mode 0600 on unix) and fsyncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), OutboxError> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io(path))
}

/// Fsyncs the folder, so that renames and removals in it are durable. Only unix can: elsewhere a
/// failure is logged and ignored.
fn sync_dir(dir: &Path) -> Result<(), OutboxError> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Err(e) if cfg!(unix) => Err(io(dir)(e)),
        Err(e) => {
            tracing::debug!(dir = %dir.display(), error = %e, "outbox: cannot fsync the folder");
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
