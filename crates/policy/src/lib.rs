//! Config files → an immutable compiled policy → a decision per query.
#![warn(missing_docs)]

pub mod settings;
