//! Whole-binary integration tests: the real `winsink` binary, real files, real DNS.
//!
//! One test binary (this file) with one module per area; shared helpers in `support`.
//! Each helper owns its module line below.

mod catalog;
mod dashboard;
mod encrypted_listen;
mod encrypted_upstream;
mod faults;
mod lists_url;
mod metrics;
mod policy;
mod querylog;
mod reload;
mod report;
mod server;
mod service;
mod support;
