//! The HNSW graph of one partition (hnsw_rs), with parameters validated before use, saved and
//! loaded with hnsw_rs's own dump format.

use crate::embed::dot;
use crate::SemanticError;
use hnsw_rs::prelude::{AnnT, Distance, Hnsw, HnswIo};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Dot-product distance `1 - a·b` for normalised vectors, clamped at 0 (hnsw_rs's own
/// `DistDot` asserts on the rounding error of a vector against itself).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DotDistance;

impl Distance<f32> for DotDistance {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

/// HNSW parameters, checked by [`crate::IndexConfig`] before any graph is built
/// (hnsw_rs exits the process when `m > 256`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct GraphParams {
    pub(crate) m: usize,
    pub(crate) ef_construction: usize,
    pub(crate) ef_search: usize,
}

/// A graph over some of a partition's slots; node ids are slot numbers.
pub(crate) struct Graph {
    hnsw: Hnsw<'static, f32, DotDistance>,
    params: GraphParams,
    /// Set while the graph is being saved: new entries are not added meanwhile (they are
    /// searched exhaustively, and added when the save is done).
    frozen: AtomicBool,
}

/// Layers of the graph (hnsw_rs caps it at 16).
const MAX_LAYERS: usize = 16;

impl Graph {
    /// A graph of `points` (vector, slot), built with every core.
    pub(crate) fn build(params: GraphParams, capacity: usize, points: &[(&[f32], usize)]) -> Graph {
        let hnsw = Hnsw::new(
            params.m,
            capacity.max(points.len()).max(1),
            MAX_LAYERS,
            params.ef_construction,
            DotDistance,
        );
        if !points.is_empty() {
            hnsw.parallel_insert_slice(&points.to_vec());
        }
        Graph {
            hnsw,
            params,
            frozen: AtomicBool::new(false),
        }
    }

    /// Writes the graph as `dir/<basename>.hnsw.graph` (links) and `dir/<basename>.hnsw.data`
    /// (vectors), in hnsw_rs's dump format. The caller makes sure no point is added meanwhile
    /// (hnsw_rs's dump counts the points before writing them).
    pub(crate) fn save(&self, dir: &Path, basename: &str) -> Result<(), SemanticError> {
        // hnsw_rs panics when it cannot create its files.
        let dumped = catch_unwind(AssertUnwindSafe(|| self.hnsw.file_dump(dir, basename)));
        match dumped {
            Ok(Ok(name)) if name == basename => Ok(()),
            Ok(Ok(name)) => Err(SemanticError::Index(format!(
                "hnsw_rs saved the graph as {name} in {}, not as {basename}",
                dir.display()
            ))),
            Ok(Err(e)) => Err(SemanticError::Index(format!(
                "saving a graph to {}: {e}",
                dir.display()
            ))),
            Err(_) => Err(SemanticError::Index(format!(
                "hnsw_rs panicked while saving a graph to {}",
                dir.display()
            ))),
        }
    }

    /// Loads a graph [`save`](Self::save) wrote. hnsw_rs trusts its files (it panics, exits
    /// the process or reads out of bounds on some damaged ones), so the caller checks them
    /// against the checksums taken when they were written before calling this.
    pub(crate) fn load(
        params: GraphParams,
        dir: &Path,
        basename: &str,
    ) -> Result<Graph, SemanticError> {
        // A loaded graph borrows its loader for as long as it lives (the loader may hold a
        // memory map; ours does not): a graph kept for the life of the index needs a loader
        // that lives as long. It is a few hundred bytes per graph loaded.
        let loader: &'static HnswIo = Box::leak(Box::new(HnswIo::new(dir, basename)));
        let loaded = catch_unwind(AssertUnwindSafe(|| {
            loader.load_hnsw_with_dist::<f32, DotDistance>(DotDistance)
        }));
        let hnsw = match loaded {
            Ok(Ok(hnsw)) => hnsw,
            Ok(Err(e)) => {
                return Err(SemanticError::Index(format!(
                    "loading graph {basename} from {}: {e}",
                    dir.display()
                )))
            }
            Err(_) => {
                return Err(SemanticError::Index(format!(
                    "hnsw_rs panicked while loading graph {basename} from {}",
                    dir.display()
                )))
            }
        };
        Ok(Graph {
            hnsw,
            params,
            frozen: AtomicBool::new(false),
        })
    }

    /// Stops new points from being added until [`thaw`](Self::thaw) (for a save).
    pub(crate) fn freeze(&self) {
        self.frozen.store(true, Ordering::Release);
    }

    /// Lets new points be added again.
    pub(crate) fn thaw(&self) {
        self.frozen.store(false, Ordering::Release);
    }

    /// Whether new points wait.
    pub(crate) fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Acquire)
    }

    /// Points in the graph (live or not).
    pub(crate) fn points(&self) -> usize {
        self.hnsw.get_nb_point()
    }

    /// Adds one point.
    pub(crate) fn insert(&self, vector: &[f32], slot: usize) {
        self.hnsw.insert_slice((vector, slot));
    }

    /// Up to `k` slots nearest to `vector` among those `alive` accepts, with their
    /// similarity. `tombstones`: whether any slot is dead at all.
    ///
    /// hnsw_rs's filtered search was measured once at about three times slower than the
    /// plain one (no benchmark here tracks it), so the plain search is used, asking for more
    /// neighbours when there are tombstones, and the filtered one only when too few live
    /// neighbours come back.
    pub(crate) fn search(
        &self,
        vector: &[f32],
        k: usize,
        tombstones: bool,
        alive: &dyn Fn(usize) -> bool,
    ) -> Vec<(usize, f32)> {
        let ef = self.params.ef_search.max(k);
        if !tombstones {
            return self.convert(self.hnsw.search(vector, k, ef));
        }
        let wider = k * 4;
        let mut found: Vec<(usize, f32)> = self
            .convert(self.hnsw.search(vector, wider, ef.max(wider)))
            .into_iter()
            .filter(|(slot, _)| alive(*slot))
            .collect();
        if found.len() < k {
            let filter = |id: &usize| alive(*id);
            found = self.convert(self.hnsw.search_filter(vector, k, ef, Some(&filter)));
        }
        found.truncate(k);
        found
    }

    fn convert(&self, neighbours: Vec<hnsw_rs::prelude::Neighbour>) -> Vec<(usize, f32)> {
        neighbours
            .into_iter()
            .map(|n| (n.d_id, 1.0 - n.distance))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(count: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut state = seed;
        (0..count)
            .map(|_| super::super::test_unit_vector(&mut state, 24))
            .collect()
    }

    #[test]
    fn a_saved_graph_loads_back_with_the_same_answers_and_takes_new_points() {
        let params = GraphParams {
            m: 16,
            ef_construction: 64,
            ef_search: 64,
        };
        let vectors = points(1500, 7);
        let slots: Vec<(&[f32], usize)> = vectors.iter().map(Vec::as_slice).zip(0..).collect();
        let graph = Graph::build(params, 3000, &slots);
        let dir = tempfile::tempdir().expect("temp dir");
        graph.save(dir.path(), "g").expect("saved");
        let loaded = Graph::load(params, dir.path(), "g").expect("loaded");
        assert_eq!(loaded.points(), 1500);
        let all = |_: usize| true;
        for query in points(100, 99) {
            assert_eq!(
                graph.search(&query, 4, false, &all),
                loaded.search(&query, 4, false, &all)
            );
        }
        // The loaded graph grows like any other.
        let extra = points(50, 1234);
        for (i, vector) in extra.iter().enumerate() {
            loaded.insert(vector, 1500 + i);
        }
        assert_eq!(loaded.points(), 1550);
        for (i, vector) in extra.iter().enumerate() {
            assert_eq!(loaded.search(vector, 1, false, &all)[0].0, 1500 + i);
        }
        let missing = Graph::load(params, dir.path(), "absent");
        assert!(matches!(missing, Err(SemanticError::Index(_))));
    }
}
