//! A fixed pool of worker threads owned by a session. `run` hands out the job's thread indices
//! `0..n` one at a time to whichever thread claims each first, the caller included. Work is split
//! by index only, so results depend neither on scheduling nor on which thread ran an index: they
//! are bit-identical for any thread count. A run takes no lock and allocates nothing while the
//! workers are awake.
//!
//! Waiting adapts to the machine. A forward pass dispatches about a hundred small jobs, and waking
//! a sleeping thread costs more than a short sequence's whole job, so a waiting thread first spins
//! briefly, then yields its core, then sleeps on a condition variable. A yield that returns late
//! means another thread wanted this core (more threads than cores, in this session or across
//! sessions): the waiter then sleeps at once instead of taking turns from threads with work. And
//! since the caller claims indices too, a worker slow to wake delays nothing: the caller runs its
//! share. A session never runs more threads than the cores available to the process
//! ([`Pool::new`] caps the count).

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::kernels::Tile;

/// A job: called as `job(thread_index, thread_count)`.
type Job<'a> = dyn Fn(usize, usize) + Sync + 'a;

/// The job with its lifetime erased; `run` keeps the pointee alive while its indices run.
type JobRef = *const Job<'static>;

/// The low bits of [`Shared::word`] count the claimed indices of the current job, the high bits
/// are the job's generation (2^52 jobs: over a century at a million jobs a second). A pool has
/// at most 4095 threads.
const INDEX_BITS: u32 = 12;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;

/// Spins before yielding (about 4 µs: a pause is tens of nanoseconds).
const SPINS: u32 = 100;
/// Yielding for longer than this puts a waiter to sleep: the gaps between a forward pass's jobs
/// are far shorter, a pause between calls often is not.
const YIELD_FOR: Duration = Duration::from_micros(1000);
/// A yield that took longer than this gave the core to another thread that had work: sleep.
const CONTENDED: Duration = Duration::from_micros(50);

struct Shared {
    threads: usize,
    /// `generation << INDEX_BITS | claimed`: a thread claims index `claimed` of generation
    /// `generation` by a compare-and-swap of the whole word, so a claim can never land on a later
    /// job than the one it read.
    word: AtomicU64,
    /// The current job (the caller's [`JobRef`], on its stack): dereferenced only after a
    /// successful claim, while `run` waits for the index to finish.
    job: AtomicPtr<JobRef>,
    /// Indices of the current job finished (run or panicked).
    finished: AtomicUsize,
    panicked: AtomicBool,
    shutdown: AtomicBool,
    /// Workers asleep (or about to be) on `wake`; the caller notifies only when there are some.
    sleepers: AtomicUsize,
    /// The caller is asleep (or about to be) on `done`.
    caller_asleep: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
    done: Condvar,
}

/// A pool of threads: `run` may be called by one thread at a time (the session's `&mut self`).
pub(crate) struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

/// Waits until `ready()`: spins, then yields, then calls `sleep` until ready (a `sleep` that
/// blocks must re-check the condition under the lock its waker takes).
fn wait_until(ready: impl Fn() -> bool, sleep: impl Fn()) {
    for _ in 0..SPINS {
        if ready() {
            return;
        }
        std::hint::spin_loop();
    }
    let start = Instant::now();
    let mut before = start;
    while !ready() {
        std::thread::yield_now();
        let now = Instant::now();
        if now - before > CONTENDED || now - start > YIELD_FOR {
            while !ready() {
                sleep();
            }
            return;
        }
        before = now;
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ()> {
        // Nothing panics while holding the lock; recover anyway.
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims and runs indices of generation `generation` until none is left; returns the first
    /// panic of those this thread ran.
    fn help(&self, generation: u64) -> Option<Box<dyn Any + Send>> {
        let n = self.threads;
        let mut first_panic = None;
        let mut word = self.word.load(Ordering::Acquire);
        while word >> INDEX_BITS == generation && ((word & INDEX_MASK) as usize) < n {
            // Read before the claim: a successful claim proves the job had not finished, so
            // this is still its pointer (the next job's is stored only after every index of this
            // one has finished, claims included).
            let job = self.job.load(Ordering::Acquire);
            match self.word.compare_exchange_weak(
                word,
                word + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    let index = (word & INDEX_MASK) as usize;
                    // SAFETY: the claim succeeded, so `run` is waiting for this index to finish
                    // before its job (and the `JobRef` pointing at it) goes out of scope.
                    let r = catch_unwind(AssertUnwindSafe(|| unsafe { (**job)(index, n) }));
                    if let Err(p) = r {
                        self.panicked.store(true, Ordering::Relaxed);
                        first_panic.get_or_insert(p);
                    }
                    if self.finished.fetch_add(1, Ordering::SeqCst) + 1 == n
                        && self.caller_asleep.load(Ordering::SeqCst)
                    {
                        let _l = self.lock();
                        self.done.notify_one();
                    }
                    word = self.word.load(Ordering::Acquire);
                }
                Err(now) => word = now,
            }
        }
        first_panic
    }

    fn generation(&self) -> u64 {
        self.word.load(Ordering::SeqCst) >> INDEX_BITS
    }

    /// Blocks until a job after generation `seen` is published, or shutdown.
    fn sleep_worker(&self, seen: u64) {
        let mut l = self.lock();
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        while self.generation() == seen && !self.shutdown.load(Ordering::SeqCst) {
            l = self.wake.wait(l).unwrap_or_else(|e| e.into_inner());
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Blocks until all `threads` indices of the current job have finished.
    fn sleep_caller(&self) {
        let mut l = self.lock();
        self.caller_asleep.store(true, Ordering::SeqCst);
        while self.finished.load(Ordering::SeqCst) < self.threads {
            l = self.done.wait(l).unwrap_or_else(|e| e.into_inner());
        }
        self.caller_asleep.store(false, Ordering::SeqCst);
    }
}

impl Pool {
    /// A pool of `threads` threads in all (the caller plus `threads - 1` workers), capped at the
    /// cores available to this process unless `exact` (for tests of thread counts this machine
    /// lacks): more threads than cores only take turns on them.
    pub fn new(threads: usize, exact: bool) -> std::io::Result<Pool> {
        if exact {
            return Pool::spawn(threads);
        }
        let cores = std::thread::available_parallelism().map_or(usize::MAX, |n| n.get());
        if threads > cores {
            log::warn!(
                "{threads} threads requested but only {cores} cores are available: running {cores}"
            );
        }
        Pool::spawn(threads.min(cores))
    }

    /// A pool of exactly `threads` threads (at least 1), however many cores there are.
    fn spawn(threads: usize) -> std::io::Result<Pool> {
        let threads = threads.clamp(1, INDEX_MASK as usize);
        let shared = Arc::new(Shared {
            threads,
            word: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            finished: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            caller_asleep: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            done: Condvar::new(),
        });
        let mut pool = Pool {
            shared,
            workers: Vec::with_capacity(threads - 1),
        };
        for index in 1..threads {
            let shared = pool.shared.clone();
            // On an error, dropping `pool` stops the workers already started.
            let handle = std::thread::Builder::new()
                .name(format!("dbrt-worker-{index}"))
                .spawn(move || worker(&shared))?;
            pool.workers.push(handle);
        }
        // One job per worker before returning, each index held until all are claimed: every
        // worker has started and been through its loop, so whatever a new thread allocates on
        // its first steps (thread-local setup) is done while the session is created, not during
        // a run (the counting-allocator test caught one such allocation, now and then, under
        // load).
        let started = AtomicUsize::new(0);
        pool.run(&|_, n| {
            started.fetch_add(1, Ordering::SeqCst);
            wait_until(
                || started.load(Ordering::SeqCst) == n,
                std::thread::yield_now,
            );
        });
        Ok(pool)
    }

    pub fn threads(&self) -> usize {
        self.shared.threads
    }

    /// Runs `job(i, n)` for every thread index `i` in `0..n` and returns when all are done.
    pub fn run(&self, job: &Job<'_>) {
        let sh = &*self.shared;
        let n = sh.threads;
        if n == 1 {
            job(0, 1);
            return;
        }
        // SAFETY: the lifetime is erased only for the duration of this call: we wait below until
        // every index has finished, and nothing dereferences the pointer without a claim.
        let job: JobRef = unsafe { std::mem::transmute::<*const Job<'_>, JobRef>(job) };
        let generation = sh.generation() + 1;
        sh.finished.store(0, Ordering::Relaxed);
        sh.job
            .store(&job as *const JobRef as *mut JobRef, Ordering::Relaxed);
        // Publishes the job and the reset count with it.
        sh.word.store(generation << INDEX_BITS, Ordering::SeqCst);
        if sh.sleepers.load(Ordering::SeqCst) > 0 {
            let _l = sh.lock();
            sh.wake.notify_all();
        }
        let mine = sh.help(generation);
        wait_until(
            || sh.finished.load(Ordering::Acquire) == n,
            || sh.sleep_caller(),
        );
        sh.job.store(std::ptr::null_mut(), Ordering::Relaxed);
        let theirs = sh.panicked.swap(false, Ordering::Relaxed);
        if let Some(p) = mine {
            std::panic::resume_unwind(p);
        }
        assert!(!theirs, "a dbrt worker thread panicked");
    }
}

fn worker(shared: &Shared) {
    let mut seen = 0;
    loop {
        wait_until(
            || shared.generation() != seen || shared.shutdown.load(Ordering::Acquire),
            || shared.sleep_worker(seen),
        );
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        seen = shared.generation();
        // A worker's panic is reported by the caller (`panicked`); the payload is dropped.
        drop(shared.help(seen));
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        {
            let _l = self.shared.lock();
            self.shared.wake.notify_all();
        }
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

    fn cores() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    #[test]
    fn every_index_runs_once_per_job() {
        // Up to three times the cores: the claims must hold when threads take turns.
        for threads in 1..=3 * cores().max(2) {
            let pool = Pool::spawn(threads).unwrap();
            assert_eq!(pool.threads(), threads);
            for _ in 0..200 {
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
    fn more_threads_than_cores_are_capped() {
        let cores = cores();
        assert_eq!(Pool::new(cores + 3, false).unwrap().threads(), cores);
        assert_eq!(Pool::new(cores, false).unwrap().threads(), cores);
        assert_eq!(Pool::new(1, false).unwrap().threads(), 1);
        assert_eq!(Pool::new(0, false).unwrap().threads(), 1);
    }

    /// A job split by index as the model's are: every output computed whole by one index.
    fn outputs(pool: &Pool) -> Vec<u32> {
        let mut out = vec![0f32; 1000];
        let shared = SharedMut::new(&mut out);
        pool.run(&|i, n| {
            let r = share(1000, i, n);
            // SAFETY: the shares of different indices are disjoint.
            let mine = unsafe { shared.slice(r.clone()) };
            for (o, v) in r.zip(mine) {
                *v = (1..=o).map(|k| (k as f32).sqrt() / 3.0).sum::<f32>();
            }
        });
        out.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn oversubscribed_pools_give_the_same_bits() {
        let one = outputs(&Pool::spawn(1).unwrap());
        for threads in [2, 3, 4 * cores() + 1] {
            let pool = Pool::spawn(threads).unwrap();
            for _ in 0..20 {
                assert_eq!(outputs(&pool), one, "{threads} threads");
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
        for threads in [2, 3, 4 * cores()] {
            let pool = Pool::spawn(threads).unwrap();
            for bad in 0..threads {
                let r = catch_unwind(AssertUnwindSafe(|| {
                    pool.run(&|i, _| assert!(i != bad, "boom"))
                }));
                assert!(r.is_err(), "{threads} threads, index {bad} panicked");
                // Still usable, every index still run.
                let hits = AtomicUsize::new(0);
                pool.run(&|_, _| {
                    hits.fetch_add(1, Ordering::SeqCst);
                });
                assert_eq!(hits.load(Ordering::SeqCst), threads);
            }
        }
    }
}
