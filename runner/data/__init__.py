"""The data of a run: loaded from the registry, split, transformed, fingerprinted, and put under DVC."""
