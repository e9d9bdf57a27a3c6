//! The fitted model: trees flattened into one array of nodes, scored exactly
//! as scikit-learn scores them.

use std::collections::BTreeMap;

use ndarray::{Array1, ArrayView2, Axis};
use rayon::prelude::*;

use super::error::{AnomalyError, ModelError, ModelErrorKind};
use super::train::Contamination;

/// Euler–Mascheroni constant, as `numpy.euler_gamma`.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Marks a leaf in [`Node::feature`].
const LEAF: u32 = u32::MAX;

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

/// A node of the flattened forest. Children are adjacent: the right child of
/// an internal node is `left + 1`. A leaf holds in `value` the path length
/// it contributes, `depth + c(n_node_samples)` (root depth 0).
#[derive(Debug, Clone, Copy)]
struct Node {
    value: f64,
    feature: u32,
    left: u32,
}

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
    roots: Vec<u32>,
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
        let mut roots = Vec::with_capacity(trees.len());
        for (t, tree) in trees.iter().enumerate() {
            let root = u32::try_from(nodes.len()).map_err(|_| too_many_nodes())?;
            compile_tree(tree, t, features.len(), &mut nodes)?;
            roots.push(root);
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
        let score_rows = |start: usize, dst: &mut [f64]| {
            let mut buf = vec![0.0; self.features.len()];
            for (k, slot) in dst.iter_mut().enumerate() {
                let r = x.row(start + k);
                *slot = match r.as_slice() {
                    Some(s) => self.score_unchecked(s),
                    None => {
                        for (b, v) in buf.iter_mut().zip(r.iter()) {
                            *b = *v;
                        }
                        self.score_unchecked(&buf)
                    }
                };
            }
        };
        let Some(dst) = out.as_slice_mut() else {
            return Err(AnomalyError::Linfa("output array is not contiguous".into()));
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
        let mut depth = 0.0;
        for &root in &self.roots {
            depth += self.leaf_value(root, row);
        }
        self.to_score(depth)
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

    #[inline]
    fn leaf_value(&self, root: u32, row: &[f64]) -> f64 {
        let mut i = root as usize;
        // Each step moves to a node placed after the current one (checked at
        // load), so the walk ends within the tree's node count.
        loop {
            let Some(node) = self.nodes.get(i) else {
                return f64::NAN;
            };
            if node.feature == LEAF {
                return node.value;
            }
            // scikit-learn validates inputs as float32 and compares them with
            // float64 thresholds: `x <= threshold` goes left.
            #[expect(clippy::cast_possible_truncation, reason = "float32 cast is the point")]
            let x = f64::from(row.get(node.feature as usize).copied().unwrap_or(f64::NAN) as f32);
            i = node.left as usize + usize::from(x > node.value || x.is_nan());
        }
    }
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
) -> Result<(), ModelError> {
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
    out.push(Node {
        value: 0.0,
        feature: LEAF,
        left: 0,
    });
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
            Node {
                value,
                feature: LEAF,
                left: 0,
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
                out.push(Node {
                    value: 0.0,
                    feature: LEAF,
                    left: 0,
                });
                queue.push_back((
                    usize::try_from(child).unwrap_or(0),
                    out.len() - 1,
                    depth + 1,
                ));
            }
            Node {
                value: thr,
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
    Ok(())
}
