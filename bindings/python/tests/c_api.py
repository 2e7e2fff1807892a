"""The C library (libdbrt.so) through ctypes: what a C program gets for the same inputs."""

import ctypes

import numpy as np


class CApi:
    def __init__(self, path):
        lib = ctypes.CDLL(str(path))
        c = ctypes
        lib.dbrt_last_error.restype = c.c_char_p
        lib.dbrt_model_open.argtypes = [c.c_char_p, c.c_size_t, c.POINTER(c.c_void_p)]
        lib.dbrt_model_num_labels.argtypes = [c.c_void_p, c.POINTER(c.c_size_t)]
        lib.dbrt_model_free.argtypes = [c.c_void_p]
        lib.dbrt_session_options_create.argtypes = [c.POINTER(c.c_void_p)]
        lib.dbrt_session_options_free.argtypes = [c.c_void_p]
        lib.dbrt_session_options_set_threads.argtypes = [c.c_void_p, c.c_size_t]
        lib.dbrt_session_create.argtypes = [c.c_void_p, c.c_void_p, c.POINTER(c.c_void_p)]
        lib.dbrt_session_free.argtypes = [c.c_void_p]
        lib.dbrt_session_classify_logits.argtypes = [
            c.c_void_p,
            c.c_char_p,
            c.c_size_t,
            c.c_char_p,
            c.c_size_t,
            c.POINTER(c.c_float),
            c.c_size_t,
        ]
        self.lib = lib

    def check(self, status):
        if status != 0:
            raise RuntimeError(f"dbrt C status {status}: {self.lib.dbrt_last_error().decode()}")

    def classify_logits(self, model_path, pairs):
        """Logits [len(pairs), labels] from one single-threaded session of the C API."""
        lib, c = self.lib, ctypes
        path = str(model_path).encode()
        model, options, session = c.c_void_p(), c.c_void_p(), c.c_void_p()
        self.check(lib.dbrt_model_open(path, len(path), c.byref(model)))
        try:
            n = c.c_size_t()
            self.check(lib.dbrt_model_num_labels(model, c.byref(n)))
            self.check(lib.dbrt_session_options_create(c.byref(options)))
            self.check(lib.dbrt_session_options_set_threads(options, 1))
            self.check(lib.dbrt_session_create(model, options, c.byref(session)))
            out = np.zeros((len(pairs), n.value), dtype=np.float32)
            buf = (c.c_float * n.value)()
            for i, (p, h) in enumerate(pairs):
                pb, hb = p.encode(), h.encode()
                self.check(
                    lib.dbrt_session_classify_logits(session, pb, len(pb), hb, len(hb), buf, n.value)
                )
                out[i] = np.frombuffer(buf, dtype=np.float32)
            return out
        finally:
            lib.dbrt_session_free(session)
            lib.dbrt_session_options_free(options)
            lib.dbrt_model_free(model)
