"""Training and evaluating multi-interest models (ComiRec-SA, ComiRec-DR, MIND)."""
