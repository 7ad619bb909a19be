"""specrun: declarative, reproducible deep-learning experiments from one YAML spec.

The package's plan, by the flow of a run: ``spec/`` (the YAML, validated), ``data/`` (loaded,
split, fingerprinted), ``training/`` (the pipeline and its loops), ``tracking/`` (MLflow, and
the run record), ``runs/`` (a run, its folds or seeds, resume, reproduce), ``search/``
(Optuna), ``results/`` (what a run leaves for people), ``runtime/`` (the process it runs in),
and ``cli.py`` on top. ``docs/internals.md`` says which file to open for which change.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

__version__ = "0.1.0"

#: Modules that models logged by earlier versions name in their pickles, and where they are
#: now. ``mlflow.pytorch.load_model`` unpickles ``runner.served.ServedModel`` from a model
#: logged before the package had subfolders; the old name must keep finding the class.
MOVED_MODULES = {"runner.served": "runner.results.logged_model"}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports a moved module's old name as its new module (the same module object)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED_MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(MOVED_MODULES[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module was executed under its new name."""


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())
