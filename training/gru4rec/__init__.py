"""Training GRU4Rec: session-parallel batches, sampled negatives, Adagrad with momentum."""
