"""The model's and session's properties, bytes and path models, CrossEncoder's shapes."""

import numpy as np

import dbrt

PAIR = ("A man plays a guitar.", "A person makes music.")


def test_model_properties(model, model_path):
    assert model.labels == ["neutral", "contradiction_or_entailment"]
    assert model.num_labels == 2
    assert model.weight_type == "int8"
    assert model.entailment_label is None
    assert model.max_length == 512
    assert model.hidden_size == 384
    assert model.path == str(model_path)
    c = model.config
    assert (c["num_hidden_layers"], c["num_attention_heads"], c["vocab_size"]) == (12, 6, 128100)
    assert c["id2label"] == {0: "neutral", 1: "contradiction_or_entailment"}
    assert "int8" in repr(model)
    assert dbrt.__version__.count(".") == 2


def test_from_bytes_and_read_give_the_same_results(model, model_path, session):
    want = session.classify_logits(*PAIR)
    for m in (dbrt.Model.from_bytes(model_path.read_bytes()), dbrt.Model(model_path, read=True)):
        np.testing.assert_array_equal(m.session().classify_logits(*PAIR), want)
    assert dbrt.Model.from_bytes(model_path.read_bytes()).path is None


def test_session_properties(model):
    isas = dbrt.available_isas()
    assert isas[0] == "scalar"
    s = model.session(threads=2, max_length=128, isa=isas[-1])
    assert (s.threads, s.max_length, s.isa, s.backend) == (2, 128, isas[-1], "cpu")
    assert s.model.labels == model.labels
    assert s.last_run() is None
    s.classify(*PAIR)
    assert s.last_run() == {"backend": "cpu", "fallback": None}
    assert "threads=2" in repr(s)


def test_every_tier_and_thread_count_gives_the_same_bits(model, real_pairs):
    some = real_pairs[::211]
    want = model.session(isa="scalar").classify_batch(some, logits=True)
    for isa in dbrt.available_isas():
        for threads in (1, 2):
            got = model.session(isa=isa, threads=threads).classify_batch(some, logits=True)
            np.testing.assert_array_equal(got, want, err_msg=f"{isa} x{threads}")


def test_outputs_are_writable_float32_arrays(session):
    a = session.classify_batch([PAIR, PAIR])
    assert a.dtype == np.float32 and a.shape == (2, 2) and a.flags.writeable
    assert np.allclose(a.sum(axis=1), 1.0, atol=1e-6)
    a[0, 0] = 5.0
    h = session.run_hidden(session.tokenize(*PAIR)["input_ids"])
    assert h.shape == (len(session.tokenize(*PAIR)["input_ids"]), 384) and h.dtype == np.float32
    assert np.isfinite(h).all()


def test_texts_alone_and_lists_as_pairs(session):
    a = session.classify_batch(["A text alone.", list(PAIR)], logits=True)
    np.testing.assert_array_equal(a[0], session.classify_logits("A text alone."))
    np.testing.assert_array_equal(a[1], session.classify_logits(*PAIR))


def test_cross_encoder_shapes(model, model_path):
    ce = dbrt.CrossEncoder(str(model_path))
    one = ce.predict(PAIR)
    assert one.shape == (2,)
    many = ce.predict([PAIR, PAIR], apply_softmax=True)
    assert many.shape == (2, 2) and np.allclose(many.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(many[0], np.exp(one) / np.exp(one).sum())
    assert ce.predict([PAIR], convert_to_numpy=False) == [one.tolist()]
    assert ce.predict([]).shape == (0, 2)
    assert ce.labels == model.labels
    np.testing.assert_array_equal(ce.predict(np.array(PAIR)), one)
    np.testing.assert_array_equal(ce.predict([PAIR], activation_fn=lambda x: x * 2)[0], one * 2)
    import pytest

    with pytest.raises(TypeError, match=r"sentences\[0\]"):
        ce.predict(["ab", "cd", "ef"])
    with pytest.raises(TypeError, match=r"sentences\[1\]"):
        ce.predict([PAIR, ("a", "b", "c")])
    with pytest.raises(ValueError):
        ce.predict([PAIR], batch_size=0)
