"""The run record: every tag, param, metric and artifact specrun writes to MLflow and reads back.

This module is the contract between the side that writes a run (``runs/experiment.py``,
``runs/cv.py``, ``search/``) and the side that reads it back (``--resume``, ``runner
reproduce``, the search's bookkeeping, and whoever filters runs in ``mlflow ui`` or
``mlflow.search_runs``). Each name says, in its comment, who reads it. A name changed here
changes what old runs are read as: add a new one and keep reading the old.

Params are the resolved spec flattened to dotted keys (``optimizer.lr``); a value longer
than the store takes is replaced by ``HASH_MARKER`` (``tracker.fit_param_value``).
"""

from __future__ import annotations

# --- Where a run came from: written for every run and every parent run by
# --- ``provenance.origin_tags``.
#: Read by: users (``mlflow ui`` filters, ``tags.specrun.spec_name = 'x'``).
SPEC_NAME = "specrun.spec_name"
#: SHA-256 of the resolved spec. Read by: users comparing runs; checkpoints keep it too.
SPEC_SHA256 = "specrun.spec_sha256"
#: Fingerprint of the data as loaded. Read by: ``--resume`` and ``runner reproduce``
#: (refuse other data), the dataset input (its digest).
DATA_SHA256 = "specrun.data_sha256"
#: The spec file given on the command line. Read by: users.
SPEC_FILE = "specrun.spec_file"
#: MLflow's own tag for the commit. Read by: ``mlflow ui`` (Source column), ``runner reproduce``.
GIT_COMMIT = "mlflow.source.git.commit"
#: Whether the work tree had uncommitted changes. Read by: ``runner reproduce`` (warns).
GIT_DIRTY = "specrun.git_dirty"
#: The versions that can change a run's numbers, with the name ``runner reproduce`` and
#: ``--resume`` show when one differs from this environment's (``provenance.environment_differences``).
VERSION = "specrun.version"
PYTHON = "specrun.python"
TORCH = "specrun.torch"
TORCH_THREADS = "specrun.torch_threads"
PLATFORM = "specrun.platform"
NUMPY = "specrun.numpy"
SKLEARN = "specrun.sklearn"
MLFLOW = "specrun.mlflow"
VERSION_TAGS = {
    VERSION: "specrun",
    PYTHON: "Python",
    TORCH: "torch",
    TORCH_THREADS: "torch's CPU thread count",
    NUMPY: "numpy",
    SKLEARN: "scikit-learn",
    MLFLOW: "MLflow",
    PLATFORM: "platform",
}

# --- How a run trained (a run, not a parent).
#: ``cpu``, ``cuda:0 (NVIDIA H100 ...)``. Read by: ``runner reproduce`` (warns on another device).
DEVICE = "specrun.device"
#: The spec's reproducibility level. Read by: users.
REPRODUCIBILITY = "specrun.reproducibility"
#: Where batches came from (``training/batches.py``). Read by: users.
LOADER = "specrun.loader"
#: Processes of a ``--nproc`` run (absent for one). Read by: users.
WORLD_SIZE = "specrun.world_size"
#: ``specrun.data.<path>.md5``: one per data file read, its DVC md5. Read by: users
#: (``dvc`` finds the file by it); the full list is the ``DATA_FILES_ARTIFACT``.
DATA_FILE_PREFIX = "specrun.data."

# --- The dataset input (``run.inputs.dataset_inputs``, the Datasets column of ``mlflow ui``).
#: Of a dataset made by code: its spec as JSON, in the source. Read by: users.
DATASET_SPEC = "specrun.dataset"
#: The input's tags say how the run used the data: ``specrun.<usage>`` with the usage
#: ``train_rows``, ``val_rows``, ``test_rows``, ``folds`` or ``seeds``. Read by: users.
DATASET_USAGE_PREFIX = "specrun."

# --- How a run ended.
#: Why a run is FAILED or KILLED (the error, or the worker that died). Read by: users;
#: ``--resume`` removes it when the run goes on.
ERROR = "specrun.error"
#: Why a run was stopped on purpose (a pruned search trial): KILLED, not FAILED. Read by: users.
STOPPED = "specrun.stopped"
#: Why the model for use could not be logged (the run still FINISHED). Read by: users.
MODEL_ERROR = "specrun.model_error"
#: The epoch a resumed run went on from. Read by: users.
RESUMED_FROM_EPOCH = "specrun.resumed_from_epoch"
#: The run this one re-ran (``runner reproduce``). Read by: users.
REPRODUCES = "specrun.reproduces"
#: The rate an LR range test suggests (``runner lr-find``'s run). Read by: users.
LR_FIND = "specrun.lr_find"

# --- A parent run over members (cross-validation folds, ``--seeds``) and its children.
#: Parent: the splitter and its fold count. Read by: ``--resume``, ``runner reproduce``
#: (a run with either of ``PARENT_TAGS`` is a parent).
CV_SCHEME = "specrun.cv.scheme"
CV_FOLDS = "specrun.cv.folds"
#: Parent: the inner splitter of nested cross-validation. Read by: users.
CV_INNER = "specrun.cv.inner"
#: Parent and children: whether the members trained at once, and why. Read by: users.
CV_MODE = "specrun.cv.mode"
CV_MODE_REASON = "specrun.cv.mode_reason"
#: Parent: whether the members were to train at once (``--sequential``: false).
#: Read by: ``--resume`` and ``runner reproduce`` (``recorded_members``).
CV_PARALLEL = "specrun.cv.parallel"
#: Child of nested CV: the epochs chosen on its inner folds. Read by: users.
CV_SELECTED_EPOCHS = "specrun.cv.selected_epochs"
#: Parent of ``--seeds N``: N. Read by: ``--resume``, ``runner reproduce``.
SEEDS = "specrun.seeds"
#: Child: its fold index, or its seed. Read by: ``--resume`` (a member is resumed through its parent).
FOLD = "specrun.fold"
MEMBER_SEED = "specrun.member_seed"
PARENT_TAGS = (CV_FOLDS, SEEDS)
MEMBER_TAGS = (FOLD, MEMBER_SEED)
#: MLflow's own tag for a child's parent. Read by: ``mlflow ui`` (nesting), ``--resume``.
PARENT_RUN_ID = "mlflow.parentRunId"
#: Tags a spec's ``tracking.tags`` may not set: specrun's record and MLflow's own.
RESERVED_TAG_PREFIXES = ("specrun.", "mlflow.")

# --- A search (``runner search``): its parent run and one child per trial.
#: Parent and trials: the study's name; trials: the trial number. Read by: ``runner
#: search`` (ends the run of a trial whose worker died), users.
STUDY = "specrun.study"
TRIAL = "specrun.trial"
#: Parent: the Optuna storage, password hidden. Read by: users (``optuna-dashboard`` it).
STORAGE = "specrun.storage"
#: Trial: ``true`` on the best trial's run, ``false`` on a former best. Read by: users.
BEST_TRIAL = "specrun.best_trial"
#: Parent: the best trial's number and run. Read by: users.
BEST_TRIAL_NUMBER = "specrun.best_trial_number"
BEST_RUN_ID = "specrun.best_run_id"

# --- Metrics (besides the spec's ``train/``, ``val/`` and ``test/`` metrics per epoch).
#: Logged per epoch; its last step is how far a run got. Read by: ``--resume``.
TRAIN_LOSS = "train/loss"
#: Parameters of the model, at step 0. Read by: users.
MODEL_PARAMS = "model/params"

# --- Artifacts.
#: The spec as validated, every default filled in. Read by: ``--resume``, ``runner reproduce``.
SPEC_ARTIFACT = "spec.resolved.yaml"
#: The final metrics (a parent: their summary). Read by: ``runner reproduce``, a resumed
#: parent (its finished members), ``runner check`` through ``--metrics-out``.
METRICS_ARTIFACT = "metrics.json"
#: Path, md5, size and git revision of every data file read. Read by: ``runner reproduce``.
DATA_FILES_ARTIFACT = "data_files.json"
#: The last checkpoint (``checkpoints/last.pt``). Read by: ``--resume``.
CHECKPOINT_DIR = "checkpoints"
#: The MLflow model for use (``mlflow.pytorch.load_model("runs:/<id>/model")``) and the raw
#: ``weights.pt`` beside it. Read by: users.
MODEL_DIR = "model"
WEIGHTS_FILE = "weights.pt"
#: Parent: one row per member. Read by: users.
FOLDS_CSV = "folds.csv"
FOLDS_JSON = "folds.json"
#: Figure metrics as ``figures/<name>.png``. Read by: users (``mlflow ui``).
FIGURES_DIR = "figures"


def recorded_members(tags: dict[str, str]) -> tuple[int, bool]:
    """What a parent run's tags say of its members: the ``--seeds`` count (1: folds), and
    whether they were to train at once."""
    return int(tags.get(SEEDS, "1")), tags.get(CV_PARALLEL) != "false"


def is_parent(tags: dict[str, str]) -> bool:
    """Whether the run holds members (folds or seeds) rather than being trained itself."""
    return any(tag in tags for tag in PARENT_TAGS)


def is_member(tags: dict[str, str]) -> bool:
    """Whether the run is a fold or seed of a parent run."""
    return any(tag in tags for tag in MEMBER_TAGS)
