"""The ``runner`` command. Thin and lazy: each handler imports what it needs, so ``--help``
and ``validate`` never import torch or mlflow."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the handlers import what they need when they run
    from runner.runs.resume import MembersResume, Resume
    from runner.spec.schema import Spec

EXIT_INVALID = 2


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec value, e.g. --set optimizer.lr=0.01 (repeatable; values are YAML)",
    )


def _add_dataset_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="PARAM=VALUE",
        help="a dataset parameter, e.g. --set n_samples=500 (repeatable; values are YAML; `runner list datasets` shows them)",
    )


def _parser() -> argparse.ArgumentParser:
    from runner import __version__

    parser = argparse.ArgumentParser(prog="runner", description="Run declarative deep-learning experiments from YAML specs.")
    parser.add_argument("--version", action="version", version=f"specrun {__version__}")
    # For --help only: main() takes --debug out wherever it stands (`runner run x --debug` too).
    parser.add_argument("--debug", action="store_true", help=f"show the traceback of an unexpected error (also: {DEBUG_VARIABLE}=1)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check specs; exit 0 if valid, 2 if not")
    validate.add_argument("specs", nargs="+", type=Path, metavar="SPEC")
    _add_set(validate)
    validate.set_defaults(handler=cmd_validate)

    run = commands.add_parser("run", help="train and evaluate a spec, tracked in MLflow")
    run.add_argument("spec", type=Path, nargs="?", metavar="SPEC", help="the spec to run (omit with --resume)")
    _add_set(run)
    run.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override the spec's device")
    run.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    run.add_argument("--experiment", help="MLflow experiment name (default: the spec's tracking.experiment or name)")
    run.add_argument("--metrics-out", type=Path, metavar="FILE", help="write the final metrics as JSON")
    run.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    run.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="continue an unfinished run (killed, failed, interrupted) from its last checkpoint, in the same MLflow run",
    )
    run.add_argument(
        "--restart",
        action="store_true",
        help="with --resume: a run that left no checkpoint trains again from epoch 1 (refused otherwise)",
    )
    run.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="train data-parallel in N processes under torchrun (DDP): gloo on CPU, one GPU each on CUDA",
    )
    run.add_argument("--history-out", type=Path, metavar="FILE", help="write the per-epoch metrics as CSV (for `dvc plots`)")
    run.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="run the spec over N seeds (seed, seed+1, ...) as child runs of one parent with mean and spread",
    )
    run.add_argument(
        "--sequential",
        action="store_true",
        help="train folds/seeds one after another instead of as one batched ensemble",
    )
    run.add_argument(
        "--allow-imports",
        action="store_true",
        help="let the spec name components as module:attr import references (this runs their code)",
    )
    run.set_defaults(handler=cmd_run)

    data = commands.add_parser("data", help="write registry datasets as files and track them with DVC")
    actions = data.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="materialize datasets (or take existing files) and `dvc add` them")
    add.add_argument("sources", nargs="+", metavar="NAME|PATH", help="a registered dataset or an existing file")
    add.add_argument("--out", type=Path, default=Path("data"), help="directory for materialized datasets (default: data)")
    _add_dataset_set(add)
    add.add_argument(
        "--remote", metavar="URL", help="the default DVC remote when the repository has none (default: ~/.cache/specrun/dvc-remote)"
    )
    add.set_defaults(handler=cmd_data)
    materialize = actions.add_parser("materialize", help="write datasets as <out>/<name>.npz without tracking (for dvc.yaml stages)")
    materialize.add_argument("sources", nargs="+", metavar="NAME", help="a registered dataset")
    materialize.add_argument("--out", type=Path, default=Path("data"), help="output directory (default: data)")
    _add_dataset_set(materialize)
    materialize.set_defaults(handler=cmd_data)

    check = commands.add_parser("check", help="compare reproduced metrics with the published numbers in specs' expect: blocks")
    check.add_argument("specs", nargs="*", type=Path, metavar="SPEC", help="default: every spec under specs/published/")
    check.add_argument(
        "--results",
        type=Path,
        default=Path("results"),
        metavar="DIR",
        help="where SPEC's metrics are, as DIR/<spec file stem>.json (default: results)",
    )
    check.add_argument(
        "--markdown",
        type=Path,
        default=Path("results/reproduction.md"),
        metavar="FILE",
        help="write the table as Markdown (default: results/reproduction.md)",
    )
    check.add_argument(
        "--update-readme", type=Path, metavar="FILE", help="rewrite the table between the reproduction-table markers in FILE"
    )
    check.set_defaults(handler=cmd_check)

    reproduce = commands.add_parser("reproduce", help="re-run a logged MLflow run from its recorded spec and compare metrics")
    reproduce.add_argument("run_id", metavar="RUN_ID")
    reproduce.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    reproduce.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override the recorded spec's device")
    reproduce.add_argument("--exact", action="store_true", help="exit 1 unless every metric is bit-identical")
    reproduce.set_defaults(handler=cmd_reproduce)

    search = commands.add_parser("search", help="run the Optuna study a spec's search: block declares, tracked in MLflow")
    search.add_argument("spec", type=Path, metavar="SPEC")
    _add_set(search)
    search.add_argument("--n-trials", type=int, metavar="N", help="trials in the study, all workers together (default: search.n_trials)")
    search.add_argument("--timeout", type=float, metavar="SECONDS", help="start no trial after this (default: search.timeout)")
    search.add_argument("--study", metavar="NAME", help="the study's name; an existing study resumes (default: the spec's name)")
    search.add_argument(
        "--storage",
        metavar="URL",
        help="postgresql://..., sqlite:///FILE (one worker), or journal:PATH (default: journal file studies/<spec>.journal)",
    )
    search.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes on this machine (default: 1)")
    search.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    search.add_argument("--best-out", type=Path, metavar="FILE", help="where the best spec goes (default: <spec>.best.yaml beside SPEC)")
    search.add_argument(
        "--metrics-out",
        type=Path,
        metavar="FILE",
        help="write the outcome as JSON: best/value, best/<path> for each numeric searched value, trials/<state> counts",
    )
    search.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    search.set_defaults(handler=cmd_search)

    finder = commands.add_parser("lr-find", help="learning-rate range test: the loss as the rate grows from 1e-6; suggests a rate")
    finder.add_argument("spec", type=Path, metavar="SPEC")
    _add_set(finder)
    finder.add_argument("--start", type=float, default=1e-6, help="first learning rate (default: 1e-6)")
    finder.add_argument("--end", type=float, default=10.0, help="largest learning rate tried (default: 10)")
    finder.add_argument("--steps", type=int, default=100, help="mini-batch steps from --start to --end (default: 100)")
    finder.add_argument(
        "--divergence", type=float, default=4.0, help="stop when the smoothed loss exceeds this many times its best (default: 4)"
    )
    finder.add_argument("--out", type=Path, default=Path("lr_find.png"), metavar="PNG", help="the plot (default: lr_find.png)")
    finder.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override the spec's device")
    finder.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    finder.add_argument("--experiment", help="MLflow experiment name (default: the spec's tracking.experiment or name)")
    finder.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    finder.set_defaults(handler=cmd_lr_find)

    schema = commands.add_parser("schema", help="print the spec language's JSON Schema (for editors)")
    schema.set_defaults(handler=cmd_schema)

    listing = commands.add_parser("list", help="list registered components and their parameters")
    listing.add_argument("kind", nargs="?", help="models, losses, optimizers, ... (default: all)")
    listing.set_defaults(handler=cmd_list)
    return parser


def _error(message: str) -> None:
    print(f"runner: error: {message}", file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    from runner.spec import SpecError, load_spec

    status = 0
    for file in args.specs:
        try:
            load_spec(file, args.sets)
        except SpecError as error:
            print(f"{file}: invalid\n{error.render()}", file=sys.stderr)
            status = EXIT_INVALID
        else:
            print(f"{file}: valid")
    return status


def _unreachable(cli_uri: str | None, spec_uri: str | None) -> bool:
    """Say so when the tracking URI names an http(s) server that cannot be reached at all."""
    from runner.tracking.tracker import tracking_uri, unreachable_server

    problem = unreachable_server(tracking_uri(cli_uri, spec_uri))
    if problem:
        _error(problem)
    return problem is not None


def _run_usage_problem(args: argparse.Namespace) -> str | None:
    if (args.spec is None) == (args.resume is None):
        return "give a SPEC to start a run, or --resume RUN_ID to continue one (not both)"
    if args.resume and (args.sets or args.no_track or args.experiment):
        return "--resume continues a run exactly as it was specified: --set, --experiment and --no-track do not apply"
    if args.nproc < 1:
        return f"--nproc must be >= 1, but got {args.nproc}"
    if args.seeds < 1:
        return f"--seeds must be >= 1, but got {args.seeds}"
    if args.seeds > 1 and (args.resume or args.nproc > 1):
        return "--seeds runs several child runs; it does not combine with --resume or --nproc"
    return None


def _worker_args(args: argparse.Namespace) -> list[str]:
    """This ``runner run`` command line, for each torchrun worker (without ``--nproc``)."""
    argv = ["run"] + ([str(args.spec)] if args.spec else [])
    for assignment in args.sets:
        argv += ["--set", assignment]
    for flag in ("device", "tracking_uri", "experiment", "metrics_out", "history_out", "resume"):
        if getattr(args, flag) is not None:
            argv += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    flags = [("--no-track", args.no_track), ("--allow-imports", args.allow_imports), ("--restart", args.restart)]
    return argv + [flag for flag, given in flags if given]


def _interrupted_run(interrupted: KeyboardInterrupt, what: str) -> str:
    run_id = getattr(interrupted, "run_id", None)
    if run_id is None:
        return f"interrupted; the {what} is marked KILLED and its last checkpoint kept"
    return f"interrupted; {what} {run_id} is marked KILLED and its last checkpoint kept: continue it with `runner run --resume {run_id}`"


def cmd_run(args: argparse.Namespace) -> int:
    problem = _run_usage_problem(args)
    if problem:
        _error(problem)
        return EXIT_INVALID
    from runner.runtime import distributed

    # Only the process that writes to MLflow: tracked, and neither the launcher of --nproc
    # workers nor a worker other than rank 0.
    if not args.no_track and distributed.is_main() and (distributed.world_size() > 1 or args.nproc <= 1):
        from runner.tracking.tracker import start_tracking_process

        start_tracking_process()  # MLflow starts up on another core while the spec, torch and the data load

    from runner.spec import SpecError, load_spec

    spec = None
    if args.spec is not None:
        try:
            spec = load_spec(args.spec, args.sets, allow_imports=args.allow_imports)
        except SpecError as error:
            print(f"{args.spec}: invalid\n{error.render()}", file=sys.stderr)
            return EXIT_INVALID

    resume: Resume | None = None  # a run's
    members_resume: MembersResume | None = None  # a parent run's, of folds or seeds
    if args.resume:
        from runner.runs.resume import MembersResume, ResumeError, prepare
        from runner.tracking.tracker import tracking_uri

        if _unreachable(args.tracking_uri, None):
            return EXIT_INVALID
        try:  # under --nproc the launcher fetches the checkpoint once, before the workers start
            spec, found = prepare(args.resume, tracking_uri(args.tracking_uri, None), restart=args.restart)
        except ResumeError as error:
            _error(str(error))
            return EXIT_INVALID
        if isinstance(found, MembersResume):
            members_resume = found
        else:
            resume = found
        for difference in found.differences if distributed.world_size() == 1 else []:  # once, not per rank
            print(f"runner: warning: {difference}; the resumed run may differ from an uninterrupted one", file=sys.stderr)
    assert spec is not None
    from runner.runtime.determinism import resolve_device

    resolve_device(args.device or spec.device)  # one this machine lacks: exit 2 before a parent run is logged
    if not args.no_track and not args.resume and _unreachable(args.tracking_uri, spec.tracking.uri):
        return EXIT_INVALID
    if members_resume is not None:
        return _run_members(args, spec, members_resume)
    if spec.data.split.is_cv or args.seeds > 1:
        return _run_members(args, spec)
    if args.nproc > 1 and distributed.world_size() == 1:
        return distributed.launch(args.nproc, _worker_args(args))

    from runner.data.prepare import DataError
    from runner.results.report import print_metrics, write_metrics
    from runner.runs.experiment import RunOptions, run

    options = RunOptions(
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
        device=args.device,
        track=not args.no_track,
        spec_file=args.spec,
        resume=resume,
        log_model=spec.tracking.log_model,
    )
    try:
        outcome = run(spec, options)
    except DataError as error:
        _error(f"{args.spec or args.resume}: {error}")
        return EXIT_INVALID
    except KeyboardInterrupt as interrupted:
        _error(_interrupted_run(interrupted, "run"))
        return 130
    finally:
        distributed.shutdown()
    if not distributed.is_main():
        return 0
    print_metrics(spec.name, outcome.metrics, outcome.run_id, outcome.model_uri)
    if args.metrics_out:
        write_metrics(args.metrics_out, outcome.metrics)
    if args.history_out:
        from runner.results.history import write_history

        write_history(outcome.result.history, args.history_out)
    return 0


def _run_members(args: argparse.Namespace, spec: Spec, resume: MembersResume | None = None) -> int:
    """A cross-validated spec, or ``--seeds N``: one parent run over child runs (or ``resume``,
    a ``MembersResume``: that parent run, continued)."""
    from runner.data.prepare import DataError
    from runner.results.report import print_summary, write_metrics
    from runner.runs.cv import run_parent
    from runner.runs.experiment import RunOptions

    if args.nproc > 1:
        _error("cross-validation runs one process per fold (batched where possible); --nproc does not apply")
        return EXIT_INVALID
    if args.history_out:
        _error("--history-out writes one run's epochs; each fold or seed is a child run with its own history in MLflow")
        return EXIT_INVALID
    if args.seeds > 1 and spec.data.split.is_cv:
        _error("--seeds with data.split.folds is not supported; use repeated_kfold for repeated resampling")
        return EXIT_INVALID
    options = RunOptions(
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
        device=args.device,
        track=not args.no_track,
        spec_file=args.spec,
    )
    seeds = resume.seeds if resume is not None else args.seeds
    try:
        outcome = run_parent(spec, seeds, options, parallel=not args.sequential, resume=resume)
    except DataError as error:
        _error(f"{args.spec}: {error}")
        return EXIT_INVALID
    except KeyboardInterrupt as interrupted:
        _error(_interrupted_run(interrupted, "parent run"))
        return 130
    print_summary(spec.name, outcome)
    if args.metrics_out:
        write_metrics(args.metrics_out, outcome.metrics)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from runner.data.dvc_files import command

    return command(args.action, args.sources, args.out, args.sets, args.remote if args.action == "add" else None)


def cmd_check(args: argparse.Namespace) -> int:
    from runner.results.expect import command

    return command(args.specs, args.results, args.markdown, args.update_readme)


def cmd_reproduce(args: argparse.Namespace) -> int:
    from runner.runs.reproduce import command

    return command(args.run_id, args.tracking_uri, args.device, args.exact)


def cmd_search(args: argparse.Namespace) -> int:
    from runner.spec import SpecError, load_spec

    if args.workers < 1 or (args.n_trials is not None and args.n_trials < 1):
        _error("--workers and --n-trials must be >= 1")
        return EXIT_INVALID
    try:
        spec = load_spec(args.spec, args.sets)
    except SpecError as error:
        print(f"{args.spec}: invalid\n{error.render()}", file=sys.stderr)
        return EXIT_INVALID
    if spec.search is None:
        _error(f"{args.spec}: the spec has no search: block to run")
        return EXIT_INVALID
    from runner.search.storage import StorageError, parse

    try:  # before torch and optuna are imported: a wrong URL answers at once
        parse(args.storage, args.spec, args.workers)
    except StorageError as error:
        _error(str(error))
        return EXIT_INVALID
    if args.workers == 1 or args.worker_index is not None:  # this process runs trials
        from runner.search import TRIAL_ABANDONED
        from runner.tracking.tracker import start_tracking_process

        start_tracking_process(TRIAL_ABANDONED)  # MLflow starts up while torch and optuna load
    from runner.runtime.determinism import resolve_device

    resolve_device(spec.device)  # one this machine lacks: exit 2 before the study's first trial
    if _unreachable(args.tracking_uri, spec.tracking.uri):
        return EXIT_INVALID
    from runner.search.command import SearchArgs, search

    options = SearchArgs(
        args.spec,
        args.sets,
        args.n_trials,
        args.timeout,
        args.study,
        args.storage,
        args.workers,
        args.tracking_uri,
        args.best_out,
        args.worker_index,
        args.metrics_out,
    )
    try:
        return search(options, spec)
    except StorageError as error:
        _error(str(error))
        return EXIT_INVALID
    except KeyboardInterrupt:
        _error("interrupted; the study keeps every finished trial (resume it with --study)")
        return 130


def cmd_lr_find(args: argparse.Namespace) -> int:
    from runner.training.lr_find import command

    return command(
        args.spec,
        args.sets,
        sweep=(args.start, args.end, args.steps, args.divergence),
        out=args.out,
        device=args.device,
        uri=None if args.no_track else args.tracking_uri or "",
        experiment=args.experiment,
    )


def cmd_schema(args: argparse.Namespace) -> int:
    from runner.spec.schema import Spec

    print(json.dumps(Spec.model_json_schema(), indent=2))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    import registry
    from runner.results.report import print_registry

    registry.load_plugins()  # installed packages' components are listed too
    kinds = list(registry.REGISTRIES)
    if args.kind is not None and args.kind not in registry.REGISTRIES:
        from registry._registry import closest

        hint = closest(args.kind, kinds)
        _error(f"unknown kind {args.kind!r}." + (f" Did you mean {hint!r}?" if hint else "") + f" Kinds: {', '.join(kinds)}")
        return EXIT_INVALID
    print_registry({k: registry.REGISTRIES[k] for k in ([args.kind] if args.kind else kinds)})
    return 0


#: Errors a command ends on with their message alone, no traceback: (module, class, exit status).
_PLAIN_ERRORS = (
    ("runner.runtime.determinism", "DeviceUnavailable", EXIT_INVALID),  # raised before anything is logged
    ("runner.tracking.errors", "TrackingError", 1),  # the run was ended as far as MLflow could take it
    ("runner.training.loop", "NonFiniteLoss", 1),  # the run is FAILED; its checkpoint is the last good epoch's
)
#: ``SPECRUN_DEBUG=1`` (or ``--debug``): an unexpected error shows its traceback, for a bug report.
DEBUG_VARIABLE = "SPECRUN_DEBUG"


def main(argv: Sequence[str] | None = None) -> int:
    """The ``runner`` command as a function: its exit status. Nothing it can be given ends in a
    traceback: an error that is not a spec problem is one ``runner: error:`` line (exit 1),
    with its traceback only under ``--debug`` or ``SPECRUN_DEBUG=1``."""
    words = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in words or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")
    args = _parser().parse_args([w for w in words if w != "--debug"])
    handler: Callable[[argparse.Namespace], int] = args.handler
    from runner.runtime.warning_lines import as_lines

    try:
        with as_lines():  # the library's warnings, as one line each
            return handler(args)
    except Exception as error:
        if debug:
            raise
        for module, name, status in _PLAIN_ERRORS:
            # Each comes only from its module, imported by then (`validate` imports neither).
            kind = getattr(sys.modules.get(module), name, None)
            if kind is not None and isinstance(error, kind):
                _error(str(error))
                return status
        from runner.spec.yaml_source import shorten

        _error(f"{type(error).__name__}: {shorten(str(error), 2000)}")
        print(f"runner: (run again with --debug, or {DEBUG_VARIABLE}=1, to see where it happened)", file=sys.stderr)
        return 1


def entry() -> None:
    """The ``runner`` command (and ``python -m runner``): :func:`main`, then a quick exit.

    Python's teardown of torch, scikit-learn and torchmetrics (module cleanup, C++
    destructors) takes about a second after every command and writes nothing. So once
    ``main`` has returned, the threads that keep a process alive have ended and the exit
    handlers have run (the tracking process's last writes, logging), the output is flushed
    and the process ends without it. An exception leaves the normal way. The commands that
    train start with the garbage collector off (:mod:`runner.runtime.gc_policy`).
    """
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    if command in ("run", "search", "reproduce"):
        from runner.runtime import gc_policy

        gc_policy.start_up()
    code = main()
    import atexit
    import threading

    # The first steps of the interpreter's own exit, in its order: threading's exit hooks
    # (they stop idle executor threads), joining non-daemon threads, the atexit handlers.
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be written anyway
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
