"""CrossEncoder: sentence-transformers' CrossEncoder.predict on a dbrt session."""

from __future__ import annotations

import os
import sys
from typing import Callable, Optional, Sequence, Union

import numpy as np

from ._dbrt import Model

Pair = Sequence[str]


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
        activation_fn: Optional[Callable[[np.ndarray], np.ndarray]] = None,
        apply_softmax: bool = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        num_workers: int = 0,
    ) -> Union[np.ndarray, list]:
        """Scores pairs: an array [len(sentences), num_labels]; for one pair (its first item a
        string, as sentence-transformers decides) that pair's row alone. activation_fn is
        applied to the logits; apply_softmax then takes the softmax over the labels.
        batch_size pairs run per release of the GIL; show_progress_bar (None: on a terminal)
        prints progress to stderr. convert_to_tensor needs torch; num_workers is accepted
        and unused (the engine's threads are the session's)."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
        single = len(sentences) > 0 and isinstance(sentences[0], str)
        pairs = [sentences] if single else list(sentences)
        for i, p in enumerate(pairs):
            if isinstance(p, str) or len(p) != 2 or not all(isinstance(s, str) for s in p):
                raise TypeError(f"sentences[{i}] is not a (premise, hypothesis) pair of strings")
        pairs = [(str(p[0]), str(p[1])) for p in pairs]
        if show_progress_bar is None:
            show_progress_bar = os.isatty(2) and len(pairs) > batch_size
        rows = []
        for start in range(0, len(pairs), batch_size):
            rows.append(
                self.session.classify_batch(
                    pairs[start : start + batch_size], batch_size=batch_size, logits=True
                )
            )
            if show_progress_bar:
                done = min(start + batch_size, len(pairs))
                print(f"\rdbrt: {done}/{len(pairs)} pairs", end="", file=sys.stderr)
        if show_progress_bar:
            print(file=sys.stderr)
        scores = (
            np.concatenate(rows)
            if rows
            else np.zeros((0, self.model.num_labels), dtype=np.float32)
        )
        if activation_fn is not None:
            scores = np.asarray(activation_fn(scores), dtype=np.float32)
        if apply_softmax:
            e = np.exp(scores - scores.max(axis=1, keepdims=True))
            scores = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
        if single:
            scores = scores[0]
        if convert_to_tensor:
            import torch

            return torch.from_numpy(scores)
        return scores if convert_to_numpy else scores.tolist()
