//! The fitted model: trees flattened into one array of nodes, scored exactly
//! as scikit-learn scores them.

use std::collections::BTreeMap;

use ndarray::{Array1, ArrayView2, Axis};
use rayon::prelude::*;

use super::error::{AnomalyError, ModelError, ModelErrorKind};
use super::train::Contamination;

/// Euler–Mascheroni constant, as `numpy.euler_gamma`.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Deepest tree a model may hold. Trees grown by scikit-learn or here are at
/// most `ceil(log2(max_samples))` deep; the bound keeps tampered models cheap.
pub(crate) const MAX_TREE_DEPTH: usize = 1024;

/// Rows scored per parallel task in batch scoring.
const BATCH_CHUNK: usize = 2048;

/// Batches smaller than this are scored on the calling thread.
const PARALLEL_MIN_ROWS: usize = 4096;

/// `c(n)`: the average path length of an unsuccessful search in a binary
/// search tree of `n` points, as scikit-learn's `_average_path_length`
/// computes it (0 for `n ≤ 1`, 1 for `n = 2`).
pub fn average_path_length(n: f64) -> f64 {
    if n <= 1.0 {
        0.0
    } else if n == 2.0 {
        1.0
    } else {
        2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
    }
}

/// One tree in the layout of scikit-learn's `tree_` arrays: node `i` is a
/// leaf when `children_left[i] == -1`; `feature[i]` indexes `features`, the
/// tree's subset of the model's features.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TreeSpec {
    /// Model feature index of each of the tree's local features.
    pub features: Vec<usize>,
    pub children_left: Vec<i64>,
    pub children_right: Vec<i64>,
    pub feature: Vec<i64>,
    pub threshold: Vec<f64>,
    pub n_node_samples: Vec<u64>,
}

/// A node of the flattened forest (12 bytes). Children are adjacent: the
/// right child of an internal node is `left + 1`. A leaf points at itself
/// with an infinite threshold, so every walk takes exactly the tree's depth
/// in steps, without a branch on the node kind; the path length a leaf
/// contributes is in `IsolationForest::leaf_value`.
///
/// scikit-learn compares a value cast to `f32` with a `f64` threshold; the
/// node holds the threshold as [`f32_at_most`] of it, the largest `f32` not
/// above it, with which the comparison of an `f32` value gives the same
/// answer (see there), in half the memory.
#[derive(Debug, Clone, Copy)]
struct Node {
    threshold: f32,
    feature: u32,
    left: u32,
}

impl Node {
    const PLACEHOLDER: Node = Node {
        threshold: f32::INFINITY,
        feature: 0,
        left: 0,
    };

    /// The next node for `row` (values cast to `f32`): `x <= threshold`
    /// goes left, as in scikit-learn.
    #[inline(always)]
    fn step(&self, row: &[f32]) -> u32 {
        let x = row.get(self.feature as usize).copied().unwrap_or(0.0);
        self.left + u32::from(x > self.threshold)
    }
}

/// The largest `f32` not above `t` (`-inf` below the `f32` range, `f32::MAX`
/// above it). For every `f32` value `x`, `x <= t` (compared in `f64`, as
/// scikit-learn compares) exactly when `x <= f32_at_most(t)`: if `x <= t`,
/// `x` is an `f32` not above `t`, so at most the largest one; conversely
/// `x <= f32_at_most(t) <= t`.
fn f32_at_most(t: f64) -> f32 {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "rounded, then corrected down"
    )]
    let near = t as f32;
    if f64::from(near) > t {
        near.next_down()
    } else {
        near
    }
}

/// Where a tree starts in the node array, and its depth (steps to any leaf).
#[derive(Debug, Clone, Copy)]
struct TreeRoot {
    root: u32,
    depth: u32,
}

/// Rows scored together, tree by tree, so each tree's nodes stay in cache
/// and the rows' walks overlap in the CPU.
const BLOCK_ROWS: usize = 256;

/// Trees walked together for a single event, for the same overlap.
const TREE_GROUP: usize = 8;

/// A fitted Isolation Forest.
///
/// Built by [`IsolationForestParams::fit`](super::IsolationForestParams::fit)
/// or loaded with [`IsolationForest::from_json`]; immutable and `Send + Sync`,
/// so one model serves every thread.
#[derive(Debug, Clone)]
pub struct IsolationForest {
    features: Vec<String>,
    index: BTreeMap<String, usize>,
    trees: Vec<TreeSpec>,
    nodes: Vec<Node>,
    leaf_value: Vec<f64>,
    roots: Vec<TreeRoot>,
    max_samples: u64,
    offset: f64,
    contamination: Option<Contamination>,
    denominator: f64,
}

impl IsolationForest {
    /// Builds a model from trees, checking everything a tampered or truncated
    /// file could get wrong. `path_prefix` names the trees in errors.
    pub(crate) fn build(
        features: Vec<String>,
        trees: Vec<TreeSpec>,
        max_samples: u64,
        offset: f64,
        contamination: Option<Contamination>,
    ) -> Result<IsolationForest, ModelError> {
        if features.is_empty() {
            return Err(ModelError::at(
                ModelErrorKind::Invalid,
                "features",
                "a model needs at least one feature",
            ));
        }
        let mut index = BTreeMap::new();
        for (i, name) in features.iter().enumerate() {
            if name.is_empty() {
                return Err(ModelError::at(
                    ModelErrorKind::Invalid,
                    format!("features[{i}]"),
                    "feature names must not be empty",
                ));
            }
            if index.insert(name.clone(), i).is_some() {
                return Err(ModelError::at(
                    ModelErrorKind::Invalid,
                    format!("features[{i}]"),
                    format!("feature `{name}` appears twice"),
                ));
            }
        }
        if trees.is_empty() {
            return Err(ModelError::at(
                ModelErrorKind::Invalid,
                "trees",
                "a model needs at least one tree",
            ));
        }
        if max_samples == 0 {
            return Err(ModelError::at(
                ModelErrorKind::Invalid,
                "max_samples",
                "must be at least 1",
            ));
        }
        if !offset.is_finite() {
            return Err(ModelError::at(
                ModelErrorKind::Invalid,
                "offset",
                format!("must be finite, found {offset}"),
            ));
        }
        let mut nodes = Vec::new();
        let mut leaf_value = Vec::new();
        let mut roots = Vec::with_capacity(trees.len());
        for (t, tree) in trees.iter().enumerate() {
            let root = u32::try_from(nodes.len()).map_err(|_| too_many_nodes())?;
            let depth = compile_tree(tree, t, features.len(), &mut nodes, &mut leaf_value)?;
            roots.push(TreeRoot { root, depth });
        }
        // As scikit-learn: `len(estimators_) * _average_path_length([max_samples])`.
        #[expect(
            clippy::cast_precision_loss,
            reason = "tree and sample counts are far below 2^52"
        )]
        let denominator = trees.len() as f64 * average_path_length(max_samples as f64);
        Ok(IsolationForest {
            features,
            index,
            trees,
            nodes,
            leaf_value,
            roots,
            max_samples,
            offset,
            contamination,
            denominator,
        })
    }

    /// The feature names, in column order.
    pub fn features(&self) -> &[String] {
        &self.features
    }

    /// The number of trees.
    pub fn n_estimators(&self) -> usize {
        self.roots.len()
    }

    /// The number of samples each tree was grown from (scikit-learn's `max_samples_`).
    pub fn max_samples(&self) -> u64 {
        self.max_samples
    }

    /// The offset subtracted from `score_samples` by
    /// [`decision_function`](Self::decision_function) (scikit-learn's `offset_`):
    /// `-0.5` for `contamination = auto`, else the contamination percentile of
    /// the training scores.
    pub fn offset(&self) -> f64 {
        self.offset
    }

    /// The contamination the model was trained with, when known.
    pub fn contamination(&self) -> Option<Contamination> {
        self.contamination
    }

    /// The anomaly score threshold equivalent to the model's offset: events
    /// scoring above it are the ones [`predict`](Self::predict) calls outliers.
    pub fn score_threshold(&self) -> f64 {
        -self.offset
    }

    pub(crate) fn trees(&self) -> &[TreeSpec] {
        &self.trees
    }

    /// The anomaly score of one event given in column order: `2^(-E(h(x)) /
    /// c(max_samples))`, in (0, 1], higher is more anomalous.
    ///
    /// Errors when `row` has the wrong length or holds a value that is NaN,
    /// infinite or beyond the `f32` range scikit-learn compares in.
    pub fn score(&self, row: &[f64]) -> Result<f64, AnomalyError> {
        self.check_row(row, 0)?;
        Ok(self.score_unchecked(row))
    }

    /// The anomaly score of one event given by feature name. Every feature of
    /// the model must be present, and no other.
    pub fn score_named<'a, I>(&self, features: I) -> Result<f64, AnomalyError>
    where
        I: IntoIterator<Item = (&'a str, f64)>,
    {
        let row = self.row_from_named(features)?;
        self.score(&row)
    }

    /// Orders named feature values into a row in the model's column order,
    /// refusing missing, unknown and duplicate features.
    pub fn row_from_named<'a, I>(&self, features: I) -> Result<Vec<f64>, AnomalyError>
    where
        I: IntoIterator<Item = (&'a str, f64)>,
    {
        let mut row = vec![f64::NAN; self.features.len()];
        let mut seen = vec![false; self.features.len()];
        for (name, value) in features {
            let Some(&i) = self.index.get(name) else {
                return Err(AnomalyError::UnknownFeature {
                    feature: name.to_owned(),
                    expected: self.features.join(", "),
                });
            };
            if let (Some(slot), Some(s)) = (row.get_mut(i), seen.get_mut(i)) {
                *slot = value;
                *s = true;
            }
        }
        if let Some(i) = seen.iter().position(|s| !s) {
            return Err(AnomalyError::MissingFeature {
                feature: self.features.get(i).cloned().unwrap_or_default(),
            });
        }
        Ok(row)
    }

    /// Anomaly scores of a batch (rows are events, columns the model's
    /// features), in (0, 1], higher is more anomalous. Large batches are
    /// scored in parallel.
    pub fn scores(&self, x: ArrayView2<'_, f64>) -> Result<Array1<f64>, AnomalyError> {
        self.check_batch(x)?;
        let n = x.nrows();
        let mut out = Array1::<f64>::zeros(n);
        let Some(dst) = out.as_slice_mut() else {
            return Err(AnomalyError::Linfa("output array is not contiguous".into()));
        };
        let score_rows = |start: usize, dst: &mut [f64]| {
            let d = self.features.len();
            let mut block = vec![0.0f32; BLOCK_ROWS * d];
            for (b, chunk) in dst.chunks_mut(BLOCK_ROWS).enumerate() {
                let first = start + b * BLOCK_ROWS;
                let rows = x.slice_axis(Axis(0), ndarray::Slice::from(first..first + chunk.len()));
                for (dst_row, src_row) in block.chunks_exact_mut(d).zip(rows.outer_iter()) {
                    for (v, &src) in dst_row.iter_mut().zip(src_row.iter()) {
                        *v = as_f32(src);
                    }
                }
                self.score_block(block.get(..chunk.len() * d).unwrap_or(&[]), chunk);
            }
        };
        if n < PARALLEL_MIN_ROWS {
            score_rows(0, dst);
        } else {
            dst.par_chunks_mut(BATCH_CHUNK)
                .enumerate()
                .for_each(|(c, chunk)| score_rows(c * BATCH_CHUNK, chunk));
        }
        Ok(out)
    }

    /// scikit-learn's `score_samples`: the opposite of [`scores`](Self::scores).
    pub fn score_samples(&self, x: ArrayView2<'_, f64>) -> Result<Array1<f64>, AnomalyError> {
        Ok(self.scores(x)?.mapv_into(|s| -s))
    }

    /// scikit-learn's `decision_function`: `score_samples - offset`; negative
    /// for outliers.
    pub fn decision_function(&self, x: ArrayView2<'_, f64>) -> Result<Array1<f64>, AnomalyError> {
        let offset = self.offset;
        Ok(self.scores(x)?.mapv_into(|s| -s - offset))
    }

    /// scikit-learn's `predict`: `-1` for outliers (`decision_function < 0`),
    /// `1` for inliers.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Result<Array1<i8>, AnomalyError> {
        let offset = self.offset;
        Ok(self
            .scores(x)?
            .mapv(|s| if -s - offset < 0.0 { -1 } else { 1 }))
    }

    /// Indices of the rows whose anomaly score is at least `threshold`, with
    /// their scores: the pre-filter that keeps ordinary events away from
    /// slower reviewers.
    pub fn filter(
        &self,
        x: ArrayView2<'_, f64>,
        threshold: f64,
    ) -> Result<(Vec<usize>, Vec<f64>), AnomalyError> {
        let scores = self.scores(x)?;
        let mut rows = Vec::new();
        let mut kept = Vec::new();
        for (i, &s) in scores.iter().enumerate() {
            if s >= threshold {
                rows.push(i);
                kept.push(s);
            }
        }
        Ok((rows, kept))
    }

    fn check_batch(&self, x: ArrayView2<'_, f64>) -> Result<(), AnomalyError> {
        if x.ncols() != self.features.len() {
            return Err(AnomalyError::Shape {
                expected: self.features.len(),
                found: x.ncols(),
            });
        }
        for (i, row) in x.axis_iter(Axis(0)).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                if !scorable(v) {
                    return Err(self.bad_value(i, j, v));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn check_row(&self, row: &[f64], row_index: usize) -> Result<(), AnomalyError> {
        if row.len() != self.features.len() {
            return Err(AnomalyError::Shape {
                expected: self.features.len(),
                found: row.len(),
            });
        }
        for (j, &v) in row.iter().enumerate() {
            if !scorable(v) {
                return Err(self.bad_value(row_index, j, v));
            }
        }
        Ok(())
    }

    fn bad_value(&self, row: usize, column: usize, v: f64) -> AnomalyError {
        let message = if v.is_nan() {
            "value is NaN".to_owned()
        } else if v.is_infinite() {
            format!("value is {v}")
        } else {
            format!("value {v} is beyond the float32 range the model compares in")
        };
        AnomalyError::Value {
            row,
            feature: self.features.get(column).cloned().unwrap_or_default(),
            message,
        }
    }

    /// Scores a row already checked: length and values.
    pub(crate) fn score_unchecked(&self, row: &[f64]) -> f64 {
        let mut stack = [0.0f32; 32];
        let mut heap = Vec::new();
        let x: &mut [f32] = match stack.get_mut(..row.len()) {
            Some(c) => c,
            None => {
                heap.resize(row.len(), 0.0);
                &mut heap
            }
        };
        for (c, &v) in x.iter_mut().zip(row) {
            *c = as_f32(v);
        }
        let x: &[f32] = x;
        let mut depth = 0.0;
        for group in self.roots.chunks(TREE_GROUP) {
            let mut idx = [0u32; TREE_GROUP];
            let mut steps = 0;
            for (i, t) in idx.iter_mut().zip(group) {
                *i = t.root;
                steps = steps.max(t.depth);
            }
            for _ in 0..steps {
                for i in idx.iter_mut().take(group.len()) {
                    *i = self.nodes.get(*i as usize).map_or(*i, |n| n.step(x));
                }
            }
            // In tree order, as scikit-learn sums.
            for &i in idx.iter().take(group.len()) {
                depth += self.leaf_value.get(i as usize).copied().unwrap_or(f64::NAN);
            }
        }
        self.to_score(depth)
    }

    /// Scores the rows of `block` (row-major, values cast to `f32`) into
    /// `out`, tree by tree.
    fn score_block(&self, block: &[f32], out: &mut [f64]) {
        let d = self.features.len();
        let n = out.len().min(BLOCK_ROWS);
        let mut idx = [0u32; BLOCK_ROWS];
        let mut depth = [0.0f64; BLOCK_ROWS];
        for t in &self.roots {
            for i in idx.iter_mut().take(n) {
                *i = t.root;
            }
            for _ in 0..t.depth {
                for (i, row) in idx.iter_mut().zip(block.chunks_exact(d)) {
                    *i = self
                        .nodes
                        .get(*i as usize)
                        .map_or(*i, |node| node.step(row));
                }
            }
            // Per row in tree order, as scikit-learn sums.
            for (acc, &i) in depth.iter_mut().zip(idx.iter()).take(n) {
                *acc += self.leaf_value.get(i as usize).copied().unwrap_or(f64::NAN);
            }
        }
        for (o, &dep) in out.iter_mut().zip(depth.iter()) {
            *o = self.to_score(dep);
        }
    }

    /// The anomaly score of a summed path length, as scikit-learn computes it.
    fn to_score(&self, depth: f64) -> f64 {
        let ratio = if self.denominator == 0.0 {
            1.0
        } else {
            depth / self.denominator
        };
        2f64.powf(-ratio)
    }
}

/// A value as scikit-learn's trees compare it: cast to `f32`.
#[inline(always)]
fn as_f32(v: f64) -> f32 {
    #[expect(clippy::cast_possible_truncation, reason = "float32 cast is the point")]
    let f = v as f32;
    f
}

/// Whether a value can be scored: finite, and finite once cast to `f32`.
fn scorable(v: f64) -> bool {
    #[expect(clippy::cast_possible_truncation, reason = "float32 range check")]
    let f = v as f32;
    v.is_finite() && f.is_finite()
}

fn too_many_nodes() -> ModelError {
    ModelError::at(
        ModelErrorKind::Invalid,
        "trees",
        "the forest holds more nodes than a model may (2^32 - 1)",
    )
}

fn invalid(path: String, message: impl Into<String>) -> ModelError {
    ModelError::at(ModelErrorKind::Invalid, path, message)
}

/// Checks one tree and appends it to `out` in breadth-first order with
/// adjacent children. Every node must be reached from the root exactly once
/// (no cycles, no shared or orphan nodes) within [`MAX_TREE_DEPTH`].
fn compile_tree(
    tree: &TreeSpec,
    t: usize,
    n_model_features: usize,
    out: &mut Vec<Node>,
    leaf_value: &mut Vec<f64>,
) -> Result<u32, ModelError> {
    let p = |field: &str| format!("trees[{t}].{field}");
    let n = tree.children_left.len();
    if n == 0 {
        return Err(invalid(
            p("children_left"),
            "a tree needs at least one node",
        ));
    }
    for (field, len) in [
        ("children_right", tree.children_right.len()),
        ("feature", tree.feature.len()),
        ("threshold", tree.threshold.len()),
        ("n_node_samples", tree.n_node_samples.len()),
    ] {
        if len != n {
            return Err(invalid(
                p(field),
                format!("has {len} entries, `children_left` has {n}"),
            ));
        }
    }
    if tree.features.is_empty() {
        return Err(invalid(p("features"), "a tree needs at least one feature"));
    }
    let mut local = Vec::with_capacity(tree.features.len());
    let mut used = vec![false; n_model_features];
    for (i, &f) in tree.features.iter().enumerate() {
        match used.get_mut(f) {
            None => {
                return Err(invalid(
                    format!("trees[{t}].features[{i}]"),
                    format!(
                        "feature index {f} does not exist; the model has {n_model_features} features"
                    ),
                ));
            }
            Some(u) if *u => {
                return Err(invalid(
                    format!("trees[{t}].features[{i}]"),
                    format!("feature index {f} appears twice"),
                ));
            }
            Some(u) => *u = true,
        }
        local.push(u32::try_from(f).map_err(|_| too_many_nodes())?);
    }

    let base = out.len();
    let mut seen = vec![false; n];
    // (source node, slot in `out`, depth)
    let mut queue = std::collections::VecDeque::new();
    out.push(Node::PLACEHOLDER);
    leaf_value.push(0.0);
    let mut max_depth = 0usize;
    queue.push_back((0usize, base, 0usize));
    if let Some(s) = seen.get_mut(0) {
        *s = true;
    }
    let mut reached = 1usize;
    while let Some((src, slot, depth)) = queue.pop_front() {
        let at = |field: &str| format!("trees[{t}].{field}[{src}]");
        let (Some(&left), Some(&right), Some(&feat), Some(&thr), Some(&count)) = (
            tree.children_left.get(src),
            tree.children_right.get(src),
            tree.feature.get(src),
            tree.threshold.get(src),
            tree.n_node_samples.get(src),
        ) else {
            return Err(invalid(p("children_left"), "node index out of range"));
        };
        if count == 0 {
            return Err(invalid(
                at("n_node_samples"),
                "node sample counts must be at least 1",
            ));
        }
        let node = if left == -1 && right == -1 {
            // scikit-learn: `_decision_path_lengths[leaf] +
            // _average_path_length_per_tree[leaf] - 1.0`, where the path
            // length counts nodes (the root is 1).
            #[expect(
                clippy::cast_precision_loss,
                reason = "depth and counts are far below 2^52"
            )]
            let value = ((depth + 1) as f64 + average_path_length(count as f64)) - 1.0;
            if let Some(v) = leaf_value.get_mut(slot) {
                *v = value;
            }
            max_depth = max_depth.max(depth);
            Node {
                threshold: f32::INFINITY,
                feature: 0,
                left: u32::try_from(slot).map_err(|_| too_many_nodes())?,
            }
        } else {
            if left < 0 || right < 0 {
                return Err(invalid(
                    at(if left < 0 {
                        "children_left"
                    } else {
                        "children_right"
                    }),
                    "an internal node needs two children (a leaf has -1 for both)",
                ));
            }
            if depth + 1 > MAX_TREE_DEPTH {
                return Err(invalid(
                    at("children_left"),
                    format!("the tree is deeper than {MAX_TREE_DEPTH} levels"),
                ));
            }
            let feature = usize::try_from(feat)
                .ok()
                .and_then(|f| local.get(f).copied())
                .ok_or_else(|| {
                    invalid(
                        at("feature"),
                        format!(
                            "feature {feat} is not one of the tree's {} features",
                            local.len()
                        ),
                    )
                })?;
            if !thr.is_finite() {
                return Err(invalid(
                    at("threshold"),
                    format!("threshold must be finite, found {thr}"),
                ));
            }
            for (field, child) in [("children_left", left), ("children_right", right)] {
                let c = usize::try_from(child).unwrap_or(usize::MAX);
                match seen.get_mut(c) {
                    None => {
                        return Err(invalid(
                            at(field),
                            format!("child {child} is out of range (the tree has {n} nodes)"),
                        ));
                    }
                    Some(s) if *s => {
                        return Err(invalid(
                            at(field),
                            format!(
                                "node {child} is reached twice: the tree has a cycle or a shared node"
                            ),
                        ));
                    }
                    Some(s) => *s = true,
                }
            }
            reached += 2;
            let first = out.len();
            let left_slot = u32::try_from(first).map_err(|_| too_many_nodes())?;
            u32::try_from(first + 1).map_err(|_| too_many_nodes())?;
            for child in [left, right] {
                out.push(Node::PLACEHOLDER);
                leaf_value.push(0.0);
                queue.push_back((
                    usize::try_from(child).unwrap_or(0),
                    out.len() - 1,
                    depth + 1,
                ));
            }
            Node {
                threshold: f32_at_most(thr),
                feature,
                left: left_slot,
            }
        };
        if let Some(o) = out.get_mut(slot) {
            *o = node;
        }
    }
    if reached != n {
        let orphan = seen.iter().position(|s| !s).unwrap_or(0);
        return Err(invalid(
            format!("trees[{t}].children_left"),
            format!("node {orphan} is not reachable from the root"),
        ));
    }
    u32::try_from(max_depth).map_err(|_| too_many_nodes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::float_cmp)]
    use super::*;

    /// The `f32` comparison gives scikit-learn's `f64` comparison's answer,
    /// for thresholds on, between and beyond `f32` values.
    #[test]
    fn f32_thresholds_compare_as_f64_ones() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut thresholds = vec![
            0.0,
            -0.0,
            1.0,
            0.1,
            -0.1,
            1e-45,
            -1e-45,
            f64::from(f32::MAX),
            f64::from(f32::MAX) * 1.5,
            -f64::from(f32::MAX) * 1.5,
            f64::from(f32::MIN_POSITIVE),
            1e300,
            -1e300,
        ];
        for _ in 0..20_000 {
            let x = (rng.f64() - 0.5) * 10f64.powi(rng.i32(-40..40));
            thresholds.push(x);
            // Just above and below an f32 value.
            let f = f64::from(as_f32(x));
            thresholds.push(f.next_up());
            thresholds.push(f.next_down());
        }
        for &t in &thresholds {
            let at_most = f32_at_most(t);
            assert!(f64::from(at_most) <= t, "{t}");
            let probe = as_f32(t);
            for x in [
                probe,
                probe.next_up(),
                probe.next_down(),
                at_most,
                at_most.next_up(),
                0.0,
                -0.0,
                f32::MAX,
                -f32::MAX,
            ] {
                if x.is_finite() {
                    assert_eq!(f64::from(x) <= t, x <= at_most, "x {x}, threshold {t}");
                }
            }
        }
    }
}
