"""The GIL is released while the engine runs: Python threads with sessions of their own use
several cores, and a session shared by threads serves them one at a time, correctly."""

import threading
import time

import numpy as np


def test_python_runs_while_the_engine_works(model, real_pairs):
    """While a batch runs in one thread, the main thread keeps executing Python: impossible if
    the call held the GIL (one chunk: the GIL is not given back between chunks)."""
    s = model.session()
    pairs = real_pairs[:200]
    done = threading.Event()
    ticks = 0

    def work():
        s.classify_batch(pairs, batch_size=len(pairs))
        done.set()

    t = threading.Thread(target=work)
    t.start()
    while not done.is_set():
        ticks += 1
        time.sleep(0)
    t.join()
    assert ticks > 1000, ticks


def test_two_sessions_run_at_once(model, real_pairs):
    """While one thread's session runs a batch (one chunk), another session's calls complete
    in the main thread: engine calls run at the same time, on two cores where there are two.
    (How much faster that is, is measured by benches/python.py, not asserted here: the
    machine is shared.)"""
    a, b = model.session(), model.session()
    pairs = real_pairs[:200]
    want = b.classify_logits(*pairs[0])
    done = threading.Event()
    result = {}

    def work():
        result["batch"] = a.classify_batch(pairs, batch_size=len(pairs), logits=True)
        done.set()

    t = threading.Thread(target=work)
    t.start()
    calls = 0
    while not done.is_set():
        np.testing.assert_array_equal(b.classify_logits(*pairs[0]), want)
        calls += 1
    t.join()
    assert calls >= 5, calls
    np.testing.assert_array_equal(result["batch"], model.session().classify_batch(pairs, logits=True))


def test_one_session_shared_by_threads_serves_each_call_whole(model, real_pairs):
    s = model.session()
    pairs = real_pairs[:64]
    want = s.classify_batch(pairs, logits=True)
    got = [None] * 4

    def work(i):
        got[i] = s.classify_batch(pairs, logits=True, batch_size=3)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for g in got:
        np.testing.assert_array_equal(g, want)
