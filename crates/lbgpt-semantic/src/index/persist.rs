//! The on-disk form of an [`HnswIndex`](super::HnswIndex).
//!
//! ```text
//! DIR/current/index.json     {"format": "lbgpt-semantic-index", "version": 1, "embedder": ..,
//!                             "dimensions": 384, "entries": N, "next_id": ..}
//! DIR/current/entries.jsonl  one line per entry: {"id", "scope" (hex), "key", "text",
//!                             "created", "answer" (the answer's JSON)}
//! DIR/current/vectors.f32    the entries' vectors in the same order, little-endian f32
//! ```
//!
//! A save writes `DIR/next/`, then renames `current` to `previous` and `next` to `current`,
//! then deletes `previous`: a crash at any point leaves a complete save under `current` or
//! `previous`, and a load takes `current`, else `previous`. Graphs are not saved; they are
//! rebuilt after a load.

use super::{Entry, Record};
use crate::{Scope, SemanticError};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;

const FORMAT: &str = "lbgpt-semantic-index";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    embedder: String,
    dimensions: usize,
    entries: usize,
    next_id: u64,
}

#[derive(Serialize, Deserialize)]
struct Line {
    id: u64,
    scope: String,
    key: String,
    text: String,
    created: u64,
    answer: Box<serde_json::value::RawValue>,
}

/// What a load found.
pub(crate) struct Saved {
    pub(crate) embedder_id: String,
    pub(crate) dimensions: usize,
    pub(crate) next_id: u64,
    pub(crate) entries: Vec<(Entry, Vec<f32>)>,
}

pub(crate) fn save(
    dir: &Path,
    embedder: &str,
    dimensions: usize,
    next_id: u64,
    entries: &[(Arc<Entry>, Vec<f32>)],
) -> Result<(), SemanticError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| SemanticError::io(path, e)
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let next = dir.join("next");
    if next.exists() {
        fs::remove_dir_all(&next).map_err(io(&next))?;
    }
    fs::create_dir(&next).map_err(io(&next))?;

    let entries_path = next.join("entries.jsonl");
    let mut lines = BufWriter::new(File::create(&entries_path).map_err(io(&entries_path))?);
    let vectors_path = next.join("vectors.f32");
    let mut vectors = BufWriter::new(File::create(&vectors_path).map_err(io(&vectors_path))?);
    for (entry, vector) in entries {
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
        };
        serde_json::to_writer(&mut lines, &line)
            .map_err(|e| SemanticError::Index(format!("encoding entry {}: {e}", entry.id)))?;
        lines.write_all(b"\n").map_err(io(&entries_path))?;
        for value in vector {
            vectors
                .write_all(&value.to_le_bytes())
                .map_err(io(&vectors_path))?;
        }
    }
    finish(lines, &entries_path)?;
    finish(vectors, &vectors_path)?;

    let manifest = Manifest {
        format: FORMAT.to_owned(),
        version: VERSION,
        embedder: embedder.to_owned(),
        dimensions,
        entries: entries.len(),
        next_id,
    };
    let manifest_path = next.join("index.json");
    let text = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| SemanticError::Index(format!("encoding the manifest: {e}")))?;
    let mut file = File::create(&manifest_path).map_err(io(&manifest_path))?;
    file.write_all(&text).map_err(io(&manifest_path))?;
    file.sync_all().map_err(io(&manifest_path))?;

    let current = dir.join("current");
    let previous = dir.join("previous");
    if previous.exists() {
        fs::remove_dir_all(&previous).map_err(io(&previous))?;
    }
    if current.exists() {
        fs::rename(&current, &previous).map_err(io(&current))?;
    }
    fs::rename(&next, &current).map_err(io(&next))?;
    if let Ok(handle) = File::open(dir) {
        // Make the renames durable; not every file system supports syncing a directory.
        let _ = handle.sync_all();
    }
    if previous.exists() {
        fs::remove_dir_all(&previous).map_err(io(&previous))?;
    }
    Ok(())
}

fn finish(mut writer: BufWriter<File>, path: &Path) -> Result<(), SemanticError> {
    writer.flush().map_err(|e| SemanticError::io(path, e))?;
    let file = writer
        .into_inner()
        .map_err(|e| SemanticError::io(path, e.into_error()))?;
    file.sync_all().map_err(|e| SemanticError::io(path, e))
}

/// Loads the save in `dir`; `None` when there is none.
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
    let text = fs::read(&manifest_path).map_err(|e| SemanticError::io(&manifest_path, e))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| bad(format!("unreadable index.json: {e}")))?;
    if manifest.format != FORMAT || manifest.version != VERSION {
        return Err(bad(format!(
            "format {} version {} is not {FORMAT} version {VERSION}",
            manifest.format, manifest.version
        )));
    }
    if manifest.dimensions == 0 {
        return Err(bad("zero dimensions".into()));
    }
    let entries_path = snapshot.join("entries.jsonl");
    let vectors_path = snapshot.join("vectors.f32");
    let lines =
        BufReader::new(File::open(&entries_path).map_err(|e| SemanticError::io(&entries_path, e))?);
    let mut vectors =
        BufReader::new(File::open(&vectors_path).map_err(|e| SemanticError::io(&vectors_path, e))?);
    let mut entries = Vec::with_capacity(manifest.entries);
    let mut buffer = vec![0u8; manifest.dimensions * 4];
    for (number, line) in lines.lines().enumerate() {
        let line = line.map_err(|e| SemanticError::io(&entries_path, e))?;
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
        embedder_id: manifest.embedder,
        dimensions: manifest.dimensions,
        next_id: manifest.next_id,
        entries,
    }))
}
