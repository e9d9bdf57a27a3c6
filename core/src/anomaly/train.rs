//! Training: random isolation trees grown as scikit-learn grows them
//! (`bootstrap = false`, per-tree feature subsets, depth limit
//! `ceil(log2(max_samples))`), seeded and reproducible whatever the number of
//! threads.

use std::collections::HashSet;

use ndarray::ArrayView2;
use rayon::prelude::*;

use super::error::AnomalyError;
use super::forest::{IsolationForest, TreeSpec};

/// How many samples each tree is grown from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxSamples {
    /// `min(256, n_samples)`, scikit-learn's default.
    Auto,
    /// This many (all samples when there are fewer).
    Count(usize),
    /// This fraction of the samples, in (0, 1].
    Fraction(f64),
}

/// How many features each tree draws (without replacement).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxFeatures {
    /// This many, at most the number of features.
    Count(usize),
    /// `max(1, floor(fraction * n_features))`, fraction in (0, 1].
    Fraction(f64),
}

/// The expected share of outliers, which sets the model's offset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Contamination {
    /// Offset `-0.5`, as in the original paper.
    Auto,
    /// The offset is this percentile of the training scores, in (0, 0.5].
    Fraction(f64),
}

/// Training parameters of an [`IsolationForest`], scikit-learn's defaults
/// unless changed: 100 trees, `max_samples = auto`, `contamination = auto`,
/// all features; seed 0; trees grown in parallel.
#[derive(Debug, Clone, PartialEq)]
pub struct IsolationForestParams {
    n_estimators: usize,
    max_samples: MaxSamples,
    max_features: MaxFeatures,
    contamination: Contamination,
    seed: u64,
    parallel: bool,
    feature_names: Option<Vec<String>>,
}

impl Default for IsolationForestParams {
    fn default() -> Self {
        IsolationForestParams {
            n_estimators: 100,
            max_samples: MaxSamples::Auto,
            max_features: MaxFeatures::Fraction(1.0),
            contamination: Contamination::Auto,
            seed: 0,
            parallel: true,
            feature_names: None,
        }
    }
}

impl IsolationForest {
    /// Default training parameters.
    pub fn params() -> IsolationForestParams {
        IsolationForestParams::default()
    }
}

impl IsolationForestParams {
    /// The number of trees (at least 1).
    #[must_use]
    pub fn n_estimators(mut self, n: usize) -> Self {
        self.n_estimators = n;
        self
    }

    /// The number of samples per tree.
    #[must_use]
    pub fn max_samples(mut self, m: MaxSamples) -> Self {
        self.max_samples = m;
        self
    }

    /// The number of features per tree.
    #[must_use]
    pub fn max_features(mut self, m: MaxFeatures) -> Self {
        self.max_features = m;
        self
    }

    /// The expected share of outliers.
    #[must_use]
    pub fn contamination(mut self, c: Contamination) -> Self {
        self.contamination = c;
        self
    }

    /// The random seed: the same seed and data give the same model.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Whether to grow trees on several threads (the model is the same).
    #[must_use]
    pub fn parallel(mut self, parallel: bool) -> Self {
        self.parallel = parallel;
        self
    }

    /// Names of the columns; `x0`, `x1`, … when not given.
    #[must_use]
    pub fn feature_names(mut self, names: Vec<String>) -> Self {
        self.feature_names = Some(names);
        self
    }

    /// Trains a model on `x` (rows are samples).
    pub fn fit(&self, x: ArrayView2<'_, f64>) -> Result<IsolationForest, AnomalyError> {
        self.fit_with_progress(x, &|_| {})
    }

    /// Trains a model, calling `progress` with the number of trees grown so
    /// far as trees complete (from any thread).
    pub fn fit_with_progress(
        &self,
        x: ArrayView2<'_, f64>,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<IsolationForest, AnomalyError> {
        let (n, d) = x.dim();
        let names = self.names(d)?;
        if n == 0 {
            return Err(AnomalyError::Empty);
        }
        let max_samples = self.resolve_max_samples(n)?;
        let n_features = self.resolve_max_features(d)?;
        if self.n_estimators == 0 {
            return Err(param("n_estimators", "must be at least 1".into()));
        }
        if let Contamination::Fraction(c) = self.contamination
            && !(c > 0.0 && c <= 0.5)
        {
            return Err(param(
                "contamination",
                format!("must be `auto` or a fraction in (0, 0.5], found {c}"),
            ));
        }
        // Columns as float32, as scikit-learn validates training data.
        let mut columns = vec![Vec::with_capacity(n); d];
        for (i, row) in x.outer_iter().enumerate() {
            for (j, (&v, col)) in row.iter().zip(columns.iter_mut()).enumerate() {
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "float32 is the training precision"
                )]
                let f = v as f32;
                if !v.is_finite() || !f.is_finite() {
                    return Err(AnomalyError::Value {
                        row: i,
                        feature: names.get(j).cloned().unwrap_or_default(),
                        message: if v.is_nan() {
                            "value is NaN".into()
                        } else {
                            format!("value {v} is not a finite float32")
                        },
                    });
                }
                col.push(f);
            }
        }
        let max_depth = ceil_log2(max_samples.max(2));
        let done = std::sync::atomic::AtomicUsize::new(0);
        let grow = |t: usize| {
            let tree = grow_tree(
                &columns,
                n,
                max_samples,
                n_features,
                max_depth,
                tree_seed(self.seed, t),
            );
            let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress(k);
            tree
        };
        let trees: Vec<TreeSpec> = if self.parallel {
            (0..self.n_estimators).into_par_iter().map(grow).collect()
        } else {
            (0..self.n_estimators).map(grow).collect()
        };
        let model = IsolationForest::build(
            names,
            trees,
            max_samples as u64,
            -0.5,
            Some(self.contamination),
        )
        .map_err(|e| AnomalyError::Linfa(format!("internal: trained model is invalid: {e}")))?;
        match self.contamination {
            Contamination::Auto => Ok(model),
            Contamination::Fraction(c) => {
                let mut scores = model.score_samples(x)?.to_vec();
                let offset = percentile(&mut scores, 100.0 * c);
                model.with_offset(offset)
            }
        }
    }

    fn names(&self, d: usize) -> Result<Vec<String>, AnomalyError> {
        if d == 0 {
            return Err(param("feature_names", "the input has no columns".into()));
        }
        match &self.feature_names {
            Some(names) if names.len() != d => Err(param(
                "feature_names",
                format!("{} names for {d} columns", names.len()),
            )),
            Some(names) => Ok(names.clone()),
            None => Ok((0..d).map(|i| format!("x{i}")).collect()),
        }
    }

    fn resolve_max_samples(&self, n: usize) -> Result<usize, AnomalyError> {
        match self.max_samples {
            MaxSamples::Auto => Ok(n.min(256)),
            MaxSamples::Count(0) => Err(param("max_samples", "must be at least 1".into())),
            MaxSamples::Count(k) => Ok(k.min(n)),
            MaxSamples::Fraction(f) if f > 0.0 && f <= 1.0 => {
                #[expect(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    clippy::cast_precision_loss,
                    reason = "as scikit-learn: int(f * n)"
                )]
                let k = (f * n as f64) as usize;
                if k == 0 {
                    Err(param(
                        "max_samples",
                        format!("{f} of {n} samples is no sample"),
                    ))
                } else {
                    Ok(k)
                }
            }
            MaxSamples::Fraction(f) => Err(param(
                "max_samples",
                format!("a fraction must be in (0, 1], found {f}"),
            )),
        }
    }

    fn resolve_max_features(&self, d: usize) -> Result<usize, AnomalyError> {
        match self.max_features {
            MaxFeatures::Count(k) if k >= 1 && k <= d => Ok(k),
            MaxFeatures::Count(k) => Err(param(
                "max_features",
                format!("must be in 1..={d}, found {k}"),
            )),
            MaxFeatures::Fraction(f) if f > 0.0 && f <= 1.0 => {
                #[expect(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    clippy::cast_precision_loss,
                    reason = "as scikit-learn: max(1, int(f * d))"
                )]
                let k = (f * d as f64) as usize;
                Ok(k.max(1))
            }
            MaxFeatures::Fraction(f) => Err(param(
                "max_features",
                format!("a fraction must be in (0, 1], found {f}"),
            )),
        }
    }
}

impl IsolationForest {
    fn with_offset(self, offset: f64) -> Result<IsolationForest, AnomalyError> {
        let contamination = self.contamination();
        let features = self.features().to_vec();
        let trees = self.trees().to_vec();
        IsolationForest::build(features, trees, self.max_samples(), offset, contamination)
            .map_err(|e| AnomalyError::Linfa(format!("internal: trained model is invalid: {e}")))
    }
}

fn param(name: &'static str, message: String) -> AnomalyError {
    AnomalyError::Parameter { name, message }
}

fn ceil_log2(n: usize) -> usize {
    (usize::BITS - (n - 1).leading_zeros()) as usize
}

/// An independent seed per tree, so trees do not depend on the thread that
/// grows them (SplitMix64 finaliser).
fn tree_seed(seed: u64, tree: usize) -> u64 {
    let mut z = seed
        ^ (tree as u64)
            .wrapping_add(1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `k` distinct indices of `0..n`, in random order.
fn sample_without_replacement(rng: &mut fastrand::Rng, n: usize, k: usize) -> Vec<usize> {
    if k.saturating_mul(4) < n {
        let mut seen = HashSet::with_capacity(k * 2);
        let mut out = Vec::with_capacity(k);
        while out.len() < k {
            let i = rng.usize(..n);
            if seen.insert(i) {
                out.push(i);
            }
        }
        out
    } else {
        let mut all: Vec<usize> = (0..n).collect();
        for i in 0..k {
            let j = rng.usize(i..n);
            all.swap(i, j);
        }
        all.truncate(k);
        all
    }
}

/// numpy's `percentile(a, q)` with the default linear interpolation.
pub(crate) fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    #[expect(
        clippy::cast_precision_loss,
        reason = "sample counts are far below 2^52"
    )]
    let virtual_index = (n - 1) as f64 * (q / 100.0);
    let lo = virtual_index.floor();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "in 0..n"
    )]
    let lo_i = (lo as usize).min(n - 1);
    let hi_i = (lo_i + 1).min(n - 1);
    let t = virtual_index - lo;
    let (a, b) = (
        values.get(lo_i).copied().unwrap_or(f64::NAN),
        values.get(hi_i).copied().unwrap_or(f64::NAN),
    );
    // numpy's `_lerp`, which is exact at both ends.
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// Grows one isolation tree on a subsample.
fn grow_tree(
    columns: &[Vec<f32>],
    n: usize,
    max_samples: usize,
    n_features: usize,
    max_depth: usize,
    seed: u64,
) -> TreeSpec {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut features = sample_without_replacement(&mut rng, columns.len(), n_features);
    features.sort_unstable();
    let rows = sample_without_replacement(&mut rng, n, max_samples);
    // The tree's own dense copy of its columns, in sample order.
    let local: Vec<Vec<f32>> = features
        .iter()
        .map(|&f| {
            let col = columns.get(f).map_or(&[][..], Vec::as_slice);
            rows.iter()
                .map(|&r| col.get(r).copied().unwrap_or(0.0))
                .collect()
        })
        .collect();
    let mut idx: Vec<usize> = (0..rows.len()).collect();
    let mut tree = TreeSpec {
        features,
        children_left: Vec::new(),
        children_right: Vec::new(),
        feature: Vec::new(),
        threshold: Vec::new(),
        n_node_samples: Vec::new(),
    };
    let mut order: Vec<usize> = (0..local.len()).collect();
    // (node, start, end, depth)
    let mut stack = vec![(new_node(&mut tree, rows.len()), 0usize, rows.len(), 0usize)];
    while let Some((node, lo, hi, depth)) = stack.pop() {
        let count = hi - lo;
        if count < 2 || depth >= max_depth {
            continue;
        }
        let Some(samples) = idx.get_mut(lo..hi) else {
            continue;
        };
        // Draw features without replacement until one is not constant here.
        let mut split = None;
        for j in 0..order.len() {
            let r = rng.usize(j..order.len());
            order.swap(j, r);
            let f = order.get(j).copied().unwrap_or(0);
            let Some(col) = local.get(f) else { continue };
            let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
            for &s in samples.iter() {
                let v = col.get(s).copied().unwrap_or(0.0);
                min = min.min(v);
                max = max.max(v);
            }
            if max > min {
                split = Some((f, f64::from(min), f64::from(max)));
                break;
            }
        }
        let Some((f, min, max)) = split else {
            continue;
        };
        let mut threshold = min + rng.f64() * (max - min);
        if threshold >= max {
            threshold = min;
        }
        let col = local.get(f).map_or(&[][..], Vec::as_slice);
        let mut mid = 0;
        for k in 0..samples.len() {
            let s = samples.get(k).copied().unwrap_or(0);
            if f64::from(col.get(s).copied().unwrap_or(0.0)) <= threshold {
                samples.swap(k, mid);
                mid += 1;
            }
        }
        let left = new_node(&mut tree, mid);
        let right = new_node(&mut tree, count - mid);
        if let (Some(l), Some(r), Some(fe), Some(th)) = (
            tree.children_left.get_mut(node),
            tree.children_right.get_mut(node),
            tree.feature.get_mut(node),
            tree.threshold.get_mut(node),
        ) {
            *l = left as i64;
            *r = right as i64;
            *fe = f as i64;
            *th = threshold;
        }
        stack.push((right, lo + mid, hi, depth + 1));
        stack.push((left, lo, lo + mid, depth + 1));
    }
    tree
}

fn new_node(tree: &mut TreeSpec, count: usize) -> usize {
    tree.children_left.push(-1);
    tree.children_right.push(-1);
    tree.feature.push(-2);
    tree.threshold.push(-2.0);
    tree.n_node_samples.push(count as u64);
    tree.children_left.len() - 1
}
