"""Type hints of dbrt's native module (bindings/python/src)."""

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, TypedDict, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str
DEFAULT_HYPOTHESIS_TEMPLATE: str

class DbrtError(Exception):
    """A dbrt call failed: status is the C status name without DBRT_ ("INPUT_TOO_LONG"),
    code its number (include/dbrt.h)."""

    status: str
    code: int

def available_isas() -> List[str]:
    """The kernel tiers this CPU runs, best last."""

_Path = Union[str, "os.PathLike[str]"]
_Ids = Union[Sequence[int], npt.NDArray[np.integer[Any]]]
_Input = Union[str, Tuple[str, str], Sequence[str]]

class _ZeroShotResult(TypedDict):
    """Hugging Face's zero-shot pipeline result, labels sorted by score (stub only)."""

    sequence: str
    labels: List[str]
    scores: List[float]

class Model:
    def __init__(self, path: _Path, *, read: bool = False) -> None: ...
    @staticmethod
    def from_bytes(data: bytes) -> "Model": ...
    @property
    def path(self) -> Optional[str]: ...
    @property
    def labels(self) -> List[str]: ...
    @property
    def num_labels(self) -> int: ...
    @property
    def entailment_label(self) -> Optional[int]: ...
    @property
    def weight_type(self) -> str: ...
    @property
    def max_length(self) -> int: ...
    @property
    def hidden_size(self) -> int: ...
    @property
    def config(self) -> Dict[str, Any]: ...
    def session(
        self,
        *,
        threads: int = 1,
        max_length: Optional[int] = None,
        max_batch: int = 1,
        isa: Optional[str] = None,
        truncation: str = "longest_first",
        entailment_label: Union[int, str, None] = None,
        backend: str = "cpu",
        artifacts: Optional[_Path] = None,
        fallback: str = "always",
        onnxruntime_library: Optional[_Path] = None,
        qnn_library: Optional[_Path] = None,
        ascendcl_library: Optional[_Path] = None,
        ascend_device: int = 0,
    ) -> "Session": ...

class Session:
    @property
    def model(self) -> Model: ...
    @property
    def threads(self) -> int: ...
    @property
    def isa(self) -> str: ...
    @property
    def max_length(self) -> int: ...
    @property
    def backend(self) -> str: ...
    def last_run(self) -> Optional[Dict[str, Any]]: ...
    def classify(self, premise: str, hypothesis: Optional[str] = None) -> Dict[str, float]: ...
    def classify_logits(
        self, premise: str, hypothesis: Optional[str] = None
    ) -> npt.NDArray[np.float32]: ...
    def classify_batch(
        self, pairs: Sequence[_Input], *, batch_size: int = 32, logits: bool = False
    ) -> npt.NDArray[np.float32]: ...
    @overload
    def zero_shot(
        self,
        sequences: str,
        candidate_labels: Union[str, Sequence[str]],
        hypothesis_template: str = ...,
        multi_label: bool = False,
    ) -> _ZeroShotResult: ...
    @overload
    def zero_shot(
        self,
        sequences: Sequence[str],
        candidate_labels: Union[str, Sequence[str]],
        hypothesis_template: str = ...,
        multi_label: bool = False,
    ) -> List[_ZeroShotResult]: ...
    def tokenize(self, text: str, pair: Optional[str] = None) -> Dict[str, List[int]]: ...
    def run_logits(
        self, input_ids: _Ids, token_type_ids: Optional[_Ids] = None
    ) -> npt.NDArray[np.float32]: ...
    def run_hidden(
        self, input_ids: _Ids, token_type_ids: Optional[_Ids] = None
    ) -> npt.NDArray[np.float32]: ...
