"""Property-based fuzzing of what a user can hand ``runner validate``: mutated shipped specs
(structure and bytes), ``--set`` overrides and ``extends:`` chains. Every answer is exit 0 or
2 with one line per problem: never a traceback, never an internal error (exit 1), never a hang.

``SPECRUN_FUZZ_EXAMPLES`` sets the examples per property (default 500: 2,000 in all, seconds).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.cli import main
from tests.conftest import ROOT

EXAMPLES = int(os.environ.get("SPECRUN_FUZZ_EXAMPLES", "500"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=5000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], database=None
)
SPECS = sorted(p for p in (ROOT / "specs").rglob("*.yaml") if not p.name.endswith(".best.yaml"))


def _shipped(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if isinstance(data.get("extends"), str):  # the mutated copy lives elsewhere
        data["extends"] = str((path.parent / data["extends"]).resolve())
    return data


SHIPPED = [_shipped(p) for p in SPECS]

#: Values a user might write anywhere: wrong types, extremes, nonsense names, nesting.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["adam", "mlp", "cross_entropy", "kfold", "val/loss", "../../x", "/tmp/x", "auto", "full", "-1", "1e400"]),
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12
)


def _answered(text: bytes, *args: str) -> int:
    """``runner validate`` on a spec file holding ``text`` answers exit 0 or 2, in lines: its status."""
    with tempfile.TemporaryDirectory(prefix="specrun-fuzz-") as folder:
        spec = Path(folder) / "spec.yaml"
        spec.write_bytes(text)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["validate", str(spec), *args])
    shown = f"{err.getvalue()}\n--- the spec:\n{text[:3000]!r}\n--- arguments: {args!r}"
    assert code in (0, 2), shown
    assert "Traceback" not in err.getvalue() and "runner: error:" not in err.getvalue(), shown
    return code


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += _paths(value, (*prefix, i))
    return found


def _set(data: Any, path: tuple[Any, ...], value: Any, delete: bool) -> None:
    for key in path[:-1]:
        data = data[key]
    if delete:
        del data[path[-1]]
    else:
        data[path[-1]] = value


@FUZZ
@given(st.data())
def test_a_structurally_mutated_spec_gets_an_answer(data: st.DataObject) -> None:
    spec = data.draw(st.sampled_from(SHIPPED))
    mutated = yaml.safe_load(yaml.safe_dump(spec))
    for _ in range(data.draw(st.integers(1, 4))):
        paths = _paths(mutated)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "add":
            parent = path[:-1]
            target = mutated
            for key in parent:
                target = target[key]
            if isinstance(target, dict):
                target[data.draw(st.text(min_size=1, max_size=12))] = data.draw(values)
            continue
        _set(mutated, path, data.draw(values), delete=action == "delete")
    assert _answered(yaml.safe_dump(mutated, allow_unicode=True).encode()) in (0, 2)


@FUZZ
@given(st.data())
def test_a_spec_with_bytes_changed_gets_an_answer(data: st.DataObject) -> None:
    text = bytearray(data.draw(st.sampled_from(SPECS)).read_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(text)))
        kind = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = data.draw(
            st.one_of(
                st.binary(min_size=1, max_size=4),
                st.sampled_from(
                    [
                        b"&a ",
                        b"*a",
                        b"!!python/object:os.system ",
                        b"!!int ",
                        b"<<: ",
                        b"[",
                        b"{",
                        b"\t",
                        b"\x00",
                        b"\xff",
                        b": ",
                        b"\n- ",
                        b"'",
                        b'"',
                        b"|",
                    ]
                ),
            )
        )
        if kind == "insert":
            text[at:at] = chunk
        elif kind == "delete":
            del text[at : at + len(chunk)]
        else:
            text[at : at + len(chunk)] = chunk
    assert _answered(bytes(text)) in (0, 2)


keys = st.one_of(
    st.sampled_from(
        [
            "name",
            "seed",
            "model.hidden",
            "model.hidden.0",
            "model.hidden.0.x.y",
            "optimizer.lr",
            "train.epochs",
            "data.split",
            "data.split.folds",
            "metrics.0.type",
            "search.space",
            "extends",
            "tracking.tags.x",
        ]
    ),
    st.text(alphabet="abcxyz._[]0123456789", min_size=0, max_size=20),
)
set_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "[256,128",
            "&a [*a]",
            "*a",
            "!!python/name:os.system x",
            "!!int abc",
            "{a: {b: [1, 2]}}",
            "1e400",
            ".nan",
            "true",
            "null",
            "x: y: z",
            "[" * 50,
        ]
    ),
)


@FUZZ
@given(st.sampled_from(SPECS), st.lists(st.tuples(keys, set_values), min_size=1, max_size=3))
def test_set_overrides_get_an_answer(spec: Path, sets: list[tuple[str, str]]) -> None:
    args = [item for key, value in sets for item in ("--set", f"{key}={value}")]
    assert _answered(spec.read_bytes(), *args) in (0, 2)


@FUZZ
@given(st.one_of(st.text(max_size=300), st.sampled_from(["", ".", "/", "a" * 5000, "spec.yaml", "../" * 40 + "etc/passwd", "x\x00y"])))
def test_extends_of_anything_gets_an_answer(target: str) -> None:
    text = yaml.safe_dump({"extends": target, "name": "x"}).encode()
    assert _answered(text) in (0, 2)
