"""Bulk scoring with Ray Data (examples/python/ray_score.py) on a local Ray instance.

Skipped when Ray is not installed, unless DBRT_REQUIRE_RAY=1 (bindings/python/build.sh installs
ray[data] and sets it), which makes the missing module a failure.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

if os.environ.get("DBRT_REQUIRE_RAY") == "1":
    import ray
    import ray.data
else:
    ray = pytest.importorskip("ray")
    import ray.data

import pyarrow.parquet as pq

ROOT = pathlib.Path(__file__).resolve().parents[3]
EXAMPLE = pathlib.Path(os.environ.get("DBRT_RAY_EXAMPLE", ROOT / "examples/python/ray_score.py"))


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("ray_score", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["ray_score"] = module
    spec.loader.exec_module(module)
    # The workers cannot import the example by name: its classes travel by value.
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(module)
    return module


@pytest.fixture(scope="module")
def local_ray():
    # Three CPUs for Ray's scheduling on CI's two cores: two workers, and one for reading and
    # writing (the example refuses workers that would hold every CPU).
    ray.init(
        num_cpus=3, object_store_memory=512 << 20, include_dashboard=False, log_to_driver=False
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def rows(real_rows):
    # Every 8th real pair (160 rows, both splits), with its index to match the output by; every
    # 10th of them without a hypothesis (null), which is scored as one text.
    return [
        {
            "idx": i,
            "premise": r["premise"],
            "hypothesis": None if i % 80 == 0 else r["hypothesis"],
            "gold": r["label"],
        }
        for i, r in enumerate(real_rows)
        if i % 8 == 0
    ]


def expected(session, rows):
    return session.classify_batch(
        [r["premise"] if r["hypothesis"] is None else (r["premise"], r["hypothesis"]) for r in rows]
    )


def read_jsonl_dir(d):
    out = []
    for f in sorted(pathlib.Path(d).glob("*.json*")):
        with open(f, encoding="utf-8") as fh:
            out.extend(json.loads(line) for line in fh if line.strip())
    return out


def check(rows_out, rows, model, want, exact):
    assert len(rows_out) == len(rows)
    by_idx = {r["idx"]: r for r in rows_out}
    assert sorted(by_idx) == [r["idx"] for r in rows], "rows lost or duplicated"
    labels = model.labels
    for k, r in enumerate(rows):
        got = by_idx[r["idx"]]
        # The input's columns are kept.
        assert (got["premise"], got["hypothesis"], got["gold"]) == (
            r["premise"],
            r["hypothesis"],
            r["gold"],
        )
        probs = np.array([got[f"prob_{name}"] for name in labels])
        if exact:  # Parquet keeps float32
            assert probs.astype(np.float32).tobytes() == want[k].tobytes(), (k, probs, want[k])
        else:  # JSON: float32 written with 15 decimals
            np.testing.assert_allclose(probs, want[k].astype(np.float64), rtol=0, atol=1e-15)
        assert got["label"] == labels[int(np.argmax(want[k]))]
        assert got["score"] == pytest.approx(float(want[k].max()), abs=1e-15)


def test_jsonl_scored_as_the_session_scores_it(
    example, local_ray, model_path, model, session, rows, tmp_path
):
    src = tmp_path / "pairs.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    n = example.score(model_path, str(src), str(tmp_path / "out"), workers=2, batch_size=64)
    assert n == len(rows)
    check(read_jsonl_dir(tmp_path / "out"), rows, model, expected(session, rows), exact=False)


def test_parquet_directory_bit_for_bit(
    example, local_ray, model_path, model, session, rows, tmp_path
):
    import pyarrow as pa

    src = tmp_path / "pairs"  # a directory of four files, as a large dataset comes
    src.mkdir()
    for k in range(4):
        part = rows[k * len(rows) // 4 : (k + 1) * len(rows) // 4]
        pq.write_table(pa.Table.from_pylist(part), src / f"part-{k}.parquet")
    out = tmp_path / "out"
    example.score(
        model_path, str(src), str(out), fmt="parquet", workers=2, batch_size=32,
        preserve_order=True,
    )
    table = pq.read_table(out).to_pylist()
    check(table, rows, model, expected(session, rows), exact=True)


def test_each_worker_maps_the_model_file(example, local_ray, model_path, model, rows):
    size = os.path.getsize(model_path)
    scorer = ray.remote(num_cpus=1)(example.DbrtScorer)
    actors = [scorer.remote(str(model_path), "premise", "hypothesis") for _ in range(2)]
    batch = {k: np.array([r[k] for r in rows[:4]], dtype=object) for k in ("premise", "hypothesis")}
    outs = ray.get([a.__call__.remote(batch) for a in actors])
    assert all(len(o["label"]) == 4 for o in outs)
    maps = ray.get([a.model_mapping.remote() for a in actors])
    assert len({pid for pid, _, _ in maps}) == 2, maps  # two processes
    for pid, mapped, resident in maps:
        # The whole file is mapped (shared with the page cache), not read into the heap.
        assert mapped >= size and resident > 0, (pid, mapped, resident, size)
    for a in actors:
        ray.kill(a)


def test_the_script_joins_a_running_cluster(local_ray, model_path, rows, tmp_path):
    """The command line, as on a cluster: --address of the running instance, columns named
    sentence1/sentence2 (GLUE's), Parquet out from JSONL in."""
    src = tmp_path / "glue.jsonl"
    src.write_text(
        "".join(
            json.dumps({"sentence1": r["premise"], "sentence2": r["hypothesis"]}) + "\n"
            for r in rows[:40]
        ),
        encoding="utf-8",
    )
    address = ray.get_runtime_context().gcs_address
    run = subprocess.run(
        [sys.executable, str(EXAMPLE), "--model", str(model_path), "--input", str(src),
         "--output", str(tmp_path / "out"), "--output-format", "parquet", "--address", address,
         "--threads", "2"],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "40 rows scored" in run.stdout, run.stdout
    table = pq.read_table(tmp_path / "out")
    assert table.num_rows == 40
    assert {"sentence1", "sentence2", "label", "score"} <= set(table.column_names)


def test_bad_columns_are_named(example, local_ray, model_path, tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps({"question": "a", "answer": "b"}) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="no premise column among"):
        example.score(model_path, str(src), str(tmp_path / "out"))
    # A gold "label" column would be overwritten by the prediction.
    src.write_text(json.dumps({"premise": "a", "hypothesis": "b", "label": 1}) + "\n")
    with pytest.raises(SystemExit, match=r"the output adds \(label\): rename them"):
        example.score(model_path, str(src), str(tmp_path / "out"))


def test_a_row_without_a_premise_fails_the_job(example, local_ray, model_path, tmp_path):
    src = tmp_path / "pairs.jsonl"
    rows = [{"premise": "A man plays.", "hypothesis": "Music."}, {"premise": None, "hypothesis": "x"}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(Exception, match="a row without a premise"):
        example.score(model_path, str(src), str(tmp_path / "out"), workers=1)


def test_workers_that_would_hold_every_cpu_are_refused(example, local_ray, model_path, tmp_path):
    src = tmp_path / "pairs.jsonl"
    src.write_text(json.dumps({"premise": "a", "hypothesis": "b"}) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="3 workers x 1 threads need 3 CPUs"):
        example.score(model_path, str(src), str(tmp_path / "out"), workers=3)
