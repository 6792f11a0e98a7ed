use std::path::Path;

use anefleet_proto::pb::{self, agent_message::Body, cell_finished::Outcome};

use super::*;

const BIG: u64 = 1 << 30;

fn started(cell: &str, attempt: u32) -> Body {
    Body::CellStarted(pb::CellStarted { cell_id: cell.into(), attempt, load_ms: 12.5 })
}

fn interval(cell: &str, attempt: u32, n: usize) -> Body {
    Body::Interval(pb::IntervalHistogram { cell_id: cell.into(), attempt, latency: vec![0u8; n], ..Default::default() })
}

/// A CellFinished whose error is `n` bytes long.
fn finished(cell: &str, attempt: u32, n: usize) -> Body {
    Body::CellFinished(pb::CellFinished {
        cell_id: cell.into(),
        attempt,
        outcome: Some(Outcome::Error("x".repeat(n))),
        cancelled: false,
        declined: false,
    })
}

fn ack(seq: u64, cell: &str, attempt: u32) -> pb::Ack {
    pb::Ack { seq, cell_id: cell.into(), attempt }
}

fn cell_ref(cell: &str, attempt: u32) -> pb::CellRef {
    pb::CellRef { cell_id: cell.into(), attempt }
}

/// The names of the files in the folder, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

/// Puts started, an interval and finished for ("c", 1): seqs 1, 2, 3.
fn put_cell(outbox: &Outbox) -> Vec<Option<u64>> {
    [started("c", 1), interval("c", 1, 100), finished("c", 1, 10)].into_iter().map(|b| outbox.put(b).unwrap()).collect()
}

#[test]
fn puts_number_from_one_and_after_returns_them_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path(), BIG).unwrap();
    assert!(outbox.is_empty());
    assert_eq!(put_cell(&outbox), vec![Some(1), Some(2), Some(3)]);
    let all = outbox.after(0);
    let expected: Vec<pb::AgentMessage> = [started("c", 1), interval("c", 1, 100), finished("c", 1, 10)]
        .into_iter()
        .zip(1..)
        .map(|(body, seq)| pb::AgentMessage { body: Some(body), seq })
        .collect();
    assert_eq!(all, expected);
    assert_eq!(outbox.after(2), vec![expected[2].clone()]);
    assert_eq!(outbox.after(3), vec![]);
    assert_eq!(outbox.len(), 3);
    let bytes: u64 = expected.iter().map(|m| m.encoded_len() as u64).sum();
    assert_eq!(outbox.bytes(), bytes);
    assert_eq!(files(dir.path()), vec!["00000000000000000001.msg", "00000000000000000002.msg", "00000000000000000003.msg"]);
    assert_eq!(fs::read(dir.path().join("00000000000000000002.msg")).unwrap(), expected[1].encode_to_vec());
}

#[test]
fn reopen_keeps_seqs_and_bytes_and_continues_numbering() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path(), BIG).unwrap();
    put_cell(&outbox);
    let (before, bytes) = (outbox.after(0), outbox.bytes());
    drop(outbox);
    let reopened = Outbox::open(dir.path(), BIG).unwrap();
    assert_eq!(reopened.after(0), before);
    assert_eq!(reopened.bytes(), bytes);
    assert_eq!(reopened.len(), 3);
    assert_eq!(*reopened.watch().borrow(), 3);
    assert_eq!(reopened.put(started("e", 2)).unwrap(), Some(4));
}

#[test]
fn ack_forgets_exactly_the_named_entry() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path(), BIG).unwrap();
    put_cell(&outbox);
    let two = dir.path().join("00000000000000000002.msg");
    assert!(!outbox.ack(&ack(2, "other", 1)).unwrap());
    assert!(!outbox.ack(&ack(2, "c", 2)).unwrap());
    assert!(!outbox.ack(&ack(9, "c", 1)).unwrap());
    assert!(two.exists());
    assert_eq!(outbox.len(), 3);
    let bytes_of_two = outbox.after(1)[0].encoded_len() as u64;
    let bytes = outbox.bytes();
    assert!(outbox.ack(&ack(2, "c", 1)).unwrap());
    assert!(!two.exists());
    assert_eq!(outbox.after(0).iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(outbox.bytes(), bytes - bytes_of_two);
    assert!(!outbox.ack(&ack(2, "c", 1)).unwrap(), "a second ack of the same entry is ignored");
    assert_eq!(files(dir.path()), vec!["00000000000000000001.msg", "00000000000000000003.msg"]);
}

#[test]
fn finished_lists_the_attempt_until_its_result_is_acked() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path(), BIG).unwrap();
    put_cell(&outbox);
    assert_eq!(outbox.finished(), vec![cell_ref("c", 1)]);
    assert!(outbox.ack(&ack(1, "c", 1)).unwrap());
    assert_eq!(outbox.finished(), vec![cell_ref("c", 1)]);
    assert!(outbox.ack(&ack(3, "c", 1)).unwrap());
    assert_eq!(outbox.finished(), vec![]);
    // in seq order, each attempt once
    for body in [finished("b", 2, 1), finished("a", 1, 1), finished("b", 2, 1)] {
        outbox.put(body).unwrap();
    }
    assert_eq!(outbox.finished(), vec![cell_ref("b", 2), cell_ref("a", 1)]);
}

#[test]
fn open_removes_temporary_undecodable_and_orphaned_entries() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path(), BIG).unwrap();
    let seqs: Vec<Option<u64>> =
        [interval("d", 1, 10), started("c", 1), interval("d", 1, 10), interval("c", 1, 10), finished("c", 1, 10), started("d", 2)]
            .into_iter()
            .map(|b| outbox.put(b).unwrap())
            .collect();
    assert_eq!(seqs, vec![Some(1), Some(2), Some(3), Some(4), Some(5), Some(6)]);
    drop(outbox);
    fs::write(dir.path().join("00000000000000000007.tmp"), b"half").unwrap();
    fs::write(dir.path().join("00000000000000000008.msg"), b"\xff\xff\xff not prost").unwrap();
    fs::write(dir.path().join("notes.txt"), b"left alone").unwrap();
    let reopened = Outbox::open(dir.path(), BIG).unwrap();
    assert_eq!(reopened.after(0).iter().map(|m| m.seq).collect::<Vec<_>>(), vec![2, 4, 5]);
    assert_eq!(reopened.finished(), vec![cell_ref("c", 1)]);
    assert_eq!(files(dir.path()), vec!["00000000000000000002.msg", "00000000000000000004.msg", "00000000000000000005.msg", "notes.txt"]);
    assert_eq!(reopened.put(started("e", 1)).unwrap(), Some(9), "numbering continues after the highest seq found");
}

#[cfg(unix)]
#[test]
fn open_creates_the_folder_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("cache").join("outbox");
    Outbox::open(&dir, BIG).unwrap();
    assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
}

#[test]
fn a_full_outbox_drops_progress_but_keeps_results() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path(), 2048).unwrap();
    assert_eq!(outbox.put(interval("c", 1, 1000)).unwrap(), Some(1));
    assert_eq!(outbox.put(interval("c", 1, 1000)).unwrap(), Some(2));
    assert_eq!(outbox.put(interval("c", 1, 1000)).unwrap(), None);
    assert_eq!(outbox.dropped(), 1);
    assert_eq!(outbox.put(started("c", 1)).unwrap(), Some(3), "a small message still fits");
    assert_eq!(outbox.put(interval("c", 1, 1000)).unwrap(), None);
    assert_eq!(outbox.dropped(), 2);
    assert_eq!(outbox.put(finished("c", 1, 5000)).unwrap(), Some(4));
    assert_eq!(outbox.len(), 4);
    assert!(outbox.bytes() > 7000);
    assert_eq!(outbox.finished(), vec![cell_ref("c", 1)]);
    assert_eq!(files(dir.path()).len(), 4);
}

#[test]
fn only_cell_messages_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path(), BIG).unwrap();
    let err = outbox.put(Body::Heartbeat(pb::Heartbeat::default())).unwrap_err();
    assert!(matches!(err, OutboxError::NotKept("Heartbeat")), "{err}");
    assert!(outbox.is_empty());
    assert_eq!(outbox.put(started("c", 1)).unwrap(), Some(1));
}

#[test]
fn watch_sees_the_seq_of_the_last_put() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path(), 2048).unwrap();
    let mut rx = outbox.watch();
    assert_eq!(*rx.borrow_and_update(), 0);
    put_cell(&outbox);
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 3);
    assert_eq!(outbox.put(interval("c", 1, 4000)).unwrap(), None);
    assert!(!rx.has_changed().unwrap(), "a message not kept does not wake receivers");
    assert_eq!(outbox.put(finished("c", 1, 10)).unwrap(), Some(4));
    assert_eq!(*rx.borrow(), 4);
}

#[test]
fn a_report_whose_file_cannot_be_written_is_still_sent_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path(), BIG).unwrap();
    assert_eq!(outbox.put(started("c", 1)).unwrap(), Some(1));
    // Something in the way of seq 2's file (as a full disk would be): it cannot be written.
    fs::create_dir(dir.path().join("00000000000000000002.tmp")).unwrap();
    let mut rx = outbox.watch();
    assert_eq!(outbox.put(finished("c", 1, 10)).unwrap(), Some(2));
    assert_eq!(*rx.borrow_and_update(), 2, "the session is woken to send it");
    assert_eq!(outbox.memory_only(), 1);
    assert_eq!(files(dir.path()), ["00000000000000000001.msg", "00000000000000000002.tmp"], "no file for seq 2");
    assert_eq!(outbox.after(1), vec![pb::AgentMessage { body: Some(finished("c", 1, 10)), seq: 2 }]);
    assert_eq!(outbox.finished(), vec![cell_ref("c", 1)]);
    assert!(outbox.ack(&ack(2, "c", 1)).unwrap(), "its acknowledgement forgets it, with no file to delete");
    assert!(outbox.ack(&ack(1, "c", 1)).unwrap());
    assert!(outbox.is_empty());
}

#[test]
fn a_folder_removed_under_the_agent_is_made_again() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("outbox");
    let outbox = Outbox::open(&dir, BIG).unwrap();
    assert_eq!(outbox.put(started("c", 1)).unwrap(), Some(1));
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(outbox.put(finished("c", 1, 10)).unwrap(), Some(2));
    assert_eq!(outbox.memory_only(), 0);
    assert_eq!(files(&dir), ["00000000000000000002.msg"], "durable again");
    assert_eq!(outbox.after(0).len(), 2, "the first, whose file went with the folder, is still sent");
}
