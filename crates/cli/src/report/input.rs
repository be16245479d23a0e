//! The report's inputs: log files (plain or gzip, by their first bytes, whatever their
//! names), `-` for stdin, rotated names put in time order; and the [`Piece`]s that
//! `--jobs` threads count, a large plain file cut into byte ranges at line boundaries.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek as _, SeekFrom};
use std::ops::Range;
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

/// The fewest bytes a piece of a file is cut to: smaller files are counted whole.
pub(crate) const MIN_PIECE: u64 = 1 << 20;

/// What one thread counts at a time: an input, or the lines that start in a byte range
/// of a plain file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    /// Its input's position in the inputs.
    pub(crate) input: usize,
    /// The lines starting in these bytes (the last piece's range ends at `u64::MAX`, so
    /// lines written since are counted as by one thread); `None`: the whole input.
    pub(crate) range: Option<Range<u64>>,
}

/// The pieces of `inputs` for `jobs` threads, in input order: each input whole, except a
/// plain file larger than its threads' share of all plain bytes (and than
/// [`MIN_PIECE`]), which is cut into near-equal byte ranges. Gzip and stdin cannot be
/// entered in the middle, so they stay whole.
pub(crate) fn pieces(inputs: &[Input], jobs: usize) -> Vec<Piece> {
    let sizes: Vec<Option<u64>> = inputs.iter().map(Input::plain_size).collect();
    let total: u64 = sizes.iter().flatten().sum();
    let share = total.div_ceil(jobs.max(1) as u64).max(MIN_PIECE);
    let mut out = Vec::with_capacity(inputs.len());
    for (input, size) in sizes.into_iter().enumerate() {
        match size {
            Some(n) if jobs > 1 && n > share => {
                let parts = n.div_ceil(share);
                let step = n.div_ceil(parts);
                out.extend((0..parts).map(|k| Piece {
                    input,
                    range: Some(
                        k * step..if k + 1 == parts {
                            u64::MAX
                        } else {
                            (k + 1) * step
                        },
                    ),
                }));
            }
            _ => out.push(Piece { input, range: None }),
        }
    }
    out
}

impl Input {
    /// The size of a regular file that is not gzip (which can be entered anywhere).
    fn plain_size(&self) -> Option<u64> {
        let Self::File(p) = self else { return None };
        let mut f = File::open(p).ok()?;
        let meta = f.metadata().ok()?;
        let mut magic = [0u8; 2];
        let gzip = f.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
        (meta.is_file() && !gzip).then_some(meta.len())
    }

    /// Opens a plain file at the first line that starts at or after `start`; with that
    /// line's position.
    fn open_at(
        &self,
        start: u64,
        read: Arc<AtomicU64>,
    ) -> io::Result<(Box<dyn BufRead + Send>, u64)> {
        let Self::File(p) = self else {
            return Err(io::Error::other("only a file can be read from the middle"));
        };
        let mut f = File::open(p)?;
        // From the byte before: a line starts at `start` exactly when that byte ends one.
        let mut pos = start.saturating_sub(1);
        f.seek(SeekFrom::Start(pos))?;
        let mut r = BufReader::with_capacity(
            BUF,
            Counted {
                inner: Box::new(f),
                read,
            },
        );
        if start > 0 {
            pos += r.skip_until(b'\n')? as u64;
        }
        Ok((Box::new(r), pos))
    }
}

impl Piece {
    /// Opens the piece of `input`; `read` counts the bytes taken from the file.
    pub(crate) fn open(&self, input: &Input, read: Arc<AtomicU64>) -> io::Result<PieceLines> {
        let (reader, pos) = match &self.range {
            None => (input.open(read)?, 0),
            Some(r) => input.open_at(r.start, read)?,
        };
        let end = self.range.as_ref().map_or(u64::MAX, |r| r.end);
        Ok(PieceLines { reader, pos, end })
    }
}

/// The lines of a piece: those whose first byte is in its range.
pub(crate) struct PieceLines {
    reader: Box<dyn BufRead + Send>,
    /// Where the next line starts.
    pos: u64,
    end: u64,
}

impl PieceLines {
    /// Calls `line` with each line of the piece in order, without its newline. Lines
    /// are handed out of the read buffer where they lie whole (a line across two
    /// buffers is copied); a read error ends the piece.
    pub(crate) fn each(&mut self, mut line: impl FnMut(&[u8])) -> io::Result<()> {
        // A line begun in an earlier buffer.
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                // The last line, without a newline.
                if !carry.is_empty() {
                    line(&carry);
                }
                return Ok(());
            }
            let mut at = 0;
            let mut past_end = false;
            while let Some(k) = memchr::memchr(b'\n', &buf[at..]) {
                if carry.is_empty() {
                    if self.pos >= self.end {
                        past_end = true;
                        break;
                    }
                    line(&buf[at..at + k]);
                } else {
                    carry.extend_from_slice(&buf[at..at + k]);
                    line(&carry);
                    carry.clear();
                }
                self.pos += (k + 1) as u64;
                at += k + 1;
            }
            if !past_end && at < buf.len() {
                if carry.is_empty() && self.pos >= self.end {
                    past_end = true;
                } else {
                    carry.extend_from_slice(&buf[at..]);
                    self.pos += (buf.len() - at) as u64;
                    at = buf.len();
                }
            }
            self.reader.consume(at);
            if past_end {
                return Ok(());
            }
        }
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

    /// The lines of `piece` of `input`.
    fn lines_of(input: &Input, piece: &Piece) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        piece
            .open(input, Arc::default())
            .unwrap()
            .each(|l| out.push(l.to_vec()))
            .unwrap();
        out
    }

    #[test]
    fn cut_anywhere_the_pieces_of_a_file_hold_each_of_its_lines_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.log");
        let long = "x".repeat(40);
        let text = format!("a\n\nbb\r\nccc\n{long}\n\n\nd\nlast without a newline");
        std::fs::write(&path, &text).unwrap();
        let input = Input::File(path);
        let whole: Vec<Vec<u8>> = text
            .split_inclusive('\n')
            .map(|l| l.trim_end_matches('\n').as_bytes().to_vec())
            .collect();
        assert_eq!(
            lines_of(
                &input,
                &Piece {
                    input: 0,
                    range: None
                }
            ),
            whole
        );
        let len = text.len() as u64;
        for step in 1..=len + 1 {
            let cuts: Vec<u64> = (0..len.div_ceil(step)).map(|k| k * step).collect();
            let mut got = Vec::new();
            for (k, &start) in cuts.iter().enumerate() {
                let end = cuts.get(k + 1).copied().unwrap_or(u64::MAX);
                got.extend(lines_of(
                    &input,
                    &Piece {
                        input: 0,
                        range: Some(start..end),
                    },
                ));
            }
            assert_eq!(got, whole, "cut every {step} bytes");
        }
    }

    #[test]
    fn only_a_plain_file_larger_than_its_share_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, bytes: Vec<u8>| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            Input::File(p)
        };
        let line = b"{\"ts\":\"2026-11-26T01:02:03Z\"}\n";
        let big_len = 3 * MIN_PIECE + 100;
        let big: Vec<u8> = line
            .iter()
            .copied()
            .cycle()
            .take(big_len as usize)
            .collect();
        let mut gz = big.clone();
        gz[..2].copy_from_slice(&[0x1f, 0x8b]);
        let inputs = [
            file("big.log", big),
            file("small.log", line.to_vec()),
            file("big.log.1.gz", gz),
            Input::Stdin,
        ];
        let ranges = |jobs| -> Vec<(usize, Option<Range<u64>>)> {
            pieces(&inputs, jobs)
                .into_iter()
                .map(|p| (p.input, p.range))
                .collect()
        };
        assert_eq!(
            ranges(1),
            [(0, None), (1, None), (2, None), (3, None)],
            "one thread reads each input whole"
        );
        // Three threads: the plain bytes are big.log's and small.log's; a third each.
        let third = (big_len + line.len() as u64).div_ceil(3);
        let parts = big_len.div_ceil(third);
        let step = big_len.div_ceil(parts);
        assert_eq!(parts, 3, "{third}");
        let mut want: Vec<(usize, Option<Range<u64>>)> = (0..parts)
            .map(|k| {
                (
                    0,
                    Some(
                        k * step..if k + 1 == parts {
                            u64::MAX
                        } else {
                            (k + 1) * step
                        },
                    ),
                )
            })
            .collect();
        want.extend([(1, None), (2, None), (3, None)]);
        assert_eq!(ranges(3), want);
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
