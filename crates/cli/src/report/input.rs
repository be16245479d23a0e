//! The report's inputs: log files (plain or gzip, by their first bytes, whatever their
//! names), `-` for stdin, rotated names put in time order.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use flate2::read::MultiGzDecoder;

/// Bytes of buffer per open input.
const BUF: usize = 256 * 1024;

/// One input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

impl Input {
    /// How the report names it.
    pub(crate) fn name(&self) -> String {
        match self {
            Self::Stdin => "-".to_owned(),
            Self::File(p) => p.display().to_string(),
        }
    }

    /// Its size in bytes as stored (compressed for gzip), when known.
    pub(crate) fn size(&self) -> Option<u64> {
        match self {
            Self::Stdin => None,
            Self::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
        }
    }

    /// Opens it, decompressing gzip; `read` counts the bytes taken from the file (for
    /// progress).
    pub(crate) fn open(&self, read: Arc<AtomicU64>) -> io::Result<Box<dyn BufRead + Send>> {
        let raw: Box<dyn Read + Send> = match self {
            Self::Stdin => Box::new(io::stdin()),
            Self::File(p) => Box::new(File::open(p)?),
        };
        let mut counted = BufReader::with_capacity(BUF, Counted { inner: raw, read });
        let gzip = counted.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        Ok(if gzip {
            Box::new(BufReader::with_capacity(BUF, MultiGzDecoder::new(counted)))
        } else {
            Box::new(counted)
        })
    }
}

struct Counted {
    inner: Box<dyn Read + Send>,
    read: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The inputs named on the command line, checked to exist, with each run of rotated
/// names of one log put oldest first: `queries.log.3.gz`, `queries.log.2.gz`,
/// `queries.log.1`, `queries.log` (logrotate's numbering), and dated names
/// (`queries.log-20261126.gz`, `dateext`) by date. No argument is stdin.
pub(crate) fn inputs(args: &[String]) -> anyhow::Result<Vec<Input>> {
    if args.is_empty() {
        return Ok(vec![Input::Stdin]);
    }
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        if a == "-" {
            if out.contains(&Input::Stdin) {
                bail!("- (stdin) is named twice");
            }
            out.push(Input::Stdin);
            continue;
        }
        let path = PathBuf::from(a);
        let meta = std::fs::metadata(&path).with_context(|| format!("cannot read {a}"))?;
        if meta.is_dir() {
            bail!("{a} is a folder: name the log files in it (e.g. {a}/queries.log*)");
        }
        out.push(Input::File(path));
    }
    // Sort by (log, age); logs in the order they are first named.
    let keys: Vec<(String, Rotation)> = out
        .iter()
        .map(|i| match i {
            Input::File(p) => rotation(p),
            Input::Stdin => ("-".to_owned(), Rotation::Current),
        })
        .collect();
    let group = |i: usize| keys.iter().position(|k| k.0 == keys[i].0).unwrap_or(i);
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by_key(|&i| (group(i), keys[i].1.clone()));
    Ok(order.into_iter().map(|i| out[i].clone()).collect())
}

/// A rotated file's age: older sorts first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Rotation {
    /// `log.N[.gz]`: the higher N, the older (so stored negated).
    Numbered(i64),
    /// `log-YYYYMMDD[.gz]` (or with dots or dashes inside the date).
    Dated(String),
    /// The live file.
    Current,
}

/// The log a file belongs to and its age.
fn rotation(path: &Path) -> (String, Rotation) {
    let name = path.to_string_lossy();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if let Some((base, n)) = name.rsplit_once('.') {
        if !n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit()) {
            return (
                base.to_owned(),
                Rotation::Numbered(-n.parse::<i64>().unwrap_or(0)),
            );
        }
    }
    if let Some((base, date)) = name.rsplit_once(['-', '.', '_']) {
        let digits: String = date.chars().filter(char::is_ascii_digit).collect();
        if digits.len() >= 8 && date.chars().all(|c| c.is_ascii_digit() || c == '-') {
            return (base.to_owned(), Rotation::Dated(digits));
        }
    }
    // `log-2026-11-26`: the date has dashes of its own.
    let b = name.as_bytes();
    if b.len() > 11 && matches!(b[b.len() - 11], b'-' | b'.' | b'_') {
        let date = &name[name.len() - 10..];
        if date.bytes().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == b'-'
            } else {
                c.is_ascii_digit()
            }
        }) {
            return (
                name[..name.len() - 11].to_owned(),
                Rotation::Dated(date.replace('-', "")),
            );
        }
    }
    (name.to_owned(), Rotation::Current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_names_sort_oldest_first_per_log() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "queries.log",
            "other.log",
            "queries.log.1",
            "queries.log.3.gz",
            "queries.log.2.gz",
            "q.log-20261127.gz",
            "q.log-20261126",
            "q.log",
            "d.log-2026-11-27",
            "d.log-2026-11-25.gz",
        ];
        let args: Vec<String> = names
            .iter()
            .map(|n| {
                let p = dir.path().join(n);
                std::fs::write(&p, "").unwrap();
                p.display().to_string()
            })
            .collect();
        let sorted: Vec<String> = inputs(&args)
            .unwrap()
            .iter()
            .map(|i| match i {
                Input::File(p) => p.file_name().unwrap().to_string_lossy().into_owned(),
                Input::Stdin => "-".into(),
            })
            .collect();
        let pos = |n: &str| sorted.iter().position(|s| s == n).unwrap();
        assert!(pos("queries.log.3.gz") < pos("queries.log.2.gz"));
        assert!(pos("queries.log.2.gz") < pos("queries.log.1"));
        assert!(pos("queries.log.1") < pos("queries.log"));
        assert!(pos("q.log-20261126") < pos("q.log-20261127.gz"));
        assert!(pos("q.log-20261127.gz") < pos("q.log"));
        assert!(pos("d.log-2026-11-25.gz") < pos("d.log-2026-11-27"));
        assert_eq!(sorted.len(), names.len());
    }

    #[test]
    fn a_folder_or_a_missing_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let e = inputs(std::slice::from_ref(&d)).unwrap_err().to_string();
        assert!(e.contains("is a folder"), "{e}");
        let missing = format!("{d}/none.log");
        let e = format!("{:#}", inputs(std::slice::from_ref(&missing)).unwrap_err());
        assert!(e.starts_with(&format!("cannot read {missing}: ")), "{e}");
    }
}
