"""CrossEncoder: sentence-transformers' CrossEncoder.predict on a dbrt session."""

from __future__ import annotations

import os
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from ._dbrt import Model

Pair = Union[Tuple[str, str], Sequence[str]]


class CrossEncoder:
    """Scores (premise, hypothesis) pairs, as sentence-transformers' CrossEncoder does.

    model: a path to a .dbrt file or a dbrt.Model. threads, max_length and isa are the
    session's (see Model.session). The scores are the model's logits, one column per label
    (model.labels), or their softmax with apply_softmax=True.
    """

    def __init__(
        self,
        model: Union[str, "os.PathLike[str]", Model],
        *,
        threads: int = 1,
        max_length: Optional[int] = None,
        isa: Optional[str] = None,
    ) -> None:
        self.model = model if isinstance(model, Model) else Model(model)
        self.session = self.model.session(threads=threads, max_length=max_length, isa=isa)

    @property
    def labels(self) -> list:
        return self.model.labels

    def predict(
        self,
        sentences: Union[Pair, Sequence[Pair]],
        batch_size: int = 32,
        show_progress_bar: Optional[bool] = None,
        apply_softmax: bool = False,
        convert_to_numpy: bool = True,
    ) -> Union[np.ndarray, list]:
        """Scores pairs: an array [len(sentences), num_labels]; for one pair (a tuple of two
        strings) the row of that pair alone. batch_size pairs run per release of the GIL;
        show_progress_bar (None: on a terminal) prints progress to stderr, as
        sentence-transformers does."""
        single = (
            isinstance(sentences, (tuple, list))
            and len(sentences) == 2
            and all(isinstance(s, str) for s in sentences)
        )
        pairs = [tuple(sentences)] if single else [tuple(p) for p in sentences]
        for i, p in enumerate(pairs):
            if len(p) != 2:
                raise TypeError(f"sentences[{i}] is not a (premise, hypothesis) pair")
        if show_progress_bar is None:
            show_progress_bar = os.isatty(2) and len(pairs) > batch_size
        rows = []
        for start in range(0, len(pairs), batch_size):
            rows.append(
                self.session.classify_batch(
                    pairs[start : start + batch_size],
                    batch_size=batch_size,
                    logits=not apply_softmax,
                )
            )
            if show_progress_bar:
                import sys

                done = min(start + batch_size, len(pairs))
                print(f"\rdbrt: {done}/{len(pairs)} pairs", end="", file=sys.stderr)
        if show_progress_bar:
            import sys

            print(file=sys.stderr)
        scores = (
            np.concatenate(rows)
            if rows
            else np.zeros((0, self.model.num_labels), dtype=np.float32)
        )
        if single:
            scores = scores[0]
        return scores if convert_to_numpy else scores.tolist()
