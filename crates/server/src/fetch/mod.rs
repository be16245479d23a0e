//! Lists by URL: downloading them into the cache folder, and keeping them current.
//!
//! The policy reads a URL list from its cached copy and knows nothing of HTTP (see
//! `winsink_policy`'s `url_list` module); this module is the only one that downloads.
//! [`Fetcher::fetch`] makes one conditional request (`If-None-Match` with the kept
//! `ETag`, `If-Modified-Since` with the kept `Last-Modified`) and:
//!
//! - on `304 Not Modified` notes that the copy is current, and downloads nothing;
//! - on `200` reads the body as it arrives, refusing it as soon as it passes
//!   `[url_lists] max_size_mib` (a `Content-Length` above it is refused before reading),
//!   decodes gzip (`Content-Encoding: gzip`, or a body that is a gzip file, as `.gz` lists
//!   are), checks the text with the rules a list file is loaded with (no valid entry, or
//!   more malformed lines than valid ones, is a failed download unless the list says
//!   `allow_empty = true`), and saves it atomically beside its validators (`NAME.meta.json`);
//! - on anything else (an HTTP error, a connection refused, a timeout, a body that breaks
//!   off before its announced length) fails, and the previous copy stays.
//!
//! [`refresh()`] runs the downloads in the daemon: each list every `refresh`, a failed one
//! again within [`RETRY`], and asks for a reload when a copy changed, so that a new
//! download is applied, logged and counted exactly as an edited list file is.
//!
//! One [`reqwest::Client`] is kept for the process (connections and TLS sessions are
//! reused), with rustls on the `ring` provider and the system's root certificates.

mod cache;
mod refresh;

use std::io::{self, Write as _};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{
    HeaderMap, CONTENT_LENGTH, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use reqwest::StatusCode;
use winsink_policy::list::ListCounts;
use winsink_policy::{Downloads, UrlList};

pub use cache::{age, CachedCopy};
pub use refresh::{refresh, RETRY};

use cache::Meta;

/// How long connecting to a list's server may take (the whole download is bounded by
/// `[url_lists] timeout`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What one download did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// The server answered `304 Not Modified`: the cached copy is current.
    NotModified,
    /// The server sent the list again, and it is the cached copy byte for byte.
    Unchanged {
        /// Its size.
        bytes: usize,
    },
    /// A new copy was saved: a reload applies it.
    Saved {
        /// Its size (after gzip decoding).
        bytes: usize,
        /// Its entries, as the list's format reads them.
        counts: ListCounts,
    },
}

/// Why a download was refused; the previous copy stays in every case.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The HTTP client could not be set up (no TLS roots, ...).
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// No response: the connection was refused, timed out, TLS failed, ...
    #[error("{0}")]
    Request(String),
    /// The server answered with an error status.
    #[error("HTTP {0}")]
    Status(StatusCode),
    /// The body broke off (before its announced length, or mid-chunk) or timed out.
    #[error("the download broke off after {received} bytes: {cause}")]
    Body {
        /// Bytes received before it did.
        received: usize,
        /// Why.
        cause: String,
    },
    /// The list is larger than `[url_lists] max_size_mib`.
    #[error("larger than the {} MiB cap ([url_lists] max_size_mib)", limit >> 20)]
    TooLarge {
        /// The cap, in bytes.
        limit: u64,
    },
    /// A gzip body that does not decode.
    #[error("not valid gzip: {0}")]
    Gzip(io::Error),
    /// The text looks like a failed download (an error page, an empty file).
    #[error(
        "{} valid and {} malformed lines: not a list (an empty or mostly malformed download \
         is refused; `allow_empty = true` on the list accepts it)",
        counts.valid,
        counts.malformed
    )]
    Suspect {
        /// What it held.
        counts: ListCounts,
    },
    /// The copy cannot be written.
    #[error("cannot save it in {}: {source}", path.display())]
    Save {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// The kept HTTP client that downloads lists.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
}

impl Fetcher {
    /// A client with winsink's user agent, [`CONNECT_TIMEOUT`], gzip, and the system's
    /// root certificates.
    pub fn new() -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("winsink/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| FetchError::Client(chain(&e)))?;
        Ok(Self { client })
    }

    /// A GET of `list` that asks for the body only if it changed since the copy `meta`
    /// describes (If-None-Match, If-Modified-Since).
    fn conditional_get(
        &self,
        list: &UrlList,
        meta: Option<&Meta>,
        d: &Downloads,
    ) -> reqwest::RequestBuilder {
        let mut request = self.client.get(&list.url).timeout(d.timeout);
        if let Some(m) = meta {
            if let Some(etag) = &m.etag {
                request = request.header(IF_NONE_MATCH, etag);
            }
            if let Some(date) = &m.last_modified {
                request = request.header(IF_MODIFIED_SINCE, date);
            }
        }
        request
    }

    /// Downloads `list` into its cache file if the server has a new copy (see the module
    /// docs). The previous copy is kept on every error.
    pub async fn fetch(&self, list: &UrlList, d: &Downloads) -> Result<Fetched, FetchError> {
        let have_copy = list.cache_file.is_file();
        let meta = have_copy.then(|| cache::read_meta(list)).flatten();
        let mut response = self
            .conditional_get(list, meta.as_ref(), d)
            .send()
            .await
            .map_err(|e| FetchError::Request(chain(&e.without_url())))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED && have_copy {
            let meta = Meta {
                checked: Some(cache::now_secs()),
                ..meta.unwrap_or_else(|| Meta {
                    url: list.url.clone(),
                    ..Meta::default()
                })
            };
            // The copy is current whether or not the note of it can be written.
            let _ = cache::write_meta(list, &meta);
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            return Err(FetchError::Status(status));
        }
        let validators = Meta {
            url: list.url.clone(),
            etag: header(response.headers(), ETAG),
            last_modified: header(response.headers(), LAST_MODIFIED),
            fetched: None,
            checked: None,
        };
        let bytes = read_capped(&mut response, d.max_bytes).await?;
        let format = list.format;
        // Counting a million lines takes a while: not on the runtime's threads.
        let (bytes, counts) =
            tokio::task::spawn_blocking(move || (ListCounts::of(&bytes, format), bytes))
                .await
                .map(|(counts, bytes)| (bytes, counts))
                .map_err(|e| FetchError::Request(format!("the list check failed: {e}")))?;
        if !list.allow_empty && counts.is_suspect() {
            return Err(FetchError::Suspect { counts });
        }
        let now = Some(cache::now_secs());
        let previous = have_copy
            .then(|| std::fs::read(&list.cache_file).ok())
            .flatten();
        let unchanged = previous.as_deref() == Some(&bytes[..]);
        if !unchanged {
            cache::write_atomic(&list.cache_file, &bytes).map_err(|source| FetchError::Save {
                path: list.cache_file.clone(),
                source,
            })?;
        }
        let meta = Meta {
            fetched: if unchanged {
                meta.and_then(|m| m.fetched).or(now)
            } else {
                now
            },
            checked: now,
            ..validators
        };
        if let Err(source) = cache::write_meta(list, &meta) {
            if !unchanged {
                return Err(FetchError::Save {
                    path: cache::meta_path(&list.cache_file),
                    source,
                });
            }
        }
        Ok(if unchanged {
            Fetched::Unchanged { bytes: bytes.len() }
        } else {
            Fetched::Saved {
                bytes: bytes.len(),
                counts,
            }
        })
    }
}

/// The body of `response`, decoded, refused as soon as it passes `max_bytes` (announced
/// or streamed).
async fn read_capped(
    response: &mut reqwest::Response,
    max_bytes: u64,
) -> Result<Vec<u8>, FetchError> {
    // reqwest drops Content-Length when it decodes a Content-Encoding itself.
    let announced = header(response.headers(), CONTENT_LENGTH).and_then(|l| l.parse().ok());
    if announced.is_some_and(|len: u64| len > max_bytes) {
        return Err(FetchError::TooLarge { limit: max_bytes });
    }
    let mut body = Body::new(max_bytes);
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => body.push(&chunk)?,
            Ok(None) => break,
            Err(e) => {
                return Err(FetchError::Body {
                    received: body.received,
                    cause: chain(&e.without_url()),
                })
            }
        }
    }
    body.finish()
}

/// A shared [`Fetcher`], for the refresh task and the commands.
pub type SharedFetcher = Arc<Fetcher>;

fn header(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// An error with its causes, `a: b: c`, each said once (reqwest's and hyper's errors
/// repeat their source in their own text at times).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// A body being received: at most `limit` bytes, as sent and as decoded, gunzipped when
/// it starts with gzip's magic bytes (a list's text never does).
struct Body {
    limit: u64,
    received: usize,
    state: BodyState,
}

enum BodyState {
    /// Less than two bytes received: what they are is not known yet.
    Start(Vec<u8>),
    Plain(Vec<u8>),
    Gzip(Box<flate2::write::GzDecoder<Capped>>),
}

impl Body {
    fn new(limit: u64) -> Self {
        Self {
            limit,
            received: 0,
            state: BodyState::Start(Vec::new()),
        }
    }

    fn push(&mut self, chunk: &[u8]) -> Result<(), FetchError> {
        self.received += chunk.len();
        if self.received as u64 > self.limit {
            return Err(FetchError::TooLarge { limit: self.limit });
        }
        if let BodyState::Start(head) = &mut self.state {
            // Two bytes tell gzip from text; a chunk may bring fewer.
            head.extend_from_slice(chunk);
            if head.len() < 2 {
                return Ok(());
            }
            let head = std::mem::take(head);
            if head.starts_with(&[0x1f, 0x8b]) {
                self.state = BodyState::Gzip(Box::new(flate2::write::GzDecoder::new(Capped {
                    out: Vec::new(),
                    limit: self.limit,
                    over: false,
                })));
                return self.write(&head);
            }
            self.state = BodyState::Plain(head);
            return Ok(());
        }
        self.write(chunk)
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), FetchError> {
        match &mut self.state {
            BodyState::Start(head) => {
                head.extend_from_slice(chunk);
                Ok(())
            }
            BodyState::Plain(out) => {
                out.extend_from_slice(chunk);
                Ok(())
            }
            BodyState::Gzip(gz) => match gz.write_all(chunk) {
                Ok(()) => Ok(()),
                Err(_) if gz.get_ref().over => Err(FetchError::TooLarge { limit: self.limit }),
                Err(e) => Err(FetchError::Gzip(e)),
            },
        }
    }

    fn finish(self) -> Result<Vec<u8>, FetchError> {
        match self.state {
            BodyState::Start(head) => Ok(head),
            BodyState::Plain(out) => Ok(out),
            BodyState::Gzip(gz) => match gz.finish() {
                Ok(capped) => Ok(capped.out),
                Err(e) => Err(FetchError::Gzip(e)),
            },
        }
    }
}

/// A `Vec` that refuses to grow past `limit` (a gzip bomb stops at the cap).
struct Capped {
    out: Vec<u8>,
    limit: u64,
    over: bool,
}

impl io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if (self.out.len() + buf.len()) as u64 > self.limit {
            self.over = true;
            return Err(io::Error::other("over the size cap"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    fn collect(chunks: &[&[u8]], limit: u64) -> Result<Vec<u8>, FetchError> {
        let mut body = Body::new(limit);
        for c in chunks {
            body.push(c)?;
        }
        body.finish()
    }

    #[test]
    fn a_plain_body_is_kept_as_sent() {
        assert_eq!(
            collect(&[b"a.example\n", b"b.example\n"], 100).unwrap(),
            b"a.example\nb.example\n"
        );
        assert_eq!(collect(&[], 100).unwrap(), b"");
    }

    #[test]
    fn a_gzip_body_is_decoded_in_any_chunking() {
        let text = b"0.0.0.0 a.example\n".repeat(100);
        let gz = gzip(&text);
        let (a, b) = gz.split_at(7);
        assert_eq!(collect(&[a, b], 1 << 20).unwrap(), text);
        let one_byte: Vec<&[u8]> = gz.chunks(1).collect();
        assert_eq!(collect(&one_byte, 1 << 20).unwrap(), text);
    }

    #[test]
    fn the_cap_holds_while_receiving_and_while_decoding() {
        let big = vec![b'a'; 2000];
        assert!(matches!(
            collect(&[&big[..1000], &big[1000..]], 1500),
            Err(FetchError::TooLarge { limit: 1500 })
        ));
        // 100 KiB of zeros gzip to a few hundred bytes: the decoded size is what counts.
        let bomb = gzip(&vec![0u8; 100 << 10]);
        assert!(bomb.len() < 1500);
        assert!(matches!(
            collect(&[&bomb], 1500),
            Err(FetchError::TooLarge { limit: 1500 })
        ));
    }

    #[test]
    fn a_truncated_gzip_body_is_an_error() {
        let gz = gzip(&b"0.0.0.0 a.example\n".repeat(100));
        let half = &gz[..gz.len() / 2];
        assert!(matches!(
            collect(&[half], 1 << 20),
            Err(FetchError::Gzip(_))
        ));
    }
}
