"""Training of the attention models (SASRec and its kin): data, loop, evaluation, export."""
