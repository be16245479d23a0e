//! Writing a command's output to stdout.

use std::io::Write as _;

/// Writes `text` to stdout. A reader that went away (`winsink check | head`) is not an
/// error: the command did its work, and `println!` would panic there.
pub(crate) fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
