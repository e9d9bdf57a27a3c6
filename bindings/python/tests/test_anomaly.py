"""The anomaly model: scikit-learn parity to 1e-12, training, save/load,
bad models and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import require

require("numpy")
require("sklearn")

import numpy as np  # noqa: E402
from sklearn import datasets as sklearn_datasets  # noqa: E402
from sklearn import ensemble as sklearn_ensemble  # noqa: E402
from sklearn import metrics as sklearn_metrics  # noqa: E402

from agentriage import anomaly  # noqa: E402

TOL = 1e-12


def _datasets() -> dict[str, Any]:
    rng = np.random.default_rng(42)
    synthetic = np.vstack(
        [rng.normal(0.0, 1.0, size=(400, 6)), rng.uniform(-8.0, 8.0, size=(20, 6))]
    )
    # Repeated values and a constant column exercise ties and constant features.
    ties = np.round(rng.normal(0.0, 2.0, size=(300, 5)))
    ties[:, 2] = 3.0
    return {
        "iris": sklearn_datasets.load_iris().data,
        "wine": sklearn_datasets.load_wine().data,
        "breast_cancer": sklearn_datasets.load_breast_cancer().data,
        "digits": sklearn_datasets.load_digits().data,
        "synthetic": synthetic,
        "ties": ties,
    }


DATASETS = _datasets()

CONFIGS: list[dict[str, Any]] = [
    {},
    {"contamination": 0.1, "max_features": 0.5},
    {"contamination": 0.05, "max_samples": 0.5, "max_features": 2},
    {"n_estimators": 25, "max_samples": 64, "bootstrap": True},
    {"n_estimators": 10, "max_samples": 2},
    {"n_estimators": 10, "max_samples": 1},
]


def _probe(x: Any, rng: Any) -> Any:
    """Training rows, new rows inside and far outside the data's range, and
    rows that sit exactly on float64 values between float32 neighbours."""
    lo, hi = x.min(axis=0), x.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    inside = lo + rng.uniform(size=(200, x.shape[1])) * span
    outside = lo + rng.uniform(-3.0, 4.0, size=(50, x.shape[1])) * span
    nudged = x[:50] + rng.normal(0.0, 1e-9, size=(50, x.shape[1]))
    return np.vstack([x, inside, outside, nudged])


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "defaults")
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_imported_model_scores_as_sklearn(name: str, config: dict[str, Any]) -> None:
    x = DATASETS[name]
    if isinstance(config.get("max_features"), int) and config["max_features"] > x.shape[1]:
        pytest.skip("more features than the data has")
    sk = sklearn_ensemble.IsolationForest(random_state=7, **config).fit(x)
    model = anomaly.from_sklearn(sk)
    probe = _probe(x, np.random.default_rng(1))
    ours = model.score_samples(probe)
    theirs = sk.score_samples(probe)
    assert ours.shape == theirs.shape
    assert np.max(np.abs(ours - theirs)) <= TOL
    assert np.max(np.abs(model.decision_function(probe) - sk.decision_function(probe))) <= TOL
    assert np.array_equal(model.predict(probe), sk.predict(probe))
    assert model.offset == sk.offset_
    assert model.n_estimators == len(sk.estimators_)
    assert np.allclose(model.scores(probe), -theirs, rtol=0, atol=TOL)


def test_threshold_boundaries_follow_the_float32_cast() -> None:
    x = DATASETS["synthetic"]
    sk = sklearn_ensemble.IsolationForest(n_estimators=50, random_state=3, max_features=0.5).fit(x)
    model = anomaly.from_sklearn(sk)
    # Rows whose values are the trees' own thresholds and their float64
    # neighbours: a float64 comparison would send some of them the other way.
    rows = []
    for est, feats in zip(sk.estimators_[:10], sk.estimators_features_[:10]):
        t = est.tree_
        for node in np.flatnonzero(t.children_left >= 0)[:20]:
            thr = t.threshold[node]
            for value in (thr, np.nextafter(thr, np.inf), np.nextafter(thr, -np.inf), np.float32(thr)):
                row = x[node % len(x)].copy()
                row[feats[t.feature[node]]] = value
                rows.append(row)
    probe = np.array(rows)
    assert np.max(np.abs(model.score_samples(probe) - sk.score_samples(probe))) <= TOL


def test_single_event_paths_agree_with_the_batch() -> None:
    x = DATASETS["wine"]
    sk = sklearn_ensemble.IsolationForest(random_state=0).fit(x)
    model = anomaly.from_sklearn(sk, [f"f{i}" for i in range(x.shape[1])])
    batch = model.scores(x[:20])
    for i in range(20):
        assert model.score(x[i]) == batch[i]
        assert model.score(list(x[i])) == batch[i]
        assert model.score_named({f"f{j}": float(v) for j, v in enumerate(x[i])}) == batch[i]
    # Non-contiguous and non-float64 input give the same scores.
    assert np.array_equal(model.scores(np.asfortranarray(x[:20])), batch)
    assert np.array_equal(model.scores(x[:20].astype(np.float32)), model.scores(x[:20].astype(np.float32).astype(np.float64)))


def test_save_and_load_round_trip_exactly(tmp_path: Path) -> None:
    x = DATASETS["breast_cancer"]
    sk = sklearn_ensemble.IsolationForest(random_state=5, contamination=0.02, max_features=0.3).fit(x)
    model = anomaly.from_sklearn(sk)
    path = tmp_path / "model.json"
    model.save(path)
    document = json.loads(path.read_text())
    assert document["format"] == "agentriage.isolation-forest"
    assert document["version"] == 1
    assert len(document["features"]) == x.shape[1]
    loaded = anomaly.load(path)
    assert np.array_equal(loaded.score_samples(x), model.score_samples(x))
    assert loaded.offset == sk.offset_
    assert loaded.contamination == 0.02


def test_filter_keeps_rows_at_or_above_the_threshold() -> None:
    x = DATASETS["synthetic"]
    model = anomaly.from_sklearn(sklearn_ensemble.IsolationForest(random_state=0).fit(x))
    scores = model.scores(x)
    threshold = float(np.quantile(scores, 0.9))
    rows, kept = model.filter(x, threshold)
    assert np.array_equal(rows, np.flatnonzero(scores >= threshold))
    assert np.array_equal(kept, scores[rows])
    assert rows.dtype == np.int64


def test_native_training_is_reproducible_and_finds_outliers() -> None:
    x = DATASETS["synthetic"]
    labels = np.r_[np.zeros(400), np.ones(20)]
    a = anomaly.train(x, seed=11, contamination=0.05)
    b = anomaly.train(x, seed=11, contamination=0.05, parallel=False)
    assert a.to_json() == b.to_json()
    assert anomaly.train(x, seed=12).to_json() != a.to_json()
    auc = sklearn_metrics.roc_auc_score(labels, a.scores(x))
    assert auc > 0.9
    # The offset is the contamination percentile of the training scores.
    assert abs(np.mean(a.predict(x) == -1) - 0.05) < 0.01
    assert a.offset == np.percentile(a.score_samples(x), 5.0)


def test_native_auc_is_close_to_sklearn() -> None:
    # A generous floor; the precise comparison is bench/auc_report.py.
    data = sklearn_datasets.load_breast_cancer()
    x, y = data.data, 1 - data.target  # malignant as the anomaly class
    ours = sklearn_metrics.roc_auc_score(y, anomaly.train(x, seed=0).scores(x))
    theirs = sklearn_metrics.roc_auc_score(
        y, -sklearn_ensemble.IsolationForest(random_state=0).fit(x).score_samples(x)
    )
    assert ours > theirs - 0.05


def test_bad_input_names_row_and_feature() -> None:
    model = anomaly.train(DATASETS["iris"], ["a", "b", "c", "d"], n_estimators=10)
    bad = DATASETS["iris"][:5].copy()
    bad[3, 2] = np.nan
    with pytest.raises(anomaly.AnomalyInputError) as e:
        model.scores(bad)
    assert (e.value.kind, e.value.row, e.value.feature) == ("value", 3, "c")
    bad[3, 2] = np.inf
    with pytest.raises(anomaly.AnomalyInputError):
        model.score_samples(bad)
    bad[3, 2] = 1e300
    with pytest.raises(anomaly.AnomalyInputError, match="float32"):
        model.score(bad[3])
    with pytest.raises(anomaly.AnomalyInputError) as e:
        model.scores(np.zeros((2, 3)))
    assert e.value.kind == "shape"
    with pytest.raises(anomaly.AnomalyInputError) as e:
        model.score_named({"a": 1.0, "b": 1.0, "c": 1.0})
    assert (e.value.kind, e.value.feature) == ("missing", "d")
    with pytest.raises(anomaly.AnomalyInputError) as e:
        model.score_named({"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0, "e": 2.0})
    assert (e.value.kind, e.value.feature) == ("unknown_feature", "e")
    with pytest.raises(anomaly.AnomalyInputError) as e:
        anomaly.train(DATASETS["iris"], contamination=0.9)
    assert (e.value.kind, e.value.feature) == ("parameter", "contamination")


def _model_document() -> dict[str, Any]:
    sk = sklearn_ensemble.IsolationForest(n_estimators=3, max_samples=16, random_state=0)
    return json.loads(anomaly.from_sklearn(sk.fit(DATASETS["iris"])).to_json())


@pytest.mark.parametrize(
    "tamper, kind, path",
    [
        (lambda d: d.update(format="something-else"), "format", "format"),
        (lambda d: d.update(version=2), "format", "version"),
        (lambda d: d["trees"][0]["children_left"].__setitem__(0, 999), "invalid", "trees[0].children_left[0]"),
        (lambda d: d["trees"][1]["children_right"].__setitem__(0, 0), "invalid", "trees[1].children_right[0]"),
        (lambda d: d["trees"][0]["features"].__setitem__(0, 17), "invalid", "trees[0].features[0]"),
        (lambda d: d["trees"][0]["feature"].__setitem__(0, 9), "invalid", "trees[0].feature[0]"),
        (lambda d: d["trees"][0]["n_node_samples"].__setitem__(1, 0), "invalid", "trees[0].n_node_samples[1]"),
        (lambda d: d["trees"][2]["threshold"].pop(), "invalid", "trees[2].threshold"),
        (lambda d: d.update(features=["a", "a", "b", "c"]), "invalid", "features[1]"),
        (lambda d: d.update(trees=[]), "invalid", "trees"),
    ],
)
def test_tampered_models_are_refused_with_a_path(tamper: Any, kind: str, path: str) -> None:
    document = _model_document()
    tamper(document)
    with pytest.raises(anomaly.ModelError) as e:
        anomaly.from_json(json.dumps(document))
    assert (e.value.kind, e.value.path) == (kind, path)


def test_truncated_and_unreadable_models(tmp_path: Path) -> None:
    text = json.dumps(_model_document(), indent=1)
    path = tmp_path / "model.json"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(anomaly.ModelError) as e:
        anomaly.load(path)
    assert e.value.kind == "syntax"
    assert e.value.file == str(path)
    assert e.value.line is not None and e.value.line > 1
    with pytest.raises(anomaly.ModelError) as e:
        anomaly.load(tmp_path / "absent.json")
    assert e.value.kind == "io"
    with pytest.raises(anomaly.ModelError):
        anomaly.from_sklearn(sklearn_ensemble.IsolationForest())
    with pytest.raises(anomaly.ModelError):
        anomaly.from_sklearn(sklearn_ensemble.IsolationForest().fit(DATASETS["iris"]), ["only-one"])
