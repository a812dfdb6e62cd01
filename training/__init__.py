"""Everything offline: data, batching, training loops, evaluation, checkpoints, the CLI."""
