"""Zero-shot: Hugging Face's pipeline result and the formula, on the real model."""

import numpy as np
import pytest

import dbrt

TEXT = "The team won the championship after a dramatic penalty shoot-out."
LABELS = ["sports", "politics", "cooking", "finance"]


@pytest.fixture(scope="module")
def zs(model):
    # The default model's second label wins for entailment (README "The default model").
    return model.session(entailment_label="contradiction_or_entailment")


def formula(zs, text, labels, template, multi_label):
    logits = np.array(
        [zs.classify_logits(text, template.format(l)) for l in labels], dtype=np.float64
    )
    entail, contra = 1, 0
    if multi_label or len(labels) == 1:
        e = np.exp(logits[:, [contra, entail]])
        return (e[:, 1] / e.sum(axis=1)).tolist()
    e = np.exp(logits[:, entail] - logits[:, entail].max())
    return (e / e.sum()).tolist()


@pytest.mark.parametrize("multi_label", [False, True])
def test_scores_are_the_formula_sorted(zs, multi_label):
    template = "This text is about {}."
    got = zs.zero_shot(TEXT, LABELS, hypothesis_template=template, multi_label=multi_label)
    assert set(got) == {"sequence", "labels", "scores"}
    assert got["sequence"] == TEXT
    assert sorted(got["labels"]) == sorted(LABELS)
    assert got["scores"] == sorted(got["scores"], reverse=True)
    want = dict(zip(LABELS, formula(zs, TEXT, LABELS, template, multi_label)))
    for label, score in zip(got["labels"], got["scores"]):
        assert score == pytest.approx(want[label], abs=2e-6)
    if not multi_label:
        assert sum(got["scores"]) == pytest.approx(1.0, abs=1e-5)


def test_default_template_and_label_string_and_many_texts(zs):
    one = zs.zero_shot(TEXT, "sports, politics ,cooking,")
    assert sorted(one["labels"]) == ["cooking", "politics", "sports"]
    assert one == zs.zero_shot(TEXT, ["sports", "politics", "cooking"], dbrt.DEFAULT_HYPOTHESIS_TEMPLATE)
    many = zs.zero_shot([TEXT, "Parliament passed the budget."], ["sports", "politics"])
    assert isinstance(many, list) and len(many) == 2
    assert many[0] == zs.zero_shot(TEXT, ["sports", "politics"])
    assert many[1]["sequence"] == "Parliament passed the budget."


def test_one_candidate_is_entailment_against_contradiction(zs):
    got = zs.zero_shot(TEXT, ["sports"])
    assert got["scores"][0] == pytest.approx(formula(zs, TEXT, ["sports"], dbrt.DEFAULT_HYPOTHESIS_TEMPLATE, True)[0], abs=2e-6)
