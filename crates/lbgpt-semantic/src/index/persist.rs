//! The on-disk form of an [`HnswIndex`](super::HnswIndex).
//!
//! ```text
//! DIR/current/index.json      {"format": "lbgpt-semantic-index", "version": 2, "embedder": ..,
//!                              "dimensions": 384, "entries": N, "next_id": .., "graphs": [..]}
//! DIR/current/entries.jsonl   one line per entry: {"id", "scope" (hex), "key", "text",
//!                              "created", "answer" (the answer's JSON), "slot" (graphs only)}
//! DIR/current/vectors.f32     the entries' vectors in the same order, little-endian f32
//! DIR/current/graph-N.hnsw.graph, graph-N.hnsw.data
//!                             the HNSW graph of one scope, in hnsw_rs's dump format
//! ```
//!
//! Each element of `graphs` names its scope, its files (with their sizes and SHA-256), the
//! partition's slot count, how many slots the graph covers, the graph's `m` and
//! `ef_construction`, and the byte layout hnsw_rs wrote (native endianness and word size).
//! The entries of such a scope carry their `slot`, which is their node id in the graph; slots
//! without an entry are tombstones (evicted or removed entries the graph still holds).
//!
//! A graph is only handed to hnsw_rs's loader when its files are exactly those written (size
//! and SHA-256), because that loader panics, exits the process or reads out of bounds on some
//! damaged files; a graph that does not check out, was built with other parameters or on
//! another kind of machine is rebuilt from the entries instead (as every graph of a version 1
//! save, which held none).
//!
//! A save writes `DIR/next/`, then renames `current` to `previous` and `next` to `current`,
//! then deletes `previous`: a crash at any point leaves a complete save under `current` or
//! `previous`, and a load takes `current`, else `previous`.

use super::{Entry, Record};
use crate::{Scope, SemanticError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const FORMAT: &str = "lbgpt-semantic-index";
/// The version written.
pub(crate) const VERSION: u32 = 2;
/// The versions read: 1 (no graphs) and 2.
pub(crate) const READABLE_VERSIONS: [u32; 2] = [1, 2];
/// The largest vector dimension an index takes (and a save may announce): far above any
/// embedding model's, and small enough that a load can size a vector by it.
pub(crate) const MAX_DIMENSIONS: usize = 1 << 16;

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    embedder: String,
    dimensions: usize,
    entries: usize,
    next_id: u64,
    #[serde(default)]
    graphs: Vec<GraphFiles>,
}

/// A saved graph, as the manifest describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GraphFiles {
    /// The scope's hex form.
    pub(crate) scope: String,
    /// The files' common name (`graph-N`: `graph-N.hnsw.graph`, `graph-N.hnsw.data`).
    pub(crate) name: String,
    /// The partition's slots (entries and tombstones).
    pub(crate) slots: usize,
    /// Slots `[0, covered)` are the graph's nodes.
    pub(crate) covered: usize,
    /// The graph's links per node.
    pub(crate) m: usize,
    /// The graph's construction candidate list.
    pub(crate) ef_construction: usize,
    /// The byte layout hnsw_rs wrote ([`graph_layout`]).
    pub(crate) layout: String,
    /// Size of `<name>.hnsw.graph`.
    pub(crate) graph_bytes: u64,
    /// Size of `<name>.hnsw.data`.
    pub(crate) data_bytes: u64,
    /// SHA-256 (hex) of the graph file followed by the data file.
    pub(crate) sha256: String,
}

impl GraphFiles {
    fn paths(&self, dir: &Path) -> [PathBuf; 2] {
        [
            dir.join(format!("{}.hnsw.graph", self.name)),
            dir.join(format!("{}.hnsw.data", self.name)),
        ]
    }
}

/// hnsw_rs writes its dumps in the machine's byte order and word size: a graph saved on
/// another kind of machine is rebuilt rather than misread.
pub(crate) fn graph_layout() -> String {
    let endian = if cfg!(target_endian = "little") {
        "little"
    } else {
        "big"
    };
    format!("hnsw_rs 0.3 dump, {endian}-endian, {}-bit", usize::BITS)
}

#[derive(Serialize, Deserialize)]
struct Line {
    id: u64,
    scope: String,
    key: String,
    text: String,
    created: u64,
    answer: Box<serde_json::value::RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    slot: Option<usize>,
}

/// One entry to save: the entry, its vector and, in a scope whose graph is saved, its slot.
pub(crate) type EntryToSave = (Arc<Entry>, Vec<f32>, Option<usize>);

/// What a load found.
pub(crate) struct Saved {
    /// The snapshot directory read (`DIR/current` or `DIR/previous`).
    pub(crate) snapshot: PathBuf,
    pub(crate) version: u32,
    pub(crate) embedder_id: String,
    pub(crate) dimensions: usize,
    pub(crate) next_id: u64,
    /// Entries with their vector and, in a scope with a saved graph, their slot.
    pub(crate) entries: Vec<(Entry, Vec<f32>, Option<usize>)>,
    pub(crate) graphs: Vec<GraphFiles>,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SemanticError {
    let path = path.to_path_buf();
    move |e| SemanticError::io(path, e)
}

/// Creates an empty `DIR/next/` for a save to fill; its path.
pub(crate) fn prepare(dir: &Path) -> Result<PathBuf, SemanticError> {
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let next = dir.join("next");
    if next.exists() {
        fs::remove_dir_all(&next).map_err(io_error(&next))?;
    }
    fs::create_dir(&next).map_err(io_error(&next))?;
    Ok(next)
}

/// The name of the `index`-th graph's files.
pub(crate) fn graph_name(index: usize) -> String {
    format!("graph-{index}")
}

/// Checksums the two files of a graph just written to `next` (and makes them durable).
#[allow(clippy::too_many_arguments)]
pub(crate) fn describe_graph(
    next: &Path,
    scope: &Scope,
    name: String,
    slots: usize,
    covered: usize,
    m: usize,
    ef_construction: usize,
) -> Result<GraphFiles, SemanticError> {
    let mut files = GraphFiles {
        scope: scope.hex(),
        name,
        slots,
        covered,
        m,
        ef_construction,
        layout: graph_layout(),
        graph_bytes: 0,
        data_bytes: 0,
        sha256: String::new(),
    };
    let [graph, data] = files.paths(next);
    for path in [&graph, &data] {
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(io_error(path))?;
    }
    let (sha256, [graph_bytes, data_bytes]) = checksum(&[graph, data])?;
    files.sha256 = sha256;
    files.graph_bytes = graph_bytes;
    files.data_bytes = data_bytes;
    Ok(files)
}

/// Whether the graph's files in `snapshot` are exactly those the manifest describes; the
/// reason when not.
pub(crate) fn check_graph(snapshot: &Path, files: &GraphFiles) -> Result<(), String> {
    let paths = files.paths(snapshot);
    for (path, expected) in paths.iter().zip([files.graph_bytes, files.data_bytes]) {
        match fs::metadata(path) {
            Ok(meta) if meta.len() == expected => {}
            Ok(meta) => {
                return Err(format!(
                    "{} holds {} bytes, {expected} were written",
                    path.display(),
                    meta.len()
                ))
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    let (sha256, _) = checksum(&paths).map_err(|e| e.to_string())?;
    if sha256 != files.sha256 {
        return Err(format!(
            "{} and its data file do not have the checksum written with them",
            paths[0].display()
        ));
    }
    Ok(())
}

/// SHA-256 of the files one after another, and each file's size.
fn checksum<const N: usize>(paths: &[PathBuf; N]) -> Result<(String, [u64; N]), SemanticError> {
    let mut hasher = Sha256::new();
    let mut sizes = [0u64; N];
    let mut buffer = vec![0u8; 1 << 20];
    for (path, size) in paths.iter().zip(sizes.iter_mut()) {
        let mut file = File::open(path).map_err(io_error(path))?;
        loop {
            let read = file.read(&mut buffer).map_err(io_error(path))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            *size += read as u64;
        }
    }
    let digest: [u8; 32] = hasher.finalize().into();
    Ok((lbgpt_cache::CacheKey::from_digest(digest).hex(), sizes))
}

/// Writes the entries and the manifest into `next` (prepared by [`prepare`], holding the
/// graphs' files), then makes it the current save.
pub(crate) fn finish_save(
    dir: &Path,
    next: &Path,
    embedder: &str,
    dimensions: usize,
    next_id: u64,
    entries: &[EntryToSave],
    graphs: Vec<GraphFiles>,
) -> Result<(), SemanticError> {
    let entries_path = next.join("entries.jsonl");
    let mut lines = BufWriter::new(File::create(&entries_path).map_err(io_error(&entries_path))?);
    let vectors_path = next.join("vectors.f32");
    let mut vectors = BufWriter::new(File::create(&vectors_path).map_err(io_error(&vectors_path))?);
    for (entry, vector, slot) in entries {
        let answer = serde_json::value::RawValue::from_string(entry.record.answer.clone())
            .map_err(|e| {
                SemanticError::Index(format!("entry {} holds invalid JSON: {e}", entry.id))
            })?;
        let line = Line {
            id: entry.id,
            scope: entry.scope.hex(),
            key: entry.record.key.clone(),
            text: entry.record.text.clone(),
            created: entry.record.created,
            answer,
            slot: *slot,
        };
        serde_json::to_writer(&mut lines, &line)
            .map_err(|e| SemanticError::Index(format!("encoding entry {}: {e}", entry.id)))?;
        lines.write_all(b"\n").map_err(io_error(&entries_path))?;
        for value in vector {
            vectors
                .write_all(&value.to_le_bytes())
                .map_err(io_error(&vectors_path))?;
        }
    }
    sync(lines, &entries_path)?;
    sync(vectors, &vectors_path)?;

    let manifest = Manifest {
        format: FORMAT.to_owned(),
        version: VERSION,
        embedder: embedder.to_owned(),
        dimensions,
        entries: entries.len(),
        next_id,
        graphs,
    };
    let manifest_path = next.join("index.json");
    let text = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| SemanticError::Index(format!("encoding the manifest: {e}")))?;
    let mut file = File::create(&manifest_path).map_err(io_error(&manifest_path))?;
    file.write_all(&text).map_err(io_error(&manifest_path))?;
    file.sync_all().map_err(io_error(&manifest_path))?;

    let current = dir.join("current");
    let previous = dir.join("previous");
    if previous.exists() {
        fs::remove_dir_all(&previous).map_err(io_error(&previous))?;
    }
    if current.exists() {
        fs::rename(&current, &previous).map_err(io_error(&current))?;
    }
    fs::rename(next, &current).map_err(io_error(next))?;
    if let Ok(handle) = File::open(dir) {
        // Make the renames durable; not every file system supports syncing a directory.
        let _ = handle.sync_all();
    }
    if previous.exists() {
        fs::remove_dir_all(&previous).map_err(io_error(&previous))?;
    }
    Ok(())
}

fn sync(mut writer: BufWriter<File>, path: &Path) -> Result<(), SemanticError> {
    writer.flush().map_err(io_error(path))?;
    let file = writer
        .into_inner()
        .map_err(|e| SemanticError::io(path, e.into_error()))?;
    file.sync_all().map_err(io_error(path))
}

/// Loads the save in `dir`; `None` when there is none. Graph files are only listed here;
/// [`check_graph`] checks them before they are loaded.
pub(crate) fn load(dir: &Path) -> Result<Option<Saved>, SemanticError> {
    let current = dir.join("current");
    let previous = dir.join("previous");
    let snapshot = if current.join("index.json").is_file() {
        current
    } else if previous.join("index.json").is_file() {
        previous
    } else {
        return Ok(None);
    };
    let bad = |what: String| SemanticError::Index(format!("{}: {what}", snapshot.display()));
    let manifest_path = snapshot.join("index.json");
    let text = fs::read(&manifest_path).map_err(io_error(&manifest_path))?;
    // The format and version first, so that a newer save is reported as such even when the
    // rest of its manifest has changed.
    #[derive(Deserialize)]
    struct Head {
        format: String,
        version: u32,
    }
    let head: Head =
        serde_json::from_slice(&text).map_err(|e| bad(format!("unreadable index.json: {e}")))?;
    if head.format != FORMAT {
        return Err(bad(format!(
            "index.json is of format `{}`, not {FORMAT}",
            head.format
        )));
    }
    if !READABLE_VERSIONS.contains(&head.version) {
        return Err(SemanticError::IndexVersion {
            path: snapshot,
            found: head.version,
            readable: READABLE_VERSIONS.to_vec(),
        });
    }
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| bad(format!("unreadable index.json: {e}")))?;
    if manifest.dimensions == 0 {
        return Err(bad("zero dimensions".into()));
    }
    // index.json is checked by nothing else, so memory is sized by its counts only as far as
    // the saved files back them: a vector of at most MAX_DIMENSIONS, and no more entries than
    // vectors.f32 holds vectors. A larger count is a damaged manifest, refused like other
    // damage rather than allocated (or overflowed).
    let record = manifest
        .dimensions
        .checked_mul(4)
        .filter(|_| manifest.dimensions <= MAX_DIMENSIONS);
    let Some(record) = record else {
        return Err(bad(format!(
            "index.json announces {} dimensions, more than the {MAX_DIMENSIONS} an index may have",
            manifest.dimensions
        )));
    };
    let entries_path = snapshot.join("entries.jsonl");
    let vectors_path = snapshot.join("vectors.f32");
    let lines = BufReader::new(File::open(&entries_path).map_err(io_error(&entries_path))?);
    let vectors = File::open(&vectors_path).map_err(io_error(&vectors_path))?;
    let vectors_bytes = vectors.metadata().map_err(io_error(&vectors_path))?.len();
    let room = vectors_bytes / record as u64;
    if manifest.entries as u64 > room {
        return Err(bad(format!(
            "index.json announces {} entries, vectors.f32 ({vectors_bytes} bytes) holds at most {room} vectors of {} dimensions",
            manifest.entries, manifest.dimensions
        )));
    }
    let mut vectors = BufReader::new(vectors);
    let mut entries = Vec::with_capacity(manifest.entries);
    let mut buffer = vec![0u8; record];
    for (number, line) in lines.lines().enumerate() {
        let line = line.map_err(io_error(&entries_path))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(&line)
            .map_err(|e| bad(format!("entries.jsonl line {}: {e}", number + 1)))?;
        let scope = Scope::from_hex(&parsed.scope)
            .ok_or_else(|| bad(format!("entries.jsonl line {}: bad scope", number + 1)))?;
        vectors
            .read_exact(&mut buffer)
            .map_err(|e| bad(format!("vectors.f32 ends before entry {}: {e}", number + 1)))?;
        let vector: Vec<f32> = buffer
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        entries.push((
            Entry {
                id: parsed.id,
                scope,
                record: Record {
                    text: parsed.text,
                    key: parsed.key,
                    answer: parsed.answer.get().to_owned(),
                    created: parsed.created,
                },
            },
            vector,
            parsed.slot,
        ));
    }
    if entries.len() != manifest.entries {
        return Err(bad(format!(
            "index.json announces {} entries, entries.jsonl holds {}",
            manifest.entries,
            entries.len()
        )));
    }
    Ok(Some(Saved {
        snapshot,
        version: manifest.version,
        embedder_id: manifest.embedder,
        dimensions: manifest.dimensions,
        next_id: manifest.next_id,
        entries,
        graphs: manifest.graphs,
    }))
}
