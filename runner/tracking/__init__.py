"""The way to MLflow: the run record (``record.py``), writing it (``tracker.py`` and the
tracking process), and reading it back (``past_runs.py``)."""
