//! [`IndexConfig`]: the settings of an [`HnswIndex`](super::HnswIndex), checked before any
//! graph is built.

use super::graph::GraphParams;
use crate::SemanticError;
use std::path::{Path, PathBuf};

/// Settings of an [`HnswIndex`](super::HnswIndex).
///
/// ```
/// use lbgpt_semantic::IndexConfig;
///
/// let config = IndexConfig::new().max_entries(50_000).ef_search(96).directory("/var/cache/lbgpt-semantic");
/// assert_eq!(config.get_max_entries(), 50_000);
/// ```
#[derive(Debug, Clone)]
pub struct IndexConfig {
    pub(super) max_entries: usize,
    pub(super) m: usize,
    pub(super) ef_construction: usize,
    pub(super) ef_search: usize,
    pub(super) graph_threshold: usize,
    pub(super) background_builds: bool,
    pub(super) directory: Option<PathBuf>,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            max_entries: 100_000,
            m: 16,
            ef_construction: 64,
            ef_search: 128,
            graph_threshold: 1024,
            background_builds: true,
            directory: None,
        }
    }
}

impl IndexConfig {
    /// The defaults: at most 100,000 entries, HNSW with `m` 16, `ef_construction` 64,
    /// `ef_search` 128 (recall@1 against exhaustive search 1.000 on 100,000 clustered entries:
    /// `docs/benchmarks-semantic.md`), a graph for scopes of 1,024 entries or more
    /// (smaller scopes are searched exactly), graphs built in the background, kept in memory
    /// only.
    pub fn new() -> Self {
        Self::default()
    }

    /// The most entries kept; beyond it the least recently used 5 % are evicted.
    pub fn max_entries(mut self, max: usize) -> Self {
        self.max_entries = max;
        self
    }

    /// HNSW links per node (2 to 256; default 16).
    pub fn m(mut self, m: usize) -> Self {
        self.m = m;
        self
    }

    /// HNSW candidate list while building (default 64).
    pub fn ef_construction(mut self, ef: usize) -> Self {
        self.ef_construction = ef;
        self
    }

    /// HNSW candidate list while searching (default 128): higher finds the true nearest
    /// neighbour more often, slower.
    pub fn ef_search(mut self, ef: usize) -> Self {
        self.ef_search = ef;
        self
    }

    /// Entries of one scope from which it gets an HNSW graph (default 1,024); below, a
    /// search compares with every entry of the scope (exact, and fast at that size).
    pub fn graph_threshold(mut self, entries: usize) -> Self {
        self.graph_threshold = entries;
        self
    }

    /// Whether graphs are built and rebuilt on a background thread (default true; searches
    /// meanwhile compare exhaustively) or during the insert that needs them.
    pub fn background_builds(mut self, background: bool) -> Self {
        self.background_builds = background;
        self
    }

    /// Where the index is saved ([`HnswIndex::save`](super::HnswIndex::save), and when
    /// dropped with unsaved entries) and loaded from
    /// ([`HnswIndex::open`](super::HnswIndex::open)).
    pub fn directory(mut self, dir: impl Into<PathBuf>) -> Self {
        self.directory = Some(dir.into());
        self
    }

    /// The bound on entries.
    pub fn get_max_entries(&self) -> usize {
        self.max_entries
    }

    /// The directory, if any.
    pub fn get_directory(&self) -> Option<&Path> {
        self.directory.as_deref()
    }

    /// Checks every setting (hnsw_rs exits the process on some invalid ones).
    pub fn validate(&self) -> Result<(), SemanticError> {
        if self.max_entries == 0 {
            return Err(SemanticError::config("max_entries", "must be at least 1"));
        }
        if !(2..=256).contains(&self.m) {
            return Err(SemanticError::config("m", "must be between 2 and 256"));
        }
        if !(1..=4096).contains(&self.ef_construction) {
            return Err(SemanticError::config(
                "ef_construction",
                "must be between 1 and 4096",
            ));
        }
        if !(1..=4096).contains(&self.ef_search) {
            return Err(SemanticError::config(
                "ef_search",
                "must be between 1 and 4096",
            ));
        }
        if self.graph_threshold == 0 {
            return Err(SemanticError::config(
                "graph_threshold",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// The graph parameters.
    pub(super) fn params(&self) -> GraphParams {
        GraphParams {
            m: self.m,
            ef_construction: self.ef_construction,
            ef_search: self.ef_search,
        }
    }
}
