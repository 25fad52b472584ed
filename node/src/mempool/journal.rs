//! The mempool journal: every transaction this node acknowledged to a client is on disk before
//! the client gets its id back, so a node killed with `kill -9` still owes it a commit or a
//! reported drop after it restarts.
//!
//! An append-only file of records `length (u32 LE) | transaction bytes | checksum (4 bytes of
//! SHA-256 of the bytes)`. A torn or damaged tail (a crash in mid-append) ends the replay there and
//! is cut off; every length is bounded before anything is allocated for it. The file is rewritten
//! with only the live transactions when it has grown well past them (write, fsync, rename, fsync
//! the folder), so it stays proportional to the mempool.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use synod_chain::SignedTransaction;
use synod_chain::hash::sha256;
use synod_chain::limits::MAX_TX_BYTES;

/// Most records read back at start (a journal longer than this is cut).
const MAX_RECORDS: usize = 1_000_000;

/// What a replay found.
#[derive(Debug, Default)]
pub struct Replay {
    /// The transactions, in the order they were acknowledged.
    pub txs: Vec<SignedTransaction>,
    /// Bytes cut off the end (a torn or damaged tail).
    pub cut_bytes: u64,
}

/// An open journal.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Records appended since the last rewrite.
    records: u64,
    /// Length of the file's good prefix: every record in it is whole and on disk.
    len: u64,
    /// A failed write could not be undone: nothing is appended (and acknowledged) until a
    /// rewrite makes a clean file, or records after the damage would be cut at the next start.
    broken: bool,
}

fn checksum(bytes: &[u8]) -> [u8; 4] {
    let hash = sha256(bytes);
    [hash.0[0], hash.0[1], hash.0[2], hash.0[3]]
}

fn encode_record(tx: &SignedTransaction, out: &mut Vec<u8>) {
    let bytes = tx.encode();
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&bytes);
    out.extend_from_slice(&checksum(&bytes));
}

/// Reads records until the end or the first one that is torn, too long, damaged or not a
/// transaction. Returns them and the length of the good prefix.
fn read_records(path: &Path) -> io::Result<(Vec<SignedTransaction>, u64, u64)> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0, 0)),
        Err(e) => return Err(e),
    };
    let total = file.metadata()?.len();
    let (txs, good) = decode_records(BufReader::new(file));
    Ok((txs, good, total))
}

/// Decodes records from `reader` until the end or the first bad one: the transactions and the
/// length of the good prefix. (Public so the fuzzers can feed it arbitrary bytes.)
pub fn decode_records(mut reader: impl Read) -> (Vec<SignedTransaction>, u64) {
    let mut txs = Vec::new();
    let mut good = 0u64;
    while txs.len() < MAX_RECORDS {
        let mut len = [0u8; 4];
        if reader.read_exact(&mut len).is_err() {
            break;
        }
        let len = u32::from_le_bytes(len) as usize;
        if len == 0 || len > MAX_TX_BYTES {
            break;
        }
        let mut bytes = vec![0u8; len];
        let mut sum = [0u8; 4];
        if reader.read_exact(&mut bytes).is_err() || reader.read_exact(&mut sum).is_err() {
            break;
        }
        if checksum(&bytes) != sum {
            break;
        }
        let Ok(tx) = SignedTransaction::decode(&bytes) else {
            break;
        };
        txs.push(tx);
        good += 4 + len as u64 + 4;
    }
    (txs, good)
}

fn sync_folder(path: &Path) -> io::Result<()> {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(folder)?.sync_all()?;
    }
    Ok(())
}

impl Journal {
    /// Opens the journal at `path` (creating it), returning what it holds. A damaged tail is cut.
    pub fn open(path: &Path) -> io::Result<(Journal, Replay)> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)?;
        }
        let (txs, good, total) = read_records(path)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)?;
        if good < total {
            file.set_len(good)?;
            file.sync_all()?;
        }
        let records = txs.len() as u64;
        Ok((
            Journal {
                path: path.to_path_buf(),
                file,
                records,
                len: good,
                broken: false,
            },
            Replay {
                txs,
                cut_bytes: total - good,
            },
        ))
    }

    /// Appends `txs` and waits until they are on disk. A write that fails is cut off again, so
    /// a torn record never hides the ones appended after it; if even that fails, the journal
    /// refuses appends until it is rewritten.
    pub fn append(&mut self, txs: &[SignedTransaction]) -> io::Result<()> {
        if txs.is_empty() {
            return Ok(());
        }
        if self.broken {
            return Err(io::Error::other(
                "the journal is damaged by an earlier failed write; waiting for a rewrite",
            ));
        }
        let mut buf = Vec::with_capacity(txs.len() * 200);
        for tx in txs {
            encode_record(tx, &mut buf);
        }
        let written = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            let undone = self
                .file
                .set_len(self.len)
                .and_then(|()| self.file.sync_data());
            if undone.is_err() {
                self.broken = true;
            }
            return Err(e);
        }
        self.len += buf.len() as u64;
        self.records += txs.len() as u64;
        Ok(())
    }

    /// Whether a failed write left the journal refusing appends until the next rewrite.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Records appended since the file was last rewritten.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Rewrites the file with exactly `live` (the transactions still pending), atomically.
    pub fn rewrite<'a>(
        &mut self,
        live: impl IntoIterator<Item = &'a SignedTransaction>,
    ) -> io::Result<()> {
        let tmp = self.path.with_extension("journal.tmp");
        let mut buf = Vec::new();
        let mut count = 0u64;
        for tx in live {
            encode_record(tx, &mut buf);
            count += 1;
        }
        {
            let mut file = File::create(&tmp)?;
            file.write_all(&buf)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        // From here the old file is gone: the handle must follow the new one before anything
        // else can fail, or later appends would go to an unlinked file.
        let reopened = OpenOptions::new()
            .append(true)
            .read(true)
            .open(&self.path)
            .and_then(|file| sync_folder(&self.path).map(|()| file));
        match reopened {
            Ok(file) => {
                self.file = file;
                self.records = count;
                self.len = buf.len() as u64;
                self.broken = false;
                Ok(())
            }
            Err(e) => {
                self.broken = true;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_chain::fixtures::Fixture;

    #[test]
    fn replays_what_was_appended_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/mempool.journal");
        let fx = Fixture::new("journal", 2, 100, 0);
        let txs: Vec<_> = (0..5).map(|n| fx.transfer(0, 1, 1, 0, n)).collect();
        {
            let (mut journal, replay) = Journal::open(&path).unwrap();
            assert!(replay.txs.is_empty());
            journal.append(&txs[..3]).unwrap();
            journal.append(&txs[3..]).unwrap();
        }
        // A crash in mid-append leaves half a record.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[120, 0, 0, 0, 1, 2, 3]).unwrap();
        drop(file);
        let (mut journal, replay) = Journal::open(&path).unwrap();
        assert_eq!(replay.txs, txs);
        assert_eq!(replay.cut_bytes, 7);
        journal.rewrite(&txs[4..]).unwrap();
        drop(journal);
        let (_, replay) = Journal::open(&path).unwrap();
        assert_eq!(replay.txs, txs[4..].to_vec());
    }

    #[test]
    fn damaged_records_and_absurd_lengths_end_the_replay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mempool.journal");
        let fx = Fixture::new("journal", 2, 100, 0);
        let txs: Vec<_> = (0..3).map(|n| fx.transfer(0, 1, 1, 0, n)).collect();
        {
            let (mut journal, _) = Journal::open(&path).unwrap();
            journal.append(&txs).unwrap();
        }
        let mut bytes = std::fs::read(&path).unwrap();
        let record = bytes.len() / 3;
        bytes[record + 10] ^= 0xff; // the second record's body
        std::fs::write(&path, &bytes).unwrap();
        let (_, replay) = Journal::open(&path).unwrap();
        assert_eq!(replay.txs, txs[..1].to_vec());

        std::fs::write(&path, [0xff, 0xff, 0xff, 0x7f, 0, 0]).unwrap();
        let (_, replay) = Journal::open(&path).unwrap();
        assert!(replay.txs.is_empty());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }
}
