"""Session kNN (SKNN, V-SKNN, STAN) fitted on a session dataset's training part.

The models (``models/session_knn.py``) order the training sessions by a clock,
one value per session; STAN also decays a neighbour by its age on that clock
(``lambda_2``). This module builds the clock from the data, in days: the time of
a session's last click where the data has times; otherwise the session's place
in the file (SR-GNN files are written in time order but hold no times) divided
by ``sessions_per_day``, a property of the data that STAN needs and the other
two do not (their recency sample needs only the order).

Parameters are read the one way (``training.params``): the model's bundled
file (``sknn``, ``vsknn``, ``stan`` in ``training/model_params/``: the
published reference settings, restating the config classes' defaults), then
what the user gives; ``sessions_per_day`` is the one key beside the model's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.session_knn import SKNN, STAN, VSKNN, SessionKNN, SKNNConfig, STANConfig, VSKNNConfig
from training.data.preprocess import DAY
from training.data.sessions import Sessions
from training.params import ParamError, as_dict, load_config, read_params

#: ``--model`` name -> (model class, its config class); the bundled file is the name
KNN_MODELS: dict[str, tuple[type[SessionKNN], type[SKNNConfig]]] = {
    "sknn": (SKNN, SKNNConfig),
    "vsknn": (VSKNN, VSKNNConfig),
    "stan": (STAN, STANConfig),
}


@dataclass(frozen=True)
class KNNSetup:
    """A kNN model's config and the data clock's one parameter."""

    name: str
    config: SKNNConfig
    sessions_per_day: float | None = None

    def params(self) -> dict[str, Any]:
        """What ran, for the record."""
        extra = {} if self.sessions_per_day is None else {"sessions_per_day": self.sessions_per_day}
        return {**as_dict(self.config), **extra}

    def clock(self, sessions: Sessions) -> np.ndarray | None:
        """Per session, the time of its last click in days (None: the row order will do)."""
        if sessions.times is not None:
            return sessions.times[sessions.offsets[1:] - 1] / DAY
        if self.sessions_per_day is not None:
            return np.arange(sessions.n_sessions, dtype=np.float64) / self.sessions_per_day
        if self.name == "stan":
            raise ParamError(
                "this data has no timestamps: STAN's lambda_2 is in days, so give "
                "sessions_per_day=N (e.g. --params stan_diginetica)"
            )
        return None

    def fit(self, sessions: Sessions, n_items: int) -> SessionKNN:
        cls, _ = KNN_MODELS[self.name]
        return cls(self.config).fit(sessions.items, sessions.offsets, n_items, self.clock(sessions))


def knn_setup(name: str, params: Mapping[str, Any]) -> KNNSetup:
    """The bundled reference settings of ``name`` overridden by ``params`` (checked here)."""
    _, config_cls = KNN_MODELS[name]
    values = read_params(name, params)
    per_day = values.pop("sessions_per_day", None)
    if per_day is not None and not (isinstance(per_day, (int, float)) and per_day > 0):
        raise ParamError(f"sessions_per_day must be a positive number, got {per_day!r}")
    config = load_config(config_cls, values, what=name)
    return KNNSetup(name, config, None if per_day is None else float(per_day))
