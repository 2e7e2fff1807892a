"""Shared fixtures: the real model, its fixture pairs, the CLI and the C library.

bindings/python/build.sh sets the paths (DBRT_MODEL, DBRT_F32_MODEL, DBRT_CLI, DBRT_C_LIBRARY,
DBRT_FIXTURES); run from a source tree without it, they default to the tree's.
"""

import json
import os
import pathlib

import pytest

import dbrt

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _path(var, default):
    p = pathlib.Path(os.environ.get(var, ROOT / default))
    if not p.exists():
        pytest.fail(f"{p} is missing ({var}; run scripts/fetch-model.sh and cargo build --release)")
    return p


@pytest.fixture(scope="session")
def model_path():
    return _path("DBRT_MODEL", "models/aegis-nli-xsmall-int8.dbrt")


@pytest.fixture(scope="session")
def model(model_path):
    return dbrt.Model(model_path)


@pytest.fixture(scope="session")
def session(model):
    return model.session(threads=1)


@pytest.fixture(scope="session")
def cli():
    return _path("DBRT_CLI", "target/release/dbrt")


@pytest.fixture(scope="session")
def c_library():
    return _path("DBRT_C_LIBRARY", "target/release/libdbrt.so")


@pytest.fixture(scope="session")
def real_rows():
    """The 1,277 real NLI rows (MNLI matched dev, RTE dev) with gold labels and HF's ids."""
    d = _path("DBRT_FIXTURES", "tests/fixtures") / "real"
    rows = []
    for name in ("mnli_dev_matched.goldens.jsonl", "rte_dev.goldens.jsonl"):
        with open(d / name, encoding="utf-8") as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    assert len(rows) == 1277
    return rows


@pytest.fixture(scope="session")
def real_pairs(real_rows):
    return [(r["premise"], r["hypothesis"]) for r in real_rows]
