//! The async DNS server: sinkhole, forwarding, cache, query log, reload.
#![warn(missing_docs)]
