//! Saving and loading the HNSW graphs with the index: a saved graph is loaded, not rebuilt,
//! and answers as before; one whose files are damaged, built with other parameters or written
//! on another kind of machine is rebuilt from the entries; saves of format version 1 (entries
//! only) still load; an unknown version is a typed error; saves taken while entries are being
//! inserted load back whole. Vectors are random (seeded), not embedded.

use lbgpt_semantic::{HnswIndex, IndexConfig, Neighbour, Record, Scope, SemanticError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod common;

use common::{scope, Vectors, DIMS};

fn record(text: &str) -> Record {
    Record {
        text: text.to_owned(),
        key: format!("v1:{text}"),
        answer: format!(r#"{{"choices":[],"note":"{text}"}}"#),
        created: 7,
    }
}

/// Graphs from 64 entries, built during the insert that needs one (deterministic).
fn config(dir: &Path) -> IndexConfig {
    IndexConfig::new()
        .graph_threshold(64)
        .background_builds(false)
        .directory(dir)
}

fn open(config: IndexConfig) -> HnswIndex {
    HnswIndex::open(config, DIMS, "test-embedder").expect("opens")
}

fn snapshot(dir: &Path) -> PathBuf {
    dir.join("current")
}

/// (id, score) of each neighbour.
fn answers(found: &[Neighbour]) -> Vec<(u64, f32)> {
    found.iter().map(|n| (n.entry.id, n.score)).collect()
}

/// Inserts `count` vectors from `vectors` into scope `n`, their records named `<prefix><i>`;
/// the entries (id, vector, scope).
fn insert_entries(
    index: &HnswIndex,
    vectors: &mut Vectors,
    n: u8,
    prefix: &str,
    count: usize,
) -> Vec<(u64, Vec<f32>, Scope)> {
    (0..count)
        .map(|i| {
            let v = vectors.next();
            let id = index
                .insert_now(scope(n), v.clone(), record(&format!("{prefix}{i}")))
                .expect("insert");
            (id, v, scope(n))
        })
        .collect()
}

/// An index in `dir` with 600 entries in scope 1 (a graph) of which 50 removed (tombstones
/// the graph keeps), and 30 in scope 2 (searched exhaustively); saved. The live entries and
/// their vectors.
fn saved_index(dir: &Path) -> Vec<(u64, Vec<f32>, Scope)> {
    let index = open(config(dir));
    let mut vectors = Vectors(21);
    let mut live = insert_entries(&index, &mut vectors, 1, "a", 600);
    live.extend(insert_entries(&index, &mut vectors, 2, "b", 30));
    for (id, _, _) in live.iter().filter(|(id, _, _)| id % 12 == 0) {
        assert!(index.remove_now(*id));
    }
    live.retain(|(id, _, _)| id % 12 != 0);
    assert_eq!(index.graphs(), 1);
    index.save().expect("saved");
    live
}

/// Every live entry is its own nearest neighbour, and nothing removed comes back.
fn assert_finds_every_entry(index: &HnswIndex, live: &[(u64, Vec<f32>, Scope)]) {
    assert_eq!(index.len(), live.len());
    for (id, vector, scope) in live {
        let found = index.search_now(scope, vector, 3);
        assert_eq!(found[0].entry.id, *id, "an entry finds itself");
        for neighbour in &found {
            assert!(index.get(neighbour.entry.id).is_some(), "a removed entry");
        }
    }
}

#[test]
fn a_saved_graph_is_loaded_not_rebuilt_and_answers_as_before() {
    let dir = tempfile::tempdir().expect("temp dir");
    let live = saved_index(dir.path());
    let mut queries = Vectors(5);
    let queries: Vec<Vec<f32>> = (0..100).map(|_| queries.next()).collect();
    let before: Vec<_> = {
        let index = open(config(dir.path()));
        queries
            .iter()
            .map(|q| answers(&index.search_now(&scope(1), q, 4)))
            .collect()
    };

    // Background builds on: a loaded graph needs none.
    let index = open(config(dir.path()).background_builds(true));
    let summary = index.load_summary().expect("loaded a save").clone();
    assert_eq!(summary.format_version, 2);
    assert_eq!(summary.entries, live.len());
    assert_eq!(summary.graphs_loaded, 1);
    assert_eq!(summary.graphs_rebuilt, 0);
    assert!(summary.rejected_graphs.is_empty(), "{summary:?}");
    assert_eq!(index.graphs(), 1, "searched through the graph at once");
    assert!(
        index.wait_for_builds(Duration::ZERO),
        "nothing is being built"
    );
    for (query, expected) in queries.iter().zip(&before) {
        assert_eq!(&answers(&index.search_now(&scope(1), query, 4)), expected);
    }
    assert_finds_every_entry(&index, &live);
    let entry = index.get(live[3].0).expect("loaded");
    assert_eq!(entry.record, record("a3"));

    // The loaded graph takes new entries, and is saved and loaded again with them.
    let mut vectors = Vectors(77);
    let mut live = live;
    live.extend(insert_entries(&index, &mut vectors, 1, "c", 40));
    assert_finds_every_entry(&index, &live);
    index.save().expect("saved");
    drop(index);
    let index = open(config(dir.path()));
    assert_eq!(index.load_summary().expect("loaded").graphs_loaded, 1);
    assert_finds_every_entry(&index, &live);
}

/// Damages the saved graph in one way, then checks that the index loads, rebuilds the graph
/// for the stated reason and still finds every entry; a new save repairs it.
fn rebuilt_after(damage: impl FnOnce(&Path), reason: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let live = saved_index(dir.path());
    damage(&snapshot(dir.path()));
    let index = open(config(dir.path()));
    let summary = index.load_summary().expect("loaded").clone();
    assert_eq!(
        (summary.graphs_loaded, summary.graphs_rebuilt),
        (0, 1),
        "{summary:?}"
    );
    assert_eq!(summary.rejected_graphs.len(), 1, "{summary:?}");
    assert!(
        summary.rejected_graphs[0].contains(reason),
        "{:?} does not say {reason:?}",
        summary.rejected_graphs
    );
    assert_eq!(index.graphs(), 1, "rebuilt");
    assert_finds_every_entry(&index, &live);
    index.save().expect("saved");
    drop(index);
    let index = open(config(dir.path()));
    assert_eq!(index.load_summary().expect("loaded").graphs_loaded, 1);
    assert_finds_every_entry(&index, &live);
}

fn edit_manifest(snapshot: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = snapshot.join("index.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    edit(&mut manifest);
    std::fs::write(&path, serde_json::to_vec(&manifest).expect("json")).expect("write");
}

#[test]
fn a_graph_file_with_a_changed_byte_is_rebuilt_not_loaded() {
    rebuilt_after(
        |snapshot| {
            let path = snapshot.join("graph-0.hnsw.data");
            let mut bytes = std::fs::read(&path).expect("read");
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x40;
            std::fs::write(&path, bytes).expect("write");
        },
        "checksum",
    );
}

#[test]
fn a_cut_off_graph_file_is_rebuilt_not_loaded() {
    rebuilt_after(
        |snapshot| {
            let path = snapshot.join("graph-0.hnsw.graph");
            let bytes = std::fs::read(&path).expect("read");
            std::fs::write(&path, &bytes[..bytes.len() / 3]).expect("write");
        },
        "bytes",
    );
}

#[test]
fn a_missing_graph_file_is_rebuilt_not_loaded() {
    rebuilt_after(
        |snapshot| std::fs::remove_file(snapshot.join("graph-0.hnsw.data")).expect("removed"),
        "graph-0.hnsw.data",
    );
}

#[test]
fn a_graph_written_on_another_kind_of_machine_is_rebuilt() {
    rebuilt_after(
        |snapshot| {
            edit_manifest(snapshot, |m| {
                m["graphs"][0]["layout"] = "hnsw_rs 0.3 dump, big-endian, 32-bit".into();
            })
        },
        "big-endian",
    );
}

#[test]
fn entries_that_do_not_fit_their_graph_are_laid_out_anew() {
    rebuilt_after(
        |snapshot| {
            // Two entries claim the same node of the graph.
            let path = snapshot.join("entries.jsonl");
            let text = std::fs::read_to_string(&path).expect("read");
            let mut lines: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).expect("json"))
                .collect();
            let with_slots: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].get("slot").is_some())
                .collect();
            let taken = lines[with_slots[0]]["slot"].clone();
            lines[with_slots[1]]["slot"] = taken;
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            std::fs::write(&path, text).expect("write");
        },
        "does not have free",
    );
}

#[test]
fn a_manifest_announcing_more_slots_than_were_saved_is_rebuilt_not_allocated() {
    // index.json is not covered by the graph's checksum: a damaged slot count must be
    // rejected before anything is sized by it. The largest value overflows slots × dimensions;
    // 2^40 does not, but could not be allocated.
    for slots in [usize::MAX, 1 << 40] {
        rebuilt_after(
            |snapshot| edit_manifest(snapshot, |m| m["graphs"][0]["slots"] = slots.into()),
            &format!("{slots} slots, more than its graph's 600 nodes"),
        );
    }
}

#[test]
fn a_manifest_announcing_more_entries_or_dimensions_than_were_saved_is_refused_not_allocated() {
    // index.json is not covered by any checksum: a damaged entry count or dimension must be
    // refused (as other damage to the entries is) before anything is sized by it. usize::MAX
    // overflows entries × dimensions × 4; 2^40 does not, but could not be allocated; one
    // entry more than were saved finds no vector for it.
    let dir = tempfile::tempdir().expect("temp dir");
    let live = saved_index(dir.path());
    let manifest = snapshot(dir.path()).join("index.json");
    let saved = std::fs::read(&manifest).expect("read");
    let huge = [usize::MAX, 1 << 40];
    let cases = huge
        .iter()
        .map(|&n| (vec![("entries", n)], format!("announces {n} entries")))
        .chain(
            huge.iter()
                .map(|&n| (vec![("dimensions", n)], format!("announces {n} dimensions"))),
        )
        .chain(huge.iter().map(|&n| {
            (
                vec![("entries", n), ("dimensions", n)],
                format!("announces {n} dimensions"),
            )
        }))
        .chain([(
            vec![("entries", live.len() + 1)],
            format!("announces {} entries", live.len() + 1),
        )]);
    for (edits, said) in cases {
        std::fs::write(&manifest, &saved).expect("write");
        edit_manifest(&snapshot(dir.path()), |m| {
            for (field, value) in &edits {
                m[field] = (*value).into();
            }
        });
        let error =
            HnswIndex::open(config(dir.path()), DIMS, "test-embedder").expect_err("refused");
        let message = error.to_string();
        assert!(matches!(error, SemanticError::Index(_)), "{error:?}");
        assert!(message.contains(&said), "{message:?} does not say {said:?}");
    }
    // The files themselves were sound: the manifest as saved loads them all.
    std::fs::write(&manifest, &saved).expect("write");
    assert_finds_every_entry(&open(config(dir.path())), &live);
}

#[test]
fn a_graph_built_with_other_parameters_is_rebuilt_with_the_configured_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let live = saved_index(dir.path());
    let index = open(config(dir.path()).m(24));
    let summary = index.load_summary().expect("loaded");
    assert_eq!((summary.graphs_loaded, summary.graphs_rebuilt), (0, 1));
    assert!(
        summary.rejected_graphs[0].contains("m 16"),
        "{:?}",
        summary.rejected_graphs
    );
    assert_finds_every_entry(&index, &live);
}

/// Writes a save in format version 1, as the crate wrote before graphs were saved.
fn write_version_1(dir: &Path, entries: &[(u64, Vec<f32>, Scope)]) {
    let current = snapshot(dir);
    std::fs::create_dir_all(&current).expect("dir");
    let mut lines = String::new();
    let mut vectors = Vec::new();
    for (id, vector, scope) in entries {
        lines.push_str(
            &serde_json::json!({
                "id": id,
                "scope": scope.hex(),
                "key": format!("v1:e{id}"),
                "text": format!("e{id}"),
                "created": 7,
                "answer": {"choices": [], "note": format!("e{id}")},
            })
            .to_string(),
        );
        lines.push('\n');
        for value in vector {
            vectors.extend_from_slice(&value.to_le_bytes());
        }
    }
    std::fs::write(current.join("entries.jsonl"), lines).expect("write");
    std::fs::write(current.join("vectors.f32"), vectors).expect("write");
    let manifest = serde_json::json!({
        "format": "lbgpt-semantic-index",
        "version": 1,
        "embedder": "test-embedder",
        "dimensions": DIMS,
        "entries": entries.len(),
        "next_id": entries.len() + 1,
    });
    std::fs::write(current.join("index.json"), manifest.to_string()).expect("write");
}

#[test]
fn a_version_1_save_still_loads_its_graphs_are_built_and_the_next_save_is_version_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut vectors = Vectors(3);
    let entries: Vec<(u64, Vec<f32>, Scope)> = (1..=200)
        .map(|id| (id, vectors.next(), scope(if id <= 150 { 4 } else { 5 })))
        .collect();
    write_version_1(dir.path(), &entries);

    let index = open(config(dir.path()));
    let summary = index.load_summary().expect("loaded").clone();
    assert_eq!(summary.format_version, 1);
    assert_eq!(summary.entries, 200);
    assert_eq!((summary.graphs_loaded, summary.graphs_rebuilt), (0, 1));
    assert!(summary.rejected_graphs.is_empty());
    assert_finds_every_entry(&index, &entries);
    let entry = index.get(42).expect("loaded");
    assert_eq!(entry.record.key, "v1:e42");
    assert_eq!(entry.record.answer, r#"{"choices":[],"note":"e42"}"#);
    let new_vector = vectors.next();
    let id = index
        .insert_now(scope(4), new_vector.clone(), record("new"))
        .expect("insert");
    assert!(id > 200, "ids go on after the saved ones");

    index.save().expect("saved");
    drop(index);
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(snapshot(dir.path()).join("index.json")).expect("read"),
    )
    .expect("json");
    assert_eq!(manifest["version"], 2);
    assert_eq!(manifest["graphs"].as_array().expect("graphs").len(), 1);
    let index = open(config(dir.path()));
    let summary = index.load_summary().expect("loaded");
    assert_eq!((summary.graphs_loaded, summary.graphs_rebuilt), (1, 0));
    let mut all = entries;
    all.push((id, new_vector, scope(4)));
    assert_finds_every_entry(&index, &all);
}

#[test]
fn a_save_of_an_unknown_version_is_a_typed_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    saved_index(dir.path());
    edit_manifest(&snapshot(dir.path()), |m| m["version"] = 3.into());
    let error = HnswIndex::open(config(dir.path()), DIMS, "test-embedder").expect_err("refused");
    match &error {
        SemanticError::IndexVersion {
            path,
            found,
            readable,
        } => {
            assert_eq!(path, &snapshot(dir.path()));
            assert_eq!(*found, 3);
            assert_eq!(readable, &vec![1, 2]);
        }
        other => panic!("unexpected error {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("version 3"), "{message}");
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
}

#[test]
fn saves_taken_while_entries_are_inserted_load_back_whole() {
    let dir = tempfile::tempdir().expect("temp dir");
    let index = Arc::new(open(config(dir.path()).background_builds(true)));
    let writer = {
        let index = Arc::clone(&index);
        std::thread::spawn(move || insert_entries(&index, &mut Vectors(1234), 6, "w", 1500))
    };
    let mut checked = 0;
    while !writer.is_finished() || checked == 0 {
        index.save().expect("saved");
        // Each save loads back as one consistent picture: every graph it holds loads.
        let copy = open(config(dir.path()));
        let summary = copy.load_summary().expect("loaded");
        assert!(summary.rejected_graphs.is_empty(), "{summary:?}");
        assert_eq!(summary.entries, copy.len());
        checked += 1;
    }
    let inserted = writer.join().expect("writer");
    assert!(index.wait_for_builds(Duration::from_secs(120)));
    index.save().expect("saved");
    let reopened = open(config(dir.path()));
    let summary = reopened.load_summary().expect("loaded");
    assert_eq!((summary.graphs_loaded, summary.entries), (1, 1500));
    assert_finds_every_entry(&reopened, &inserted);
}
