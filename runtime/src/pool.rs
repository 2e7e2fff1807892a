//! A fixed pool of worker threads owned by a session. `run` hands every thread (the caller
//! included) the same job with its index; work is split by index only, so results do not depend
//! on scheduling and are bit-identical for any thread count. Dispatch takes a mutex and two
//! condition variables: no allocation per run. A forward pass dispatches about a hundred small
//! jobs, so threads spin briefly on atomics before sleeping: waking a sleeping thread costs more
//! than a short sequence's whole job.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::kernels::Tile;

/// A job: called as `job(thread_index, thread_count)`.
type Job<'a> = dyn Fn(usize, usize) + Sync + 'a;

#[derive(Clone, Copy)]
struct JobPtr(*const Job<'static>);
// SAFETY: the pointee is `Sync`, and `run` keeps it alive until every worker is done with it.
unsafe impl Send for JobPtr {}

struct State {
    job: Option<JobPtr>,
    generation: u64,
    remaining: usize,
    panicked: bool,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    start: Condvar,
    done: Condvar,
    /// Mirrors of `generation` and `remaining`, for spinning without the lock.
    generation: AtomicU64,
    remaining: AtomicUsize,
}

/// Spin iterations before sleeping (tens of microseconds).
const SPINS: u32 = 20_000;

pub(crate) struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    threads: usize,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking job is caught before it can poison the lock; recover anyway.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pool {
    /// A pool of `threads` threads in all: the caller plus `threads - 1` workers.
    pub fn new(threads: usize) -> std::io::Result<Pool> {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                job: None,
                generation: 0,
                remaining: 0,
                panicked: false,
                shutdown: false,
            }),
            start: Condvar::new(),
            done: Condvar::new(),
            generation: AtomicU64::new(0),
            remaining: AtomicUsize::new(0),
        });
        let mut workers = Vec::with_capacity(threads - 1);
        for index in 1..threads {
            let shared = shared.clone();
            let handle = std::thread::Builder::new()
                .name(format!("dbrt-worker-{index}"))
                .spawn(move || worker(&shared, index, threads))?;
            workers.push(handle);
        }
        let pool = Pool {
            shared,
            workers,
            threads,
        };
        // One empty job before returning: every worker has started and been through its loop
        // once, so whatever a new thread allocates on its first steps (thread-local setup) is
        // done while the session is created, not during a run (the counting-allocator test
        // caught one such allocation, now and then, under load).
        pool.run(&|_, _| {});
        Ok(pool)
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `job(i, n)` for every thread index `i` in `0..n` and returns when all are done.
    pub fn run(&self, job: &Job<'_>) {
        if self.threads == 1 {
            job(0, 1);
            return;
        }
        // SAFETY: the lifetime is erased only for the duration of this call: we wait below until
        // every worker has finished with the job and cleared nothing else refers to it.
        let ptr =
            JobPtr(unsafe { std::mem::transmute::<*const Job<'_>, *const Job<'static>>(job) });
        let sh = &*self.shared;
        {
            let mut st = lock(&sh.state);
            st.job = Some(ptr);
            st.generation += 1;
            st.remaining = self.threads - 1;
            sh.remaining.store(self.threads - 1, Ordering::Release);
            sh.generation.store(st.generation, Ordering::Release);
            sh.start.notify_all();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| job(0, self.threads)));
        let mut spins = 0;
        while sh.remaining.load(Ordering::Acquire) > 0 && spins < SPINS {
            std::hint::spin_loop();
            spins += 1;
        }
        let mut st = lock(&sh.state);
        while st.remaining > 0 {
            st = sh.done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.job = None;
        let theirs = std::mem::take(&mut st.panicked);
        drop(st);
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        assert!(!theirs, "a dbrt worker thread panicked");
    }
}

fn worker(shared: &Shared, index: usize, threads: usize) {
    let mut seen = 0;
    loop {
        let mut spins = 0;
        while shared.generation.load(Ordering::Acquire) == seen && spins < SPINS {
            std::hint::spin_loop();
            spins += 1;
        }
        let job = {
            let mut st = lock(&shared.state);
            while st.generation == seen && !st.shutdown {
                st = shared.start.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.shutdown {
                return;
            }
            seen = st.generation;
            st.job
        };
        let ok = match job {
            // SAFETY: `run` keeps the job alive until `remaining` reaches zero.
            Some(JobPtr(f)) => {
                catch_unwind(AssertUnwindSafe(|| unsafe { (*f)(index, threads) })).is_ok()
            }
            None => true,
        };
        let mut st = lock(&shared.state);
        st.panicked |= !ok;
        st.remaining -= 1;
        shared.remaining.store(st.remaining, Ordering::Release);
        if st.remaining == 0 {
            shared.done.notify_one();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        lock(&self.shared.state).shutdown = true;
        self.shared.start.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// The contiguous share `[start, end)` of `n` items for thread `i` of `threads`.
#[inline]
pub(crate) fn share(n: usize, i: usize, threads: usize) -> std::ops::Range<usize> {
    (n * i / threads)..(n * (i + 1) / threads)
}

/// A raw pointer to an output buffer that threads write disjoint parts of.
#[derive(Clone, Copy)]
pub(crate) struct SharedMut<T>(pub *mut T, pub usize);
// SAFETY: used only to write disjoint index ranges from the threads of one `Pool::run`.
unsafe impl<T: Send> Sync for SharedMut<T> {}
// SAFETY: as for Sync: the pointer moves between the threads of one run, which write disjoint parts.
unsafe impl<T: Send> Send for SharedMut<T> {}

impl<T> SharedMut<T> {
    pub fn new(s: &mut [T]) -> Self {
        SharedMut(s.as_mut_ptr(), s.len())
    }

    /// # Safety
    /// No other thread may access `range` while the returned slice lives.
    #[inline]
    // A shared handle hands out disjoint mutable parts by design: that is the type's purpose.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, range: std::ops::Range<usize>) -> &mut [T] {
        assert!(range.start <= range.end && range.end <= self.1);
        // SAFETY: in bounds (checked); exclusivity is the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(range.start), range.end - range.start) }
    }
}

impl SharedMut<f32> {
    /// The [`Tile`] of `rows` rows `ld` apart starting at `at`.
    ///
    /// # Safety
    /// No other thread may access the tile's values while it lives.
    pub unsafe fn tile(&self, at: usize, rows: usize, ld: usize) -> Tile<'_> {
        assert!(rows == 0 || at + (rows - 1) * ld + Tile::COLS <= self.1);
        // SAFETY: in bounds (checked); exclusivity is the caller's contract.
        unsafe { Tile::from_raw(self.0.add(at), rows, ld) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_index_runs_once_per_job() {
        for threads in 1..=4 {
            let pool = Pool::new(threads).unwrap();
            for _ in 0..100 {
                let hits: Vec<AtomicUsize> = (0..threads).map(|_| AtomicUsize::new(0)).collect();
                pool.run(&|i, n| {
                    assert_eq!(n, threads);
                    hits[i].fetch_add(1, Ordering::SeqCst);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::SeqCst) == 1));
            }
        }
    }

    #[test]
    fn shares_cover_everything_once() {
        for n in 0..50 {
            for t in 1..6 {
                let total: usize = (0..t).map(|i| share(n, i, t).len()).sum();
                assert_eq!(total, n);
            }
        }
    }

    #[test]
    fn a_panicking_job_is_reported_not_hung() {
        let pool = Pool::new(3).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.run(&|i, _| assert!(i != 2, "boom"))
        }));
        assert!(r.is_err());
        pool.run(&|_, _| {}); // still usable
    }
}
