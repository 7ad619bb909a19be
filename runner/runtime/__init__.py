"""The process a run lives in: seeds and determinism, devices and ranks, signals, the collector, progress."""
