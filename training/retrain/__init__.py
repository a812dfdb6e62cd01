"""Retraining on the service's event log: snapshot -> preprocess -> train -> gate -> checkpoint."""

from training.retrain.pipeline import RetrainConfig, RetrainOutcome, retrain

__all__ = ["RetrainConfig", "RetrainOutcome", "retrain"]
