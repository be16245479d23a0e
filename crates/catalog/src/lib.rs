//! The Windows endpoint catalog: which DNS names Windows talks to, grouped by *area*.
//!
//! A [`Catalog`] is what winsink knows about Windows. It is produced from Microsoft's
//! "Manage connection endpoints" pages by the importer and shipped as TOML under
//! `policies/`.
#![warn(missing_docs)]

mod model;

pub use model::{Area, Catalog, CatalogError, Endpoint, Source};
