"""From a spec and its prepared data to trained weights: the pipeline, the loops, batches and checkpoints."""
