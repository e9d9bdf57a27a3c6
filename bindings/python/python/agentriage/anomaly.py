"""Anomaly scoring: an Isolation Forest that scores exactly as scikit-learn's.

Import a fitted :class:`sklearn.ensemble.IsolationForest`, or train one
here, then score events in-process (numpy arrays in and out)::

    from sklearn.ensemble import IsolationForest as SkIsolationForest
    from agentriage import anomaly

    sk = SkIsolationForest(random_state=0).fit(X_train)
    model = anomaly.from_sklearn(sk, ["bytes_out", "calls", "hour"])
    model.score_samples(X)        # == sk.score_samples(X), to 1e-12
    model.save("bundle/anomaly/model.json")  # what a policy bundle carries

    kept_rows, kept_scores = model.filter(X, threshold=0.6)

``scores`` (and ``score`` for one event) give the anomaly score in (0, 1],
higher is more anomalous: the number policies see as ``anomaly_score``.
``score_samples`` is its opposite, as scikit-learn returns it. Batch work
releases the GIL; float64 C-contiguous input is read without a copy.

This module needs numpy (``pip install agentriage[anomaly]``).
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

from agentriage._errors import Error
from agentriage._native import IsolationForest as _NativeForest

__all__ = [
    "MODEL_FORMAT",
    "MODEL_VERSION",
    "AnomalyInputError",
    "IsolationForest",
    "ModelError",
    "from_json",
    "from_sklearn",
    "load",
    "train",
]

MODEL_FORMAT = "agentriage.isolation-forest"
MODEL_VERSION = 1

ArrayLike = Union[npt.ArrayLike, "npt.NDArray[np.float64]"]
PathLike = Union[str, "os.PathLike[str]"]


class ModelError(Error, ValueError):
    """A model that could not be loaded, saved or imported.

    Attributes:
        kind: ``io``, ``syntax``, ``format`` or ``invalid``.
        file: the model file, when there is one.
        line: the 1-based line of a syntax error.
        path: the JSON path of the offending value, e.g. ``trees[3].feature[7]``.
    """

    kind: str
    file: Optional[str]
    line: Optional[int]
    path: Optional[str]

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        file: Optional[str] = None,
        line: Optional[int] = None,
        path: Optional[str] = None,
    ) -> None:
        self.kind = kind
        self.file = file
        self.line = line
        self.path = path
        super().__init__(message)


class AnomalyInputError(Error, ValueError):
    """Input that cannot be scored or trained on.

    Attributes:
        kind: ``shape``, ``value`` (NaN, infinite, beyond float32), ``missing``
            or ``unknown_feature`` (named features), ``parameter``, ``empty``.
        row: the 0-based row at fault, when there is one.
        feature: the feature (or parameter) at fault, when there is one.
    """

    kind: str
    row: Optional[int]
    feature: Optional[str]

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        row: Optional[int] = None,
        feature: Optional[str] = None,
    ) -> None:
        self.kind = kind
        self.row = row
        self.feature = feature
        super().__init__(message)


def _matrix(x: ArrayLike) -> npt.NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        # One event, as scikit-learn would refuse; accept it as one row.
        a = a.reshape(1, -1)
    if a.ndim != 2:
        raise AnomalyInputError(
            f"expected a 2-d array (events x features), found {a.ndim} dimensions",
            kind="shape",
        )
    return a


class IsolationForest:
    """A fitted Isolation Forest. Immutable; share it between threads."""

    __slots__ = ("_native",)

    def __init__(self, native: _NativeForest) -> None:
        self._native = native

    @property
    def features(self) -> list[str]:
        """The feature names, in column order."""
        return self._native.features

    @property
    def n_estimators(self) -> int:
        """The number of trees."""
        return self._native.n_estimators

    @property
    def max_samples(self) -> int:
        """Samples per tree (scikit-learn's ``max_samples_``)."""
        return self._native.max_samples

    @property
    def offset(self) -> float:
        """scikit-learn's ``offset_``: ``decision_function = score_samples - offset``."""
        return self._native.offset

    @property
    def score_threshold(self) -> float:
        """The anomaly score above which :meth:`predict` says outlier (``-offset``)."""
        return self._native.score_threshold

    @property
    def contamination(self) -> Union[str, float, None]:
        """``'auto'``, a fraction, or None when unknown."""
        return self._native.contamination

    def score(self, row: Union[Sequence[float], npt.NDArray[np.float64]]) -> float:
        """The anomaly score in (0, 1] of one event, in column order."""
        return self._native.score(row)

    def score_named(self, features: Mapping[str, float]) -> float:
        """The anomaly score of one event given as ``{feature: value}``; every
        feature of the model must be present, and no other."""
        return self._native.score_named(dict(features))

    def scores(self, x: ArrayLike) -> npt.NDArray[np.float64]:
        """Anomaly scores in (0, 1] of a batch (higher is more anomalous)."""
        return self._native.scores(_matrix(x))

    def score_samples(self, x: ArrayLike) -> npt.NDArray[np.float64]:
        """As scikit-learn's ``score_samples``: the opposite of :meth:`scores`."""
        return self._native.score_samples(_matrix(x))

    def decision_function(self, x: ArrayLike) -> npt.NDArray[np.float64]:
        """As scikit-learn's ``decision_function``: ``score_samples - offset``."""
        return self._native.decision_function(_matrix(x))

    def predict(self, x: ArrayLike) -> npt.NDArray[np.int64]:
        """As scikit-learn's ``predict``: -1 for outliers, 1 for inliers."""
        return self._native.predict(_matrix(x))

    def filter(
        self, x: ArrayLike, threshold: float
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The rows scoring at least ``threshold``: (row indices, their scores)."""
        return self._native.filter(_matrix(x), float(threshold))

    def to_json(self) -> str:
        """The model in the JSON format a bundle carries."""
        return self._native.to_json()

    def save(self, path: PathLike) -> None:
        """Writes the model as JSON (e.g. ``bundle/anomaly/model.json``)."""
        self._native.save(os.fspath(path))

    def __repr__(self) -> str:
        return (
            f"IsolationForest(n_estimators={self.n_estimators}, "
            f"max_samples={self.max_samples}, features={self.features!r})"
        )


def load(path: PathLike) -> IsolationForest:
    """Loads a model file written by :meth:`IsolationForest.save` (or the CLI)."""
    return IsolationForest(_NativeForest.load(os.fspath(path)))


def from_json(text: str) -> IsolationForest:
    """Loads a model from its JSON text."""
    return IsolationForest(_NativeForest.from_json(text))


def train(
    x: ArrayLike,
    feature_names: Optional[Sequence[str]] = None,
    *,
    n_estimators: int = 100,
    max_samples: Union[str, int, float] = "auto",
    contamination: Union[str, float] = "auto",
    max_features: Union[int, float] = 1.0,
    seed: int = 0,
    parallel: bool = True,
) -> IsolationForest:
    """Trains a model here (parameters as scikit-learn's; ``seed`` makes it
    reproducible). Scores are scikit-learn's definitions; the trees are not
    the ones scikit-learn would grow from the same seed."""
    return IsolationForest(
        _NativeForest.train(
            _matrix(x),
            list(feature_names) if feature_names is not None else None,
            n_estimators,
            max_samples,
            contamination,
            max_features,
            seed,
            parallel,
        )
    )


def from_sklearn(model: Any, feature_names: Optional[Sequence[str]] = None) -> IsolationForest:
    """Imports a fitted :class:`sklearn.ensemble.IsolationForest`.

    ``feature_names`` name the columns, in order; when omitted, the model's
    ``feature_names_in_`` (fitted on a DataFrame) or ``x0``, ``x1``, ….
    The result scores identically: same trees, same thresholds, same offset.
    """
    for attr in ("estimators_", "estimators_features_", "offset_", "max_samples_"):
        if not hasattr(model, attr):
            raise ModelError(
                f"not a fitted sklearn.ensemble.IsolationForest: no `{attr}`", kind="format"
            )
    n_features = int(model.n_features_in_)
    if feature_names is None:
        names_in = getattr(model, "feature_names_in_", None)
        names = [str(n) for n in names_in] if names_in is not None else [f"x{i}" for i in range(n_features)]
    else:
        names = [str(n) for n in feature_names]
    if len(names) != n_features:
        raise ModelError(
            f"{len(names)} feature names for a model of {n_features} features", kind="invalid", path="features"
        )
    trees = []
    for estimator, features in zip(model.estimators_, model.estimators_features_):
        t = estimator.tree_
        trees.append(
            {
                "features": [int(f) for f in features],
                "children_left": t.children_left.tolist(),
                "children_right": t.children_right.tolist(),
                "feature": t.feature.tolist(),
                "threshold": t.threshold.tolist(),
                "n_node_samples": t.n_node_samples.tolist(),
            }
        )
    contamination = model.contamination
    document = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "features": names,
        "max_samples": int(getattr(model, "_max_samples", model.max_samples_)),
        "offset": float(model.offset_),
        "contamination": contamination if contamination == "auto" else float(contamination),
        "source": f"scikit-learn {_sklearn_version()}",
        "trees": trees,
    }
    try:
        text = json.dumps(document, allow_nan=False)
    except ValueError as e:
        raise ModelError(f"the model holds a value JSON cannot: {e}", kind="invalid") from None
    return from_json(text)


def _sklearn_version() -> str:
    try:
        return str(importlib.import_module("sklearn").__version__)
    except ImportError:  # pragma: no cover - a fitted model implies sklearn
        return "unknown"
