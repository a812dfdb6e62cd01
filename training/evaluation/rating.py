"""Rating protocol: RMSE and MAE of predicted ratings on a fixed test fold."""

from __future__ import annotations

import numpy as np


def rating_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    if predicted.shape != actual.shape:
        raise ValueError(f"{predicted.shape} predictions for {actual.shape} ratings")
    if len(actual) == 0:
        raise ValueError("no rating to evaluate")
    err = predicted.astype(np.float64) - actual.astype(np.float64)
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}
