"""A tracked run from start to end: one run, its folds or seeds, resuming it, reproducing it."""
