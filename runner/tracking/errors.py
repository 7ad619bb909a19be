"""The one error the tracking side raises to its callers."""


class TrackingError(RuntimeError):
    """MLflow failed in the tracking process; the message carries its error."""
