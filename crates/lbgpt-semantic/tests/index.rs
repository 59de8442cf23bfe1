//! The HNSW index alone: bound and eviction, tombstones and rebuilds, persistence, concurrent
//! searches during inserts, parameter validation. Vectors are random (seeded), not embedded.

use lbgpt_semantic::{dot, HnswIndex, IndexConfig, Record, SemanticError, VectorIndex};
use std::sync::Arc;
use std::time::Duration;

mod common;

use common::{scope, Vectors, DIMS};

fn record(text: &str) -> Record {
    Record {
        text: text.to_owned(),
        key: format!("v1:{text}"),
        answer: format!(r#"{{"choices":[],"note":"{text}"}}"#),
        created: 0,
    }
}

fn index(config: IndexConfig) -> HnswIndex {
    HnswIndex::open(config, DIMS, "test-embedder").expect("valid index")
}

#[test]
fn the_index_never_holds_more_than_its_bound_and_evicts_the_least_recently_used() {
    let index = index(
        IndexConfig::new()
            .max_entries(100)
            .background_builds(false)
            .graph_threshold(40),
    );
    let mut vectors = Vectors(7);
    let first = vectors.next();
    let first_id = index
        .insert_now(scope(1), first.clone(), record("first"))
        .expect("insert");
    let mut inserted = Vec::new();
    for i in 0..400 {
        let v = vectors.next();
        index
            .insert_now(scope(1), v.clone(), record(&format!("e{i}")))
            .expect("insert");
        inserted.push(v);
        // Keep the first entry in use: it must survive every eviction.
        assert_eq!(index.search_now(&scope(1), &first, 1)[0].entry.id, first_id);
        assert!(index.len() <= 100, "{} entries", index.len());
    }
    assert!(index.len() >= 95);
    assert!(index.get(first_id).is_some());
    // The most recent entries are there, the oldest unused ones are gone.
    let last = inserted.last().expect("inserted");
    let found = index.search_now(&scope(1), last, 1);
    assert_eq!(found[0].entry.record.text, "e399");
    assert!(found[0].score > 0.999);
    let oldest = &inserted[0];
    let found = index.search_now(&scope(1), oldest, 1);
    assert_ne!(found[0].entry.record.text, "e0");
    assert_eq!(
        index.graphs(),
        1,
        "the scope got a graph, rebuilt without tombstones"
    );
}

#[test]
fn searches_see_only_live_entries_of_their_scope_through_rebuilds() {
    let index = index(
        IndexConfig::new()
            .background_builds(false)
            .graph_threshold(64),
    );
    let mut vectors = Vectors(11);
    let mut live = Vec::new();
    for i in 0..300 {
        let v = vectors.next();
        let id = index
            .insert_now(scope(2), v.clone(), record(&format!("a{i}")))
            .expect("insert");
        live.push((id, v));
        index
            .insert_now(scope(3), vectors.next(), record(&format!("b{i}")))
            .expect("insert");
    }
    // Remove two thirds: the graph is rebuilt without them.
    for (id, _) in live.iter().filter(|(id, _)| id % 3 != 0) {
        assert!(index.remove_now(*id));
    }
    live.retain(|(id, _)| id % 3 == 0);
    for (id, v) in &live {
        let found = index.search_now(&scope(2), v, 3);
        assert_eq!(found[0].entry.id, *id, "an entry finds itself");
        for neighbour in &found {
            assert_eq!(neighbour.entry.scope, scope(2));
            assert!(
                index.get(neighbour.entry.id).is_some(),
                "no removed entry is returned"
            );
        }
    }
    assert!(index.search_now(&scope(9), &live[0].1, 3).is_empty());
}

#[test]
fn graph_search_finds_the_true_nearest_neighbour_almost_always() {
    let index = index(
        IndexConfig::new()
            .background_builds(false)
            .graph_threshold(100),
    );
    let mut vectors = Vectors(3);
    let points: Vec<Vec<f32>> = (0..2000).map(|_| vectors.next()).collect();
    let items = points
        .iter()
        .enumerate()
        .map(|(i, v)| (scope(4), v.clone(), record(&i.to_string())))
        .collect();
    index.insert_batch(items).expect("batch");
    assert_eq!(index.graphs(), 1);
    let mut agree = 0;
    let queries = 200;
    for _ in 0..queries {
        let q = vectors.next();
        let exact = points
            .iter()
            .enumerate()
            .max_by(|a, b| dot(&q, a.1).total_cmp(&dot(&q, b.1)))
            .map(|(i, _)| i.to_string());
        let found = index.search_now(&scope(4), &q, 1);
        if Some(&found[0].entry.record.text) == exact.as_ref() {
            agree += 1;
        }
    }
    assert!(
        agree as f64 / queries as f64 >= 0.95,
        "recall@1 {agree}/{queries}"
    );
}

#[test]
fn concurrent_searches_during_inserts_always_find_what_was_inserted_before() {
    let index = Arc::new(index(IndexConfig::new().graph_threshold(200)));
    let mut vectors = Vectors(5);
    let seed: Vec<Vec<f32>> = (0..300).map(|_| vectors.next()).collect();
    for (i, v) in seed.iter().enumerate() {
        index
            .insert_now(scope(5), v.clone(), record(&format!("s{i}")))
            .expect("insert");
    }
    let seed = Arc::new(seed);
    let writer = {
        let index = Arc::clone(&index);
        std::thread::spawn(move || {
            let mut vectors = Vectors(99);
            for i in 0..600 {
                index
                    .insert_now(scope(5), vectors.next(), record(&format!("w{i}")))
                    .expect("insert");
            }
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let index = Arc::clone(&index);
            let seed = Arc::clone(&seed);
            std::thread::spawn(move || {
                let mut searches = 0;
                for round in 0..1000 {
                    let i = (round * 7 + r) % seed.len();
                    let found = index.search_now(&scope(5), &seed[i], 1);
                    assert_eq!(found[0].entry.record.text, format!("s{i}"));
                    searches += 1;
                }
                searches
            })
        })
        .collect();
    writer.join().expect("writer");
    for reader in readers {
        assert_eq!(reader.join().expect("reader"), 1000);
    }
    assert!(index.wait_for_builds(Duration::from_secs(60)));
    assert_eq!(index.len(), 900);
    assert_eq!(index.graphs(), 1);
}

#[tokio::test]
async fn saved_entries_load_back_and_a_save_of_another_embedder_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = IndexConfig::new().directory(dir.path());
    let mut vectors = Vectors(13);
    let kept = vectors.next();
    {
        let index = index(config.clone());
        index
            .insert(scope(6), kept.clone(), record("kept"))
            .await
            .expect("insert");
        for i in 0..20 {
            index
                .insert(scope(7), vectors.next(), record(&format!("other{i}")))
                .await
                .expect("insert");
        }
        index.flush().await.expect("saved");
    }
    let reopened = index(config.clone());
    assert_eq!(reopened.len(), 21);
    let found = reopened.search(&scope(6), &kept, 1).await.expect("search");
    assert_eq!(found[0].entry.record, record("kept"));
    // Ids keep growing after a reload.
    let id = reopened
        .insert_now(scope(6), vectors.next(), record("new"))
        .expect("insert");
    assert!(id > 21);
    drop(reopened); // saved when dropped with unsaved entries
    assert_eq!(index(config.clone()).len(), 22);

    let error = HnswIndex::open(config.clone(), DIMS, "another-embedder").expect_err("refused");
    assert!(error.to_string().contains("another-embedder"), "{error}");
    let error = HnswIndex::open(config, DIMS + 1, "test-embedder").expect_err("refused");
    assert!(matches!(error, SemanticError::Index(_)), "{error:?}");
}

#[test]
fn invalid_parameters_are_errors_not_process_exits() {
    for (config, field) in [
        (IndexConfig::new().m(300), "m"),
        (IndexConfig::new().m(1), "m"),
        (IndexConfig::new().max_entries(0), "max_entries"),
        (IndexConfig::new().ef_search(0), "ef_search"),
    ] {
        let error = HnswIndex::new(config, DIMS, "e").expect_err("invalid");
        assert!(
            matches!(error, SemanticError::Config { field: f, .. } if f == field),
            "{error:?}"
        );
    }
    for dimensions in [0, 65_537, usize::MAX] {
        let error = HnswIndex::new(IndexConfig::new(), dimensions, "e").expect_err("invalid");
        assert!(
            matches!(
                error,
                SemanticError::Config {
                    field: "dimensions",
                    ..
                }
            ),
            "{error:?}"
        );
    }
    HnswIndex::new(IndexConfig::new(), 65_536, "e").expect("the largest dimension");
    let index = index(IndexConfig::new());
    let error = index
        .insert_now(scope(1), vec![0.5; DIMS + 1], record("x"))
        .expect_err("wrong size");
    assert!(matches!(error, SemanticError::Index(_)));
    let error = index
        .insert_now(scope(1), vec![f32::NAN; DIMS], record("x"))
        .expect_err("NaN");
    assert!(matches!(error, SemanticError::Index(_)));
}
