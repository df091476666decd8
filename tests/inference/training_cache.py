"""Fitted models shared by the whole test session.

`inference.training.model_train` is a pure function of its inputs: the same feature matrix, labels, family,
parameters and seed give the same pipeline, ONNX bytes and metrics (DESIGN §3; tests/inference/test_families.py
checks it by training twice without this cache). So a test that fits what an earlier test fitted can take the
earlier result instead of fitting again. Only the fit is shared: each test still stores its artifacts, runs every
gate against its own database, signs its manifest and registers its version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from inference.training import FittedModel

Train = Callable[..., FittedModel]


class FittedModelCache:
    def __init__(self) -> None:
        self._fitted: dict[tuple[str, ...], FittedModel] = {}
        self.fits = 0  # how many fits really ran, for the test that checks the cache is keyed on every input

    def wrap(self, train: Train) -> Train:
        def cached(
            X: npt.NDArray[np.float32], y: npt.NDArray[np.int64], *, family: str, params: dict[str, Any], seed: int
        ) -> FittedModel:
            key = (
                _digest(X),
                _digest(y),
                family,
                json.dumps(params, sort_keys=True),
                str(seed),
            )
            if key not in self._fitted:
                self.fits += 1
                self._fitted[key] = train(X, y, family=family, params=params, seed=seed)
            return self._fitted[key]

        return cached


def _digest(array: npt.NDArray[Any]) -> str:
    contiguous = np.ascontiguousarray(array)
    return f"{contiguous.dtype}{contiguous.shape}:{hashlib.sha256(contiguous.tobytes()).hexdigest()}"
