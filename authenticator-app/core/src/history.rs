//! The local decision history: `history.jsonl`, one [`HistoryEntry`] per line,
//! appended (0600). Unreadable lines are skipped.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{AccountId, Decision, Error, PaymentSummary};

const HISTORY_FILE: &str = "history.jsonl";

/// One decision this device made.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When (unix seconds).
    pub at: i64,
    /// The account that decided.
    pub account: AccountId,
    /// The request's public id.
    pub request_id: String,
    /// Who asked.
    pub client_name: Option<String>,
    /// The code the terminal showed.
    pub binding_message: Option<String>,
    /// What was to be paid.
    pub payment: Option<PaymentSummary>,
    /// What the user chose.
    pub decision: Decision,
    /// "approved" | "denied" | "conflict: <description>"
    pub outcome: String,
}

pub(crate) fn append(dir: &Path, entry: &HistoryEntry) -> Result<(), Error> {
    let path = dir.join(HISTORY_FILE);
    let mut line = serde_json::to_vec(entry).map_err(|e| Error::storage("encoding a history entry", e))?;
    line.push(b'\n');
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    // One write of one line: appends from several processes do not interleave.
    options
        .open(&path)
        .and_then(|mut file| file.write_all(&line))
        .map_err(|e| Error::storage(&format!("cannot write {}", path.display()), e))
}

pub(crate) fn read(dir: &Path) -> Result<Vec<HistoryEntry>, Error> {
    let path = dir.join(HISTORY_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::storage(&format!("cannot read {}", path.display()), e)),
    };
    let mut entries: Vec<HistoryEntry> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .filter_map(|line| match serde_json::from_str(line) {
            Ok(entry) => Some(entry),
            Err(err) => {
                tracing::warn!(error = %err, "skipping an unreadable history line");
                None
            }
        })
        .collect();
    entries.reverse();
    Ok(entries)
}
