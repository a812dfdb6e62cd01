"""Retrain jobs: their records, the queue, the worker that runs the trainer, the model channel."""
