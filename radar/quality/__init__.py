"""How good a run is without ground-truth labels (injected corruptions, and what they say)."""
