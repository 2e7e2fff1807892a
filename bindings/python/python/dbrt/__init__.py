"""dbrt: on-device DeBERTa-v3 inference from a .dbrt file (NLI, zero-shot classification).

    import dbrt
    model = dbrt.Model("models/aegis-nli-xsmall-int8.dbrt")
    session = model.session(threads=2)
    session.classify("A man plays a guitar.", "A person makes music.")

Calls that take token ids are named run_*, calls that take text classify_* (as in the Rust,
C and Java APIs). The engine runs with the GIL released; a session serves one call at a time,
so give each Python thread its own session (they share the model).
"""

from ._dbrt import (
    DEFAULT_HYPOTHESIS_TEMPLATE,
    DbrtError,
    Model,
    Session,
    __version__,
    available_isas,
)
from .cross_encoder import CrossEncoder

# A library's convention: its records reach the application's handlers, and nothing is
# printed when the application configured none (the session's last_run() records fallbacks).
import logging as _logging

_logging.getLogger("dbrt").addHandler(_logging.NullHandler())

__all__ = [
    "CrossEncoder",
    "DEFAULT_HYPOTHESIS_TEMPLATE",
    "DbrtError",
    "Model",
    "Session",
    "__version__",
    "available_isas",
]
