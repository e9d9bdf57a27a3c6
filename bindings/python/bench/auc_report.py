"""ROC AUC of models trained natively (agentriage) and by scikit-learn.

Not a test: a report. For several labelled data sets (outlier class known)
and several seeds, both libraries train IsolationForest(n_estimators=100,
max_samples='auto') on the same data and score it; the table gives both
AUCs and their difference, and the mean difference per data set.

Data sets (all shipped with scikit-learn, no downloads):
- breast_cancer: malignant as the anomaly class (212 of 569);
- wine: class 2 subsampled to 10 events as anomalies among classes 0 and 1;
- digits: digit 0 as inliers, 30 sevens as anomalies;
- iris: setosa and versicolor as inliers, 8 virginica as anomalies;
- synthetic: 2000 Gaussian events in 8 dimensions with 2% uniform outliers.

    python bindings/python/bench/auc_report.py [--seeds 5]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from sklearn import datasets
from sklearn.ensemble import IsolationForest as SkIsolationForest
from sklearn.metrics import roc_auc_score

from agentriage import anomaly


def labelled() -> dict[str, tuple[Any, Any]]:
    rng = np.random.default_rng(0)
    out: dict[str, tuple[Any, Any]] = {}
    bc = datasets.load_breast_cancer()
    out["breast_cancer"] = (bc.data, 1 - bc.target)
    wine = datasets.load_wine()
    inl = wine.data[wine.target != 2]
    odd = wine.data[wine.target == 2][rng.choice(int((wine.target == 2).sum()), 10, replace=False)]
    out["wine"] = (np.vstack([inl, odd]), np.r_[np.zeros(len(inl)), np.ones(len(odd))])
    digits = datasets.load_digits()
    inl = digits.data[digits.target == 0]
    odd = digits.data[digits.target == 7][:30]
    out["digits"] = (np.vstack([inl, odd]), np.r_[np.zeros(len(inl)), np.ones(len(odd))])
    iris = datasets.load_iris()
    inl = iris.data[iris.target != 2]
    odd = iris.data[iris.target == 2][:8]
    out["iris"] = (np.vstack([inl, odd]), np.r_[np.zeros(len(inl)), np.ones(len(odd))])
    x = rng.normal(0.0, 1.0, size=(2000, 8))
    y = np.zeros(2000)
    idx = rng.choice(2000, 40, replace=False)
    x[idx] = rng.uniform(-6.0, 6.0, size=(40, 8))
    y[idx] = 1
    out["synthetic"] = (x, y)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    print(f"{'data set':15s} {'seed':>4s} {'agentriage':>11s} {'scikit-learn':>13s} {'diff':>8s}")
    worst = 0.0
    for name, (x, y) in labelled().items():
        diffs = []
        for seed in range(args.seeds):
            ours = roc_auc_score(y, anomaly.train(x, seed=seed).scores(x))
            theirs = roc_auc_score(y, -SkIsolationForest(random_state=seed).fit(x).score_samples(x))
            diffs.append(ours - theirs)
            print(f"{name:15s} {seed:4d} {ours:11.4f} {theirs:13.4f} {ours - theirs:+8.4f}")
        mean = float(np.mean(diffs))
        worst = max(worst, abs(mean))
        print(f"{name:15s} mean {'':11s} {'':13s} {mean:+8.4f}")
    print(f"largest |mean difference|: {worst:.4f}")


if __name__ == "__main__":
    main()
