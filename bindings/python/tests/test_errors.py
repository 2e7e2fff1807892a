"""Every error path raises: DbrtError with the C library's status for what the engine refuses,
TypeError for arguments of the wrong Python type. A failed call leaves the session usable."""

import numpy as np
import pytest

import dbrt

PAIR = ("A man plays a guitar.", "A person makes music.")


def raises(status, fn, *args, match=None, **kwargs):
    with pytest.raises(dbrt.DbrtError, match=match) as e:
        fn(*args, **kwargs)
    assert e.value.status == status, str(e.value)
    assert isinstance(e.value.code, int) and e.value.code > 0
    return e.value


def test_statuses_carry_the_c_numbers(tmp_path):
    e = raises("IO_ERROR", dbrt.Model, tmp_path / "missing.dbrt", match="missing.dbrt")
    assert e.code == 9
    assert "cannot read" in str(e)


def test_bad_files(tmp_path, model_path):
    good = model_path.read_bytes()
    raises("NOT_A_MODEL", dbrt.Model.from_bytes, b"x" * 4096)
    raises("TRUNCATED_FILE", dbrt.Model.from_bytes, good[: len(good) // 2])
    bad = bytearray(good)
    bad[300] ^= 0xFF
    raises("CORRUPT_FILE", dbrt.Model.from_bytes, bytes(bad))
    f = tmp_path / "empty.dbrt"
    f.write_bytes(b"")
    with pytest.raises(dbrt.DbrtError):
        dbrt.Model(f)
    with pytest.raises(dbrt.DbrtError):
        dbrt.Model(f, read=True)
    with pytest.raises(TypeError):
        dbrt.Model.from_bytes("not bytes")
    assert dbrt.Model.from_bytes(bytearray(good)).labels == dbrt.Model(model_path).labels


def test_session_options(model):
    raises("INVALID_ARGUMENT", model.session, isa="sse9")
    other = "neon" if "avx2" in dbrt.available_isas() else "avx2"
    raises("UNSUPPORTED_ISA", model.session, isa=other)
    raises("INVALID_ARGUMENT", model.session, truncation="middle")
    raises("INVALID_ARGUMENT", model.session, fallback="sometimes")
    raises("UNKNOWN_BACKEND", model.session, backend="gpu")
    raises("INVALID_ARGUMENT", model.session, entailment_label=7)
    raises("INVALID_ARGUMENT", model.session, entailment_label="entailment")
    raises("INVALID_ARGUMENT", model.session, max_length=2)
    with pytest.raises(OverflowError):
        model.session(threads=-1)
    with pytest.raises(TypeError):
        model.session(2)  # keyword-only


def test_backend_that_cannot_attach(model, tmp_path):
    raises(
        "BACKEND_UNAVAILABLE",
        model.session,
        backend="ascend",
        fallback="never",
        ascendcl_library=tmp_path / "no-libascendcl.so",
    )
    # The default policy falls back to the CPU, and says so.
    s = model.session(backend="ascend", ascendcl_library=tmp_path / "no-libascendcl.so")
    s.classify(*PAIR)
    run = s.last_run()
    assert run["backend"] == "cpu"
    assert run["fallback"]["kind"] == "backend unavailable"


def test_run_errors(session, model):
    raises("EMPTY_INPUT", session.run_logits, [])
    raises("INPUT_TOO_LONG", session.run_logits, [1] * (model.max_length + 1))
    raises("INVALID_TOKEN", session.run_logits, [1, model.config["vocab_size"], 2])
    raises("INVALID_TOKEN", session.run_logits, [1, -1, 2])
    raises("INVALID_TOKEN", session.run_hidden, [1, 2**40])
    raises("INVALID_TOKEN", session.run_logits, [1, 2**70])
    raises("INVALID_TOKEN", session.run_logits, np.array([1, 2**63 + 5], dtype=np.uint64))
    e = raises("INVALID_TOKEN", session.run_logits, [1, 5, 2], [0, -1, 0])
    assert "token type" in str(e)
    with pytest.raises(TypeError, match="booleans"):
        session.run_logits([True, False])
    raises("INVALID_ARGUMENT", session.run_logits, [1, 5, 2], [0, 0])
    with pytest.raises(TypeError):
        session.run_logits("1 2 3")
    # Hugging Face's return_tensors="np" shape (1, n) is one sequence.
    ids = session.tokenize(*PAIR)["input_ids"]
    np.testing.assert_array_equal(session.run_logits(np.array([ids])), session.run_logits(ids))
    short = model.session(max_length=8)
    with pytest.raises(dbrt.DbrtError):
        short.run_logits(list(range(1, 12)))
    # A long text is truncated to the maximum, not refused.
    assert len(short.tokenize("word " * 50)["input_ids"]) == 8


def test_text_errors(session):
    raises("INPUT_TOO_LONG", session.classify, "a" * 200_000)
    with pytest.raises(UnicodeEncodeError):
        session.classify("\ud800")
    with pytest.raises(TypeError):
        session.classify(None)


def test_batch_errors_name_the_pair(session):
    pairs = [PAIR, PAIR, ("a" * 200_000, "b")]
    e = raises("INPUT_TOO_LONG", session.classify_batch, pairs, batch_size=2)
    assert str(e).startswith("pairs[2]: ")
    raises("INVALID_ARGUMENT", session.classify_batch, [PAIR], batch_size=0)
    # A batch size beyond the pairs is all of them at once (no overflow, no lost rows).
    for huge in (2**63, 2**63 + 1, 2**64 - 1):
        got = session.classify_batch([PAIR, PAIR, PAIR], batch_size=huge)
        np.testing.assert_array_equal(got, session.classify_batch([PAIR] * 3))
    with pytest.raises(TypeError, match="one string"):
        session.classify_batch("premise")
    with pytest.raises(TypeError, match=r"pairs\[1\]"):
        session.classify_batch([PAIR, ("a", "b", "c")])
    with pytest.raises(TypeError, match=r"pairs\[0\]"):
        session.classify_batch([3])
    assert session.classify_batch([]).shape == (0, 2)


def test_zero_shot_errors(model, session):
    raises("NO_ENTAILMENT_LABEL", session.zero_shot, "text", ["a", "b"])
    zs = model.session(entailment_label=1)
    raises("INVALID_ARGUMENT", zs.zero_shot, "text", ["a", "b"], hypothesis_template="no slot")
    # Formatted by str.format, as Hugging Face's pipeline does.
    assert zs.zero_shot("text", ["a", "b"], hypothesis_template="About {0}.") == zs.zero_shot(
        "text", ["a", "b"], hypothesis_template="About {}."
    )
    with pytest.raises(IndexError):
        zs.zero_shot("text", ["a", "b"], hypothesis_template="{} and {}")
    raises("INVALID_ARGUMENT", zs.zero_shot, "text", [])
    raises("INVALID_ARGUMENT", zs.zero_shot, "text", " , ")
    with pytest.raises(TypeError):
        zs.zero_shot(["text", 3], ["a"])


@pytest.mark.parametrize("point", ["tokenizer", "worker"])
def test_a_bug_is_internal_error_not_a_crash(model, point):
    s = model.session(threads=2)
    before = s.classify(*PAIR)
    s._inject_panic(point)
    e = raises("INTERNAL_ERROR", s.classify, *PAIR, match="a bug in dbrt")
    assert e.code == 22
    assert isinstance(e, Exception)
    assert s.classify(*PAIR) == before


def test_a_failed_call_leaves_the_session_usable(session):
    before = session.classify(*PAIR)
    with pytest.raises(dbrt.DbrtError):
        session.run_logits([])
    with pytest.raises(dbrt.DbrtError):
        session.classify_batch([PAIR, ("a" * 200_000, "b")])
    assert session.classify(*PAIR) == before
