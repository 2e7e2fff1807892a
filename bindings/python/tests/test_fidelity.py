"""The binding gives the engine's own results: bit for bit what the CLI and the C API give on
the 1,277 real pairs, and Hugging Face's token ids."""

import json
import subprocess

import numpy as np
import pytest

from c_api import CApi


def cli_eval(cli, model_path, pairs, tmp_path, *extra):
    rows = tmp_path / "pairs.jsonl"
    with open(rows, "w", encoding="utf-8") as f:
        for p, h in pairs:
            f.write(json.dumps({"premise": p, "hypothesis": h}) + "\n")
    out = tmp_path / "out.jsonl"
    subprocess.run(
        [str(cli), "eval", "--model", str(model_path), "--data", str(rows), "--out", str(out), *extra],
        check=True,
        capture_output=True,
    )
    with open(out, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def py_logits(session, real_pairs):
    return session.classify_batch(real_pairs, logits=True)


def test_logits_and_probabilities_equal_the_clis_bit_for_bit(model, session, model_path, cli, real_pairs, py_logits, tmp_path):
    logits = py_logits
    probs = session.classify_batch(real_pairs[::3])
    rows = cli_eval(cli, model_path, real_pairs, tmp_path, "--threads", "2")
    assert logits.dtype == np.float32 and logits.shape == (1277, model.num_labels)
    cli_logits = np.array([r["logits"] for r in rows], dtype=np.float32)
    cli_probs = np.array([[r["probabilities"][l] for l in model.labels] for r in rows[::3]], dtype=np.float32)
    np.testing.assert_array_equal(logits, cli_logits)
    np.testing.assert_array_equal(probs, cli_probs)
    # The predicted label is the CLI's too.
    assert [model.labels[i] for i in logits.argmax(axis=1)] == [r["label"] for r in rows]


def test_logits_equal_the_c_apis_bit_for_bit(model_path, c_library, real_pairs, py_logits):
    c_logits = CApi(c_library).classify_logits(model_path, real_pairs)
    np.testing.assert_array_equal(py_logits, c_logits)


def test_every_call_agrees_with_classify_batch(model, session, real_pairs):
    """classify, classify_logits, run_logits on tokenize's ids and CrossEncoder give the batch's
    bits (on a spread of the pairs)."""
    import dbrt

    some = real_pairs[::97]
    logits = session.classify_batch(some, logits=True, batch_size=5)
    probs = session.classify_batch(some, batch_size=3)
    cross = dbrt.CrossEncoder(model, threads=2).predict(some, batch_size=4)
    np.testing.assert_array_equal(cross, logits)
    for i, (p, h) in enumerate(some):
        np.testing.assert_array_equal(session.classify_logits(p, h), logits[i])
        d = session.classify(p, h)
        assert list(d) == model.labels
        np.testing.assert_array_equal(np.array(list(d.values()), dtype=np.float32), probs[i])
        enc = session.tokenize(p, h)
        np.testing.assert_array_equal(session.run_logits(enc["input_ids"], enc["token_type_ids"]), logits[i])
        np.testing.assert_array_equal(session.run_logits(np.array(enc["input_ids"], dtype=np.int64)), logits[i])


def test_tokenize_gives_hugging_faces_ids(session, real_rows):
    for r in real_rows[::7]:
        enc = session.tokenize(r["premise"], r["hypothesis"])
        assert enc["input_ids"] == r["input_ids"], r["id"]
        assert enc["attention_mask"] == [1] * len(r["input_ids"])
        sep = enc["input_ids"].index(2)
        assert enc["token_type_ids"] == [0] * (sep + 1) + [1] * (len(r["input_ids"]) - sep - 1)


def test_f32_model_matches_transformers_goldens(real_rows):
    """The f32 model through Python against Hugging Face transformers' fp32 logits."""
    import os
    import pathlib

    import dbrt

    from conftest import ROOT

    path = pathlib.Path(os.environ.get("DBRT_F32_MODEL", ROOT / "models/aegis-nli-xsmall.dbrt"))
    s = dbrt.Model(path).session(threads=2)
    some = real_rows[::50]
    got = s.classify_batch([(r["premise"], r["hypothesis"]) for r in some], logits=True)
    want = np.array([r["logits_fp32"] for r in some], dtype=np.float32)
    assert np.abs(got - want).max() < 1e-3
