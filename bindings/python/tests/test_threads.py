"""The GIL is released while the engine runs: Python threads with sessions of their own use
several cores, and a session shared by threads serves them one at a time, correctly."""

import os
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


def _run_split(model, pairs, threads):
    sessions = [model.session() for _ in range(threads)]
    parts = [pairs[i::threads] for i in range(threads)]
    out = [None] * threads

    def work(i):
        out[i] = sessions[i].classify_batch(parts[i], logits=True)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - start
    result = np.empty((len(pairs), model.num_labels), dtype=np.float32)
    for i in range(threads):
        result[i::threads] = out[i]
    return wall, result


def test_two_threads_are_faster_than_one_on_a_batch(model, real_pairs):
    """Best of three each way; the results are the same bits. (A speed check, not a target:
    the target and its numbers live in benches/python.py.)"""
    if len(os.sched_getaffinity(0)) < 2:
        import pytest

        pytest.skip("one core")
    pairs = real_pairs[:240]
    one = min(_run_split(model, pairs, 1)[0] for _ in range(3))
    runs = [_run_split(model, pairs, 2) for _ in range(3)]
    two = min(w for w, _ in runs)
    want = model.session().classify_batch(pairs, logits=True)
    for _, got in runs:
        np.testing.assert_array_equal(got, want)
    assert two < 0.85 * one, f"1 thread {one:.3f} s, 2 threads {two:.3f} s"


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
