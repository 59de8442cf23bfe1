//! [`HnswIndex`]: the in-process vector index (hnsw_rs), partitioned by scope, bounded, saved
//! to a directory.

use super::config::IndexConfig;
use super::graph::Graph;
use super::persist::{self, EntryToSave, GraphFiles, Saved};
use super::{Entry, EntryId, Neighbour, Record, VectorIndex};
use crate::embed::dot;
use crate::{Scope, SemanticError};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

/// What [`HnswIndex::open`] found in its directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadSummary {
    /// The save's format version (1: entries only; 2: entries and graphs).
    pub format_version: u32,
    /// Entries loaded.
    pub entries: usize,
    /// Scopes whose saved HNSW graph was loaded as it was.
    pub graphs_loaded: usize,
    /// Scopes whose graph is being built (or rebuilt) from their entries: no graph was saved
    /// for them (a version 1 save), or the saved one was unusable (see `rejected_graphs`).
    pub graphs_rebuilt: usize,
    /// Why each saved graph that was not loaded was not (damaged files, other parameters,
    /// another machine's byte layout, entries that do not fit it).
    pub rejected_graphs: Vec<String>,
}

/// An in-process vector index: one partition per [`Scope`], searched exactly while small and
/// through an HNSW graph (hnsw_rs, dot product on normalised vectors) once it holds
/// [`graph_threshold`](IndexConfig::graph_threshold) entries.
///
/// - **Bounded**: beyond [`max_entries`](IndexConfig::max_entries) the least recently used
///   entries (stored or served longest ago) are evicted. hnsw_rs cannot delete, so an evicted
///   entry becomes a tombstone that searches skip; a partition that is more than half
///   tombstones is rebuilt without them.
/// - **Concurrent**: searches share a read lock; an insert holds the write lock only to add
///   the vector (and, for a partition with a graph, one graph insertion); graphs are built
///   and rebuilt outside the lock, searches meanwhile comparing exhaustively.
/// - **Persistent** with a [`directory`](IndexConfig::directory): [`save`](Self::save) writes
///   entries (scope, embedded text, key, answer), vectors and the HNSW graphs atomically (a
///   crash leaves the previous save); [`open`](Self::open) loads them, graphs included. A
///   graph whose files are damaged, that was built with other `m` / `ef_construction`, or on
///   a machine of another byte order or word size, is rebuilt from the entries instead, as
///   are the graphs of a save of format version 1 (which held none); see
///   [`load_summary`](Self::load_summary). Unsaved entries are saved when the last handle is
///   dropped.
///
/// Cloning is cheap: clones share one index.
#[derive(Clone)]
pub struct HnswIndex {
    shared: Arc<Shared>,
}

struct Shared {
    config: IndexConfig,
    dimensions: usize,
    embedder_id: String,
    state: RwLock<State>,
    next_id: AtomicU64,
    clock: AtomicU64,
    dirty: AtomicBool,
    builds: AtomicUsize,
    /// One save at a time (they share `DIR/next/`).
    save_lock: Mutex<()>,
    loaded: OnceLock<LoadSummary>,
}

#[derive(Default)]
struct State {
    entries: HashMap<EntryId, Stored>,
    partitions: HashMap<Scope, Partition>,
}

struct Stored {
    entry: Arc<Entry>,
    slot: usize,
    last_used: AtomicU64,
}

#[derive(Default)]
struct Partition {
    /// Slot → entry; `None` is a tombstone.
    slots: Vec<Option<EntryId>>,
    /// The slots' vectors, one after another.
    vectors: Vec<f32>,
    live: usize,
    graph: Option<Arc<Graph>>,
    /// Slots `[0, covered)` are in the graph; later ones are searched exhaustively.
    covered: usize,
    building: bool,
}

impl Partition {
    fn vector(&self, slot: usize, dimensions: usize) -> &[f32] {
        &self.vectors[slot * dimensions..(slot + 1) * dimensions]
    }

    fn dead(&self) -> usize {
        self.slots.len() - self.live
    }
}

impl fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HnswIndex")
            .field("entries", &self.len())
            .field("dimensions", &self.shared.dimensions)
            .field("embedder", &self.shared.embedder_id)
            .field("config", &self.shared.config)
            .finish()
    }
}

impl HnswIndex {
    /// An empty index for vectors of `dimensions` made by the embedder `embedder_id` (saved
    /// with the entries: a saved index is only loaded for the same embedder). `dimensions`
    /// is from 1 to 65,536, else a [`SemanticError::Config`].
    pub fn new(
        config: IndexConfig,
        dimensions: usize,
        embedder_id: impl Into<String>,
    ) -> Result<Self, SemanticError> {
        config.validate()?;
        if dimensions == 0 {
            return Err(SemanticError::config("dimensions", "must be at least 1"));
        }
        if dimensions > persist::MAX_DIMENSIONS {
            // A save must load back, and a load refuses more (a damaged manifest).
            return Err(SemanticError::config(
                "dimensions",
                format!("must be at most {}", persist::MAX_DIMENSIONS),
            ));
        }
        Ok(HnswIndex {
            shared: Arc::new(Shared {
                config,
                dimensions,
                embedder_id: embedder_id.into(),
                state: RwLock::new(State::default()),
                next_id: AtomicU64::new(1),
                clock: AtomicU64::new(1),
                dirty: AtomicBool::new(false),
                builds: AtomicUsize::new(0),
                save_lock: Mutex::new(()),
                loaded: OnceLock::new(),
            }),
        })
    }

    /// An index with `config`'s directory: loads what was saved there (when the directory
    /// holds a save), else starts empty. A save by another embedder or of another dimension
    /// is an error ([`SemanticError::Index`]), not silently discarded; a save of a format
    /// version this crate cannot read is a [`SemanticError::IndexVersion`]. Saved graphs are
    /// loaded when their files check out, else rebuilt ([`load_summary`](Self::load_summary)
    /// says which).
    pub fn open(
        config: IndexConfig,
        dimensions: usize,
        embedder_id: impl Into<String>,
    ) -> Result<Self, SemanticError> {
        let index = Self::new(config, dimensions, embedder_id)?;
        let Some(dir) = index.shared.config.directory.clone() else {
            return Ok(index);
        };
        if let Some(saved) = persist::load(&dir)? {
            if saved.embedder_id != index.shared.embedder_id || saved.dimensions != dimensions {
                return Err(SemanticError::Index(format!(
                    "the index saved in {} was made by embedder `{}` ({} dimensions), not `{}` ({} dimensions); use another directory or delete it",
                    dir.display(),
                    saved.embedder_id,
                    saved.dimensions,
                    index.shared.embedder_id,
                    dimensions
                )));
            }
            index
                .shared
                .next_id
                .store(saved.next_id.max(1), Ordering::Relaxed);
            let summary = index.insert_loaded(saved)?;
            for reason in &summary.rejected_graphs {
                tracing::warn!(%reason, "semantic index: a saved graph is rebuilt instead of loaded");
            }
            let _ = index.shared.loaded.set(summary);
            index.shared.dirty.store(false, Ordering::Relaxed);
        }
        Ok(index)
    }

    /// What [`open`](Self::open) loaded; `None` when it found no save (or the index was made
    /// with [`new`](Self::new)).
    pub fn load_summary(&self) -> Option<&LoadSummary> {
        self.shared.loaded.get()
    }

    /// The vectors' dimension.
    pub fn dimensions(&self) -> usize {
        self.shared.dimensions
    }

    /// The configuration.
    pub fn config(&self) -> &IndexConfig {
        &self.shared.config
    }

    /// Entries stored.
    pub fn len(&self) -> usize {
        self.shared.read().entries.len()
    }

    /// Whether no entry is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Scopes with at least one entry.
    pub fn scopes(&self) -> usize {
        self.shared.read().partitions.len()
    }

    /// An entry by id.
    pub fn get(&self, id: EntryId) -> Option<Arc<Entry>> {
        self.shared
            .read()
            .entries
            .get(&id)
            .map(|stored| Arc::clone(&stored.entry))
    }

    /// Adds an entry (see [`VectorIndex::insert`]).
    pub fn insert_now(
        &self,
        scope: Scope,
        mut vector: Vec<f32>,
        record: Record,
    ) -> Result<EntryId, SemanticError> {
        self.check_vector(&vector)?;
        crate::embed::normalise(&mut vector);
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let build = {
            let mut state = self.shared.write();
            self.push(&mut state, id, scope, &vector, record);
            self.evict_if_full(&mut state)
        };
        self.shared.dirty.store(true, Ordering::Relaxed);
        self.run_builds(build);
        Ok(id)
    }

    /// Adds many entries at once (faster than one by one: graphs are built in parallel once).
    pub fn insert_batch(
        &self,
        items: Vec<(Scope, Vec<f32>, Record)>,
    ) -> Result<Vec<EntryId>, SemanticError> {
        for (_, vector, _) in &items {
            self.check_vector(vector)?;
        }
        let mut ids = Vec::with_capacity(items.len());
        let builds = {
            let mut state = self.shared.write();
            for (scope, mut vector, record) in items {
                crate::embed::normalise(&mut vector);
                let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
                self.push_without_graph(&mut state, id, scope, &vector, record);
                ids.push(id);
            }
            let mut builds = self.evict_if_full(&mut state);
            builds.extend(self.due_builds(&mut state));
            builds
        };
        self.shared.dirty.store(true, Ordering::Relaxed);
        self.run_builds(builds);
        Ok(ids)
    }

    /// Adds a save's entries: those of scopes with a usable saved graph into their saved slots
    /// beside the loaded graph, the others as new entries (their graphs built as for new ones).
    fn insert_loaded(&self, saved: Saved) -> Result<LoadSummary, SemanticError> {
        let dimensions = self.shared.dimensions;
        let Saved {
            snapshot,
            version,
            entries,
            graphs: graph_files,
            ..
        } = saved;
        for (entry, vector, _) in &entries {
            if vector.len() != dimensions {
                return Err(SemanticError::Index(format!(
                    "saved entry {} has {} dimensions",
                    entry.id,
                    vector.len()
                )));
            }
        }
        let mut summary = LoadSummary {
            format_version: version,
            entries: entries.len(),
            ..LoadSummary::default()
        };
        let mut graphs: HashMap<Scope, (GraphFiles, Graph)> = HashMap::new();
        for files in graph_files {
            match self.load_graph(&snapshot, &files) {
                Ok((scope, graph)) if !graphs.contains_key(&scope) => {
                    graphs.insert(scope, (files, graph));
                }
                Ok(_) => summary.rejected_graphs.push(format!(
                    "{}: a second graph of scope {}",
                    files.name, files.scope
                )),
                Err(reason) => summary.rejected_graphs.push(reason),
            }
        }
        let mut in_graphs: HashMap<Scope, Vec<LoadedEntry>> = HashMap::new();
        let mut others = Vec::new();
        for item in entries {
            match in_graphs.get_mut(&item.0.scope) {
                Some(items) => items.push(item),
                None if graphs.contains_key(&item.0.scope) => {
                    in_graphs.insert(item.0.scope, vec![item]);
                }
                None => others.push(item),
            }
        }
        let builds = {
            let mut state = self.shared.write();
            for (scope, (files, graph)) in graphs {
                let items = in_graphs.remove(&scope).unwrap_or_default();
                match lay_out(&files, items, dimensions) {
                    Ok((partition, items)) => {
                        if partition.live == 0 {
                            continue;
                        }
                        let mut partition = partition;
                        partition.graph = Some(Arc::new(graph));
                        for (entry, slot) in items {
                            self.add_loaded(&mut state, entry, slot)?;
                        }
                        state.partitions.insert(scope, partition);
                        summary.graphs_loaded += 1;
                    }
                    Err((reason, items)) => {
                        summary.rejected_graphs.push(reason);
                        others.extend(items);
                    }
                }
            }
            for (entry, vector, _) in others {
                let Entry { id, scope, record } = entry;
                if state.entries.contains_key(&id) {
                    return Err(SemanticError::Index(format!(
                        "{}: entry {id} is saved twice",
                        snapshot.display()
                    )));
                }
                self.shared.next_id.fetch_max(id + 1, Ordering::Relaxed);
                self.push_without_graph(&mut state, id, scope, &vector, record);
            }
            let mut builds = self.evict_if_full(&mut state);
            builds.extend(self.due_builds(&mut state));
            builds
        };
        summary.graphs_rebuilt = builds.len();
        self.run_builds(builds);
        Ok(summary)
    }

    /// Loads a saved graph whose files check out and that fits this index; why not otherwise.
    fn load_graph(&self, snapshot: &Path, files: &GraphFiles) -> Result<(Scope, Graph), String> {
        let name = &files.name;
        let scope =
            Scope::from_hex(&files.scope).ok_or_else(|| format!("{name}: a malformed scope"))?;
        let layout = persist::graph_layout();
        if files.layout != layout {
            return Err(format!(
                "{name} was written as {}; this machine reads {layout}",
                files.layout
            ));
        }
        let config = &self.shared.config;
        if (files.m, files.ef_construction) != (config.m, config.ef_construction) {
            return Err(format!(
                "{name} was built with m {} and ef_construction {}; the index is configured with {} and {}",
                files.m, files.ef_construction, config.m, config.ef_construction
            ));
        }
        if files.covered == 0 || files.covered > files.slots {
            return Err(format!(
                "{name} covers {} of {} slots",
                files.covered, files.slots
            ));
        }
        persist::check_graph(snapshot, files).map_err(|reason| format!("{name}: {reason}"))?;
        let graph =
            Graph::load(config.params(), snapshot, name).map_err(|e| format!("{name}: {e}"))?;
        if graph.points() != files.covered {
            return Err(format!(
                "{name} holds {} points where {} were saved",
                graph.points(),
                files.covered
            ));
        }
        Ok((scope, graph))
    }

    /// Records a loaded entry that already has its slot in its partition.
    fn add_loaded(
        &self,
        state: &mut State,
        entry: Entry,
        slot: usize,
    ) -> Result<(), SemanticError> {
        if state.entries.contains_key(&entry.id) {
            return Err(SemanticError::Index(format!(
                "entry {} is saved twice",
                entry.id
            )));
        }
        self.shared
            .next_id
            .fetch_max(entry.id + 1, Ordering::Relaxed);
        let now = self.shared.clock.fetch_add(1, Ordering::Relaxed);
        state.entries.insert(
            entry.id,
            Stored {
                entry: Arc::new(entry),
                slot,
                last_used: AtomicU64::new(now),
            },
        );
        Ok(())
    }

    /// Nearest entries of `scope` (see [`VectorIndex::search`]).
    pub fn search_now(&self, scope: &Scope, vector: &[f32], k: usize) -> Vec<Neighbour> {
        if k == 0 || vector.len() != self.shared.dimensions {
            return Vec::new();
        }
        let dimensions = self.shared.dimensions;
        let state = self.shared.read();
        let Some(partition) = state.partitions.get(scope) else {
            return Vec::new();
        };
        let mut best: Vec<(usize, f32)> = Vec::with_capacity(k + 1);
        let exhaustive_from = match &partition.graph {
            Some(graph) => {
                let alive = |slot: usize| partition.slots.get(slot).is_some_and(Option::is_some);
                best = graph.search(vector, k, partition.dead() > 0, &alive);
                partition.covered
            }
            None => 0,
        };
        for slot in exhaustive_from..partition.slots.len() {
            if partition.slots[slot].is_none() {
                continue;
            }
            let score = dot(vector, partition.vector(slot, dimensions));
            keep_best(&mut best, (slot, score), k);
        }
        best.sort_by(|a, b| b.1.total_cmp(&a.1));
        let now = self.shared.clock.fetch_add(1, Ordering::Relaxed);
        best.into_iter()
            .filter_map(|(slot, score)| {
                let id = partition.slots.get(slot).copied().flatten()?;
                let stored = state.entries.get(&id)?;
                stored.last_used.store(now, Ordering::Relaxed);
                Some(Neighbour {
                    entry: Arc::clone(&stored.entry),
                    score: score.min(1.0),
                })
            })
            .take(k)
            .collect()
    }

    /// Removes an entry; whether it was there.
    pub fn remove_now(&self, id: EntryId) -> bool {
        let (removed, builds) = {
            let mut state = self.shared.write();
            let removed = self.tombstone(&mut state, id);
            (removed, self.due_builds(&mut state))
        };
        if removed {
            self.shared.dirty.store(true, Ordering::Relaxed);
        }
        self.run_builds(builds);
        removed
    }

    /// Writes the index to its directory (see [`IndexConfig::directory`]); an error when it
    /// has none.
    pub fn save(&self) -> Result<(), SemanticError> {
        let Some(dir) = self.shared.config.directory.clone() else {
            return Err(SemanticError::config(
                "directory",
                "the index has no directory to save to",
            ));
        };
        self.shared.save_to(&dir)
    }

    /// Waits until no graph is being built in the background (for tests and benchmarks), at
    /// most `limit`; whether none is.
    pub fn wait_for_builds(&self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while self.shared.builds.load(Ordering::Acquire) > 0 {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    /// Scopes searched through a graph (the others are searched exhaustively).
    pub fn graphs(&self) -> usize {
        self.shared
            .read()
            .partitions
            .values()
            .filter(|p| p.graph.is_some())
            .count()
    }

    fn check_vector(&self, vector: &[f32]) -> Result<(), SemanticError> {
        if vector.len() != self.shared.dimensions {
            return Err(SemanticError::Index(format!(
                "a vector of dimension {} in an index of dimension {}",
                vector.len(),
                self.shared.dimensions
            )));
        }
        if vector.iter().any(|x| !x.is_finite()) {
            return Err(SemanticError::Index(
                "a vector with a NaN or infinite value".into(),
            ));
        }
        Ok(())
    }

    /// Adds an entry to its partition (and to the partition's graph, if it has one).
    fn push(&self, state: &mut State, id: EntryId, scope: Scope, vector: &[f32], record: Record) {
        let slot = self.push_without_graph(state, id, scope, vector, record);
        if let Some(partition) = state.partitions.get_mut(&scope) {
            if let Some(graph) = &partition.graph {
                // A graph being saved takes no new points; they are added after the save.
                if partition.covered == slot && !graph.is_frozen() {
                    graph.insert(vector, slot);
                    partition.covered = slot + 1;
                }
            }
        }
    }

    fn push_without_graph(
        &self,
        state: &mut State,
        id: EntryId,
        scope: Scope,
        vector: &[f32],
        record: Record,
    ) -> usize {
        let partition = state.partitions.entry(scope).or_default();
        let slot = partition.slots.len();
        partition.slots.push(Some(id));
        partition.vectors.extend_from_slice(vector);
        partition.live += 1;
        let now = self.shared.clock.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(Entry { id, scope, record });
        state.entries.insert(
            id,
            Stored {
                entry,
                slot,
                last_used: AtomicU64::new(now),
            },
        );
        slot
    }

    /// Evicts the least recently used 5 % when over the bound; the builds that became due.
    fn evict_if_full(&self, state: &mut State) -> Vec<Scope> {
        let max = self.shared.config.max_entries;
        if state.entries.len() > max {
            let excess = state.entries.len() - max;
            let batch = excess.max(max / 20).max(1).min(state.entries.len());
            let mut ages: Vec<(u64, EntryId)> = state
                .entries
                .iter()
                .map(|(id, stored)| (stored.last_used.load(Ordering::Relaxed), *id))
                .collect();
            if batch < ages.len() {
                ages.select_nth_unstable(batch - 1);
            }
            for (_, id) in ages.into_iter().take(batch) {
                self.tombstone(state, id);
            }
        }
        self.due_builds(state)
    }

    fn tombstone(&self, state: &mut State, id: EntryId) -> bool {
        let Some(stored) = state.entries.remove(&id) else {
            return false;
        };
        let scope = stored.entry.scope;
        if let Some(partition) = state.partitions.get_mut(&scope) {
            if let Some(slot) = partition.slots.get_mut(stored.slot) {
                *slot = None;
                partition.live = partition.live.saturating_sub(1);
            }
            if partition.live == 0 && !partition.building {
                state.partitions.remove(&scope);
            }
        }
        true
    }

    /// Compacts small partitions in place and returns the scopes whose graph must be built or
    /// rebuilt (marked as building).
    fn due_builds(&self, state: &mut State) -> Vec<Scope> {
        let threshold = self.shared.config.graph_threshold;
        let dimensions = self.shared.dimensions;
        let mut due = Vec::new();
        let State {
            entries,
            partitions,
        } = state;
        for (scope, partition) in partitions.iter_mut() {
            if partition.building {
                continue;
            }
            let mostly_dead = partition.dead() > partition.live && partition.dead() >= 32;
            let wants_graph = partition.graph.is_none() && partition.live >= threshold;
            let stale_graph = partition.graph.is_some() && mostly_dead;
            if wants_graph || stale_graph {
                partition.building = true;
                due.push(*scope);
            } else if mostly_dead {
                compact_flat(partition, entries, dimensions);
            }
        }
        due
    }

    fn run_builds(&self, scopes: Vec<Scope>) {
        for scope in scopes {
            self.shared.builds.fetch_add(1, Ordering::AcqRel);
            if self.shared.config.background_builds {
                let shared = Arc::clone(&self.shared);
                let spawned = std::thread::Builder::new()
                    .name("lbgpt-semantic-index".into())
                    .spawn(move || shared.build_graph(scope));
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "could not start an index build thread; building inline");
                    self.shared.build_graph(scope);
                }
            } else {
                self.shared.build_graph(scope);
            }
        }
    }
}

/// A saved entry: the entry, its vector and its slot in its scope's saved graph, if any.
type LoadedEntry = (Entry, Vec<f32>, Option<usize>);

/// The partition of a scope whose graph was loaded (without the graph yet), with each entry's
/// slot; or why the entries do not fit the graph, with the entries back.
///
/// `files.covered` must already match the loaded graph's points.
#[allow(clippy::type_complexity)]
fn lay_out(
    files: &GraphFiles,
    items: Vec<LoadedEntry>,
    dimensions: usize,
) -> Result<(Partition, Vec<(Entry, usize)>), (String, Vec<LoadedEntry>)> {
    // index.json is not covered by the graph's checksum, so its slot count is trusted only as
    // far as saved data backs it: the graph's `covered` nodes (checked against its files) and
    // past them at most one slot per saved entry of the scope. A larger count is a damaged
    // manifest, and the graph is rebuilt rather than memory sized by it.
    let backed = files.covered.saturating_add(items.len());
    let size = match files.slots.checked_mul(dimensions) {
        Some(size) if files.slots <= backed => size,
        _ => {
            let reason = format!(
                "{}: {} slots, more than its graph's {} nodes and the scope's {} saved entries account for",
                files.name,
                files.slots,
                files.covered,
                items.len()
            );
            return Err((reason, items));
        }
    };
    let mut slots: Vec<Option<EntryId>> = vec![None; files.slots];
    for (entry, _, slot) in &items {
        let fits = slot.is_some_and(|slot| slot < files.slots && slots[slot].is_none());
        match slot {
            Some(slot) if fits => slots[*slot] = Some(entry.id),
            _ => {
                let reason = format!(
                    "{}: entry {} has slot {slot:?}, which its graph of {} slots does not have free",
                    files.name, entry.id, files.slots
                );
                return Err((reason, items));
            }
        }
    }
    let mut vectors = vec![0.0; size];
    let mut placed = Vec::with_capacity(items.len());
    for (entry, vector, slot) in items {
        let slot = slot.unwrap_or_default();
        vectors[slot * dimensions..(slot + 1) * dimensions].copy_from_slice(&vector);
        placed.push((entry, slot));
    }
    let partition = Partition {
        live: placed.len(),
        slots,
        vectors,
        graph: None,
        covered: files.covered,
        building: false,
    };
    Ok((partition, placed))
}

/// Keeps the `k` best (slot, score) pairs in `best` (unsorted beyond that).
fn keep_best(best: &mut Vec<(usize, f32)>, candidate: (usize, f32), k: usize) {
    if best.len() < k {
        best.push(candidate);
        return;
    }
    let (worst, _) = best
        .iter()
        .enumerate()
        .min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
        .map_or((0, 0.0), |(i, c)| (i, c.1));
    if candidate.1 > best[worst].1 {
        best[worst] = candidate;
    }
}

/// Drops a graph-less partition's tombstones, renumbering its slots.
fn compact_flat(
    partition: &mut Partition,
    entries: &mut HashMap<EntryId, Stored>,
    dimensions: usize,
) {
    let mut slots = Vec::with_capacity(partition.live);
    let mut vectors = Vec::with_capacity(partition.live * dimensions);
    for (old, id) in partition.slots.iter().enumerate() {
        let Some(id) = id else { continue };
        if let Some(stored) = entries.get_mut(id) {
            stored.slot = slots.len();
            slots.push(Some(*id));
            vectors.extend_from_slice(partition.vector(old, dimensions));
        }
    }
    partition.live = slots.len();
    partition.slots = slots;
    partition.vectors = vectors;
    partition.covered = 0;
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Builds a compact graph of the partition's live entries outside the lock, then swaps it
    /// in with the entries added meanwhile.
    fn build_graph(&self, scope: Scope) {
        let dimensions = self.dimensions;
        let snapshot: Option<(Vec<EntryId>, Vec<f32>, usize)> = {
            let state = self.read();
            state.partitions.get(&scope).map(|partition| {
                let mut ids = Vec::with_capacity(partition.live);
                let mut vectors = Vec::with_capacity(partition.live * dimensions);
                for (slot, id) in partition.slots.iter().enumerate() {
                    if let Some(id) = id {
                        ids.push(*id);
                        vectors.extend_from_slice(partition.vector(slot, dimensions));
                    }
                }
                (ids, vectors, partition.slots.len())
            })
        };
        if let Some((ids, vectors, seen)) = snapshot {
            let points: Vec<(&[f32], usize)> = vectors.chunks_exact(dimensions).zip(0..).collect();
            let graph = Graph::build(self.config.params(), ids.len() * 2, &points);
            drop(points);
            let mut state = self.write();
            let State {
                entries,
                partitions,
            } = &mut *state;
            if let Some(partition) = partitions.get_mut(&scope) {
                let mut slots: Vec<Option<EntryId>> = Vec::with_capacity(partition.live);
                let mut new_vectors = vectors;
                let mut live = 0;
                for id in ids {
                    // Removed while the graph was built: a tombstone in the new layout.
                    let alive = entries.get_mut(&id).filter(|s| s.entry.scope == scope);
                    match alive {
                        Some(stored) => {
                            stored.slot = slots.len();
                            slots.push(Some(id));
                            live += 1;
                        }
                        None => slots.push(None),
                    }
                }
                for old in seen..partition.slots.len() {
                    let Some(id) = partition.slots[old] else {
                        continue;
                    };
                    let Some(stored) = entries.get_mut(&id) else {
                        continue;
                    };
                    let vector = partition.vector(old, dimensions);
                    let slot = slots.len();
                    graph.insert(vector, slot);
                    new_vectors.extend_from_slice(vector);
                    stored.slot = slot;
                    slots.push(Some(id));
                    live += 1;
                }
                partition.covered = slots.len();
                partition.slots = slots;
                partition.vectors = new_vectors;
                partition.live = live;
                partition.graph = Some(Arc::new(graph));
                partition.building = false;
                if partition.live == 0 {
                    partitions.remove(&scope);
                }
            }
        }
        self.builds.fetch_sub(1, Ordering::AcqRel);
    }

    /// Saves entries, vectors and graphs. Entries, vectors and each graph's slots are taken
    /// under the read lock as one consistent picture, and the graphs frozen there (new
    /// entries are not added to them, only searched exhaustively); the graphs are written
    /// after the lock is released, then thawed and given the entries added meanwhile.
    fn save_to(&self, dir: &Path) -> Result<(), SemanticError> {
        let _one_save = self
            .save_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let next = persist::prepare(dir)?;
        let mut frozen: Vec<(Scope, Arc<Graph>, usize, usize)> = Vec::new();
        let (entries, next_id) = {
            let state = self.read();
            let mut entries: Vec<EntryToSave> = Vec::with_capacity(state.entries.len());
            for (scope, partition) in &state.partitions {
                let graph = partition
                    .graph
                    .as_ref()
                    .filter(|g| partition.covered > 0 && g.points() == partition.covered);
                if let Some(graph) = graph {
                    graph.freeze();
                    frozen.push((
                        *scope,
                        Arc::clone(graph),
                        partition.slots.len(),
                        partition.covered,
                    ));
                }
                for (slot, id) in partition.slots.iter().enumerate() {
                    let Some(stored) = id.and_then(|id| state.entries.get(&id)) else {
                        continue;
                    };
                    entries.push((
                        Arc::clone(&stored.entry),
                        partition.vector(slot, self.dimensions).to_vec(),
                        graph.is_some().then_some(slot),
                    ));
                }
            }
            (entries, self.next_id.load(Ordering::Relaxed))
        };
        self.dirty.store(false, Ordering::Relaxed);
        // Nothing returns early until every frozen graph is thawed. A graph that cannot be
        // written is left out of the manifest: its entries' slots are then ignored on load
        // and the graph rebuilt.
        let mut graphs = Vec::with_capacity(frozen.len());
        let mut failure = None;
        for (scope, graph, slots, covered) in &frozen {
            let name = persist::graph_name(graphs.len());
            let written = graph.save(&next, &name).and_then(|()| {
                persist::describe_graph(
                    &next,
                    scope,
                    name,
                    *slots,
                    *covered,
                    self.config.m,
                    self.config.ef_construction,
                )
            });
            match written {
                Ok(files) => graphs.push(files),
                Err(error @ SemanticError::Io { .. }) => {
                    failure.get_or_insert(error);
                }
                Err(error) => {
                    tracing::warn!(%error, "semantic index: a graph could not be saved; it will be rebuilt when the index is loaded");
                }
            }
        }
        self.thaw(&frozen);
        let saved = match failure {
            Some(error) => Err(error),
            None => persist::finish_save(
                dir,
                &next,
                &self.embedder_id,
                self.dimensions,
                next_id,
                &entries,
                graphs,
            ),
        };
        if saved.is_err() {
            self.dirty.store(true, Ordering::Relaxed);
        }
        saved
    }

    /// Lets saved graphs take new points again, first adding those of the entries added to
    /// their partitions during the save (tombstones too: a graph's nodes are its partition's
    /// first `covered` slots).
    fn thaw(&self, frozen: &[(Scope, Arc<Graph>, usize, usize)]) {
        if frozen.is_empty() {
            return;
        }
        let dimensions = self.dimensions;
        let mut state = self.write();
        for (scope, graph, _, _) in frozen {
            if let Some(partition) = state.partitions.get_mut(scope) {
                let current = partition
                    .graph
                    .as_ref()
                    .is_some_and(|g| Arc::ptr_eq(g, graph));
                if current {
                    for slot in partition.covered..partition.slots.len() {
                        graph.insert(partition.vector(slot, dimensions), slot);
                    }
                    partition.covered = partition.slots.len();
                }
            }
            graph.thaw();
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if !self.dirty.load(Ordering::Relaxed) {
            return;
        }
        if let Some(dir) = self.config.directory.clone() {
            if let Err(e) = self.save_to(&dir) {
                tracing::warn!(error = %e, "could not save the semantic index when dropping it");
            }
        }
    }
}

#[async_trait::async_trait]
impl VectorIndex for HnswIndex {
    async fn insert(
        &self,
        scope: Scope,
        vector: Vec<f32>,
        record: Record,
    ) -> Result<EntryId, SemanticError> {
        self.insert_now(scope, vector, record)
    }

    async fn search(
        &self,
        scope: &Scope,
        vector: &[f32],
        k: usize,
    ) -> Result<Vec<Neighbour>, SemanticError> {
        if vector.len() != self.shared.dimensions {
            return Err(SemanticError::Index(format!(
                "a query of dimension {} in an index of dimension {}",
                vector.len(),
                self.shared.dimensions
            )));
        }
        Ok(self.search_now(scope, vector, k))
    }

    async fn remove(&self, id: EntryId) -> Result<bool, SemanticError> {
        Ok(self.remove_now(id))
    }

    fn len(&self) -> usize {
        HnswIndex::len(self)
    }

    async fn flush(&self) -> Result<(), SemanticError> {
        match &self.shared.config.directory {
            Some(_) if self.shared.dirty.load(Ordering::Relaxed) => {
                let index = self.clone();
                tokio::task::spawn_blocking(move || index.save())
                    .await
                    .map_err(|e| SemanticError::Index(format!("save task failed: {e}")))?
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        super::super::test_unit_vector(&mut state, 16)
    }

    fn record(i: u64) -> Record {
        Record {
            text: format!("t{i}"),
            key: format!("v1:{i}"),
            answer: "{}".to_owned(),
            created: 0,
        }
    }

    #[test]
    fn entries_added_while_a_graph_is_saved_join_it_afterwards() {
        let index = HnswIndex::new(
            IndexConfig::new()
                .graph_threshold(50)
                .background_builds(false),
            16,
            "e",
        )
        .expect("index");
        let scope = Scope::from_digest([3; 32]);
        for i in 0..100 {
            index
                .insert_now(scope, vector(i), record(i))
                .expect("insert");
        }
        let graph = {
            let state = index.shared.read();
            let partition = &state.partitions[&scope];
            assert_eq!(partition.covered, 100);
            Arc::clone(partition.graph.as_ref().expect("a graph"))
        };
        graph.freeze();
        let mut added = Vec::new();
        for i in 100..110 {
            added.push(
                index
                    .insert_now(scope, vector(i), record(i))
                    .expect("insert"),
            );
        }
        assert!(index.remove_now(added[4]), "a tombstone among them");
        {
            let state = index.shared.read();
            assert_eq!(state.partitions[&scope].covered, 100, "frozen: not added");
        }
        assert_eq!(graph.points(), 100);
        for (n, i) in (100..110).enumerate() {
            if n != 4 {
                let found = index.search_now(&scope, &vector(i), 1);
                assert_eq!(found[0].entry.id, added[n], "found exhaustively meanwhile");
            }
        }

        index.shared.thaw(&[(scope, Arc::clone(&graph), 100, 100)]);
        assert!(!graph.is_frozen());
        assert_eq!(graph.points(), 110, "every slot, the tombstone too");
        {
            let state = index.shared.read();
            assert_eq!(state.partitions[&scope].covered, 110);
        }
        index
            .insert_now(scope, vector(999), record(999))
            .expect("insert");
        assert_eq!(graph.points(), 111, "thawed: new entries join at once");
    }
}
