//! The HNSW graph of one partition (hnsw_rs), with parameters validated before use.

use crate::embed::dot;
use hnsw_rs::prelude::{Distance, Hnsw};

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
        Graph { hnsw, params }
    }

    /// Adds one point.
    pub(crate) fn insert(&self, vector: &[f32], slot: usize) {
        self.hnsw.insert_slice((vector, slot));
    }

    /// Up to `k` slots nearest to `vector` among those `alive` accepts, with their
    /// similarity. `tombstones`: whether any slot is dead at all.
    ///
    /// hnsw_rs's filtered search is about three times slower than the plain one, so the plain
    /// search is used, asking for more neighbours when there are tombstones, and the filtered
    /// one only when too few live neighbours come back.
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
