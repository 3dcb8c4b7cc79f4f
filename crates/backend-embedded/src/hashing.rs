//! argon2id password hashing on a fixed set of threads, each with one
//! reusable memory block, fed through a bounded queue.
//!
//! Why not `spawn_blocking` and `Argon2::hash_password`: that allocates a
//! fresh 19 MiB block per hash on whichever of up to 512 blocking threads runs
//! it, and glibc keeps and fragments those blocks (gigabytes under load, never
//! returned). Here memory is `threads × m_cost`, and an idle worker gives its
//! block back. Why a bounded queue: beyond it a request waits longer than a
//! person should, so it is refused at once (`Error::Unavailable`, 503 with
//! `Retry-After`) and the admitted ones keep their latency.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use domain::{Error, HashingLoad};
use rand::Rng;

/// argon2id cost. Production uses OWASP's recommendation; tests may go cheaper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl HashingCost {
    /// OWASP: m = 19 MiB, t = 2, p = 1 (about 14 ms per hash here).
    pub const OWASP: Self = Self { memory_kib: 19_456, iterations: 2, parallelism: 1 };
    /// For tests only: fast and insecure.
    pub const INSECURE_FAST: Self = Self { memory_kib: 64, iterations: 1, parallelism: 1 };
}

/// How many hashes run at once and how many may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingCapacity {
    /// Worker threads; each holds one memory block while busy.
    pub threads: usize,
    /// Hashes waiting for a worker; one more is refused as `Unavailable`.
    pub max_queued: usize,
}

impl HashingCapacity {
    /// One worker per core; a queue that drains in well under a second at OWASP cost.
    pub fn for_this_machine() -> Self {
        Self::with_threads(std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get))
    }

    pub fn with_threads(threads: usize) -> Self {
        let threads = threads.max(1);
        Self { threads, max_queued: threads * 24 }
    }
}

/// What a refused caller is told to wait: the queue drains in well under this.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// A worker idle this long frees its memory block.
const IDLE_RELEASE: Duration = Duration::from_secs(2);
/// glibc serves allocations of at least this size (its largest dynamic mmap
/// threshold) with their own mapping, and returns them to the system when
/// freed; smaller ones may stay in a heap arena for good. Blocks are reserved
/// with at least this capacity so an idle worker's memory really goes back.
const OWN_MAPPING_BYTES: usize = 32 * 1024 * 1024 + 4096;

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

#[derive(Clone)]
pub struct PasswordHashing {
    inner: Arc<Inner>,
}

struct Inner {
    params: Params,
    queue: Arc<JobQueue>,
    load: Arc<HashingLoad>,
    /// Verified against when the user is unknown, so timing does not tell.
    /// Made on first need: CLI commands never pay for it.
    dummy_hash: OnceLock<String>,
}

const DUMMY_PASSWORD: &[u8] = b"invitegate-dummy-password";
const SALT_BYTES: usize = 16;
const OUTPUT_BYTES: usize = 32;

impl PasswordHashing {
    pub fn new(cost: HashingCost, capacity: HashingCapacity) -> anyhow::Result<Self> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, Some(OUTPUT_BYTES))
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let queue = Arc::new(JobQueue::new(capacity.max_queued));
        let load = Arc::new(HashingLoad::default());
        for index in 0..capacity.threads.max(1) {
            let queue = Arc::clone(&queue);
            let load = Arc::clone(&load);
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || work(&queue, &load))
                .map_err(|e| anyhow::anyhow!("starting a hashing thread: {e}"))?;
        }
        Ok(Self { inner: Arc::new(Inner { params, queue, load, dummy_hash: OnceLock::new() }) })
    }

    /// Counters for metrics.
    pub fn load(&self) -> Arc<HashingLoad> {
        Arc::clone(&self.inner.load)
    }

    pub async fn hash(&self, password: &str) -> Result<String, Error> {
        let params = self.inner.params.clone();
        let password = password.to_owned();
        self.run(move |memory| hash_with(&params, password.as_bytes(), memory)).await
    }

    /// `Ok(false)` for a wrong password; with `hash = None` checks the dummy and returns false.
    pub async fn verify(&self, password: &str, hash: Option<String>) -> Result<bool, Error> {
        let known = hash.is_some();
        let password = password.to_owned();
        let inner = Arc::clone(&self.inner);
        let ok = self
            .run(move |memory| {
                let hash = match hash {
                    Some(hash) => hash,
                    None => match inner.dummy_hash.get() {
                        Some(dummy) => dummy.clone(),
                        None => {
                            let dummy = hash_with(&inner.params, DUMMY_PASSWORD, memory)?;
                            inner.dummy_hash.get_or_init(|| dummy).clone()
                        }
                    },
                };
                verify_with(password.as_bytes(), &hash, memory)
            })
            .await?;
        Ok(ok && known)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |memory| {
            // The caller may have gone (timeout); nothing to do then.
            let _ = reply.send(work(memory));
        });
        // Counted before queueing so a worker never takes it below zero.
        self.inner.load.queued.fetch_add(1, Ordering::Relaxed);
        if !self.inner.queue.push(job) {
            self.inner.load.queued.fetch_sub(1, Ordering::Relaxed);
            self.inner.load.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Error::Unavailable { retry_after: RETRY_AFTER });
        }
        answer.await.map_err(|_| Error::unexpected("a hashing thread dropped its work"))?
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// A bounded queue the workers wait on with a timeout each (a condition
/// variable, so every idle worker notices its own quiet spell).
struct JobQueue {
    state: Mutex<QueueState>,
    ready: Condvar,
    capacity: usize,
}

struct QueueState {
    jobs: VecDeque<Job>,
    closed: bool,
}

enum Next {
    Job(Job),
    Idle,
    Closed,
}

impl JobQueue {
    fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(QueueState { jobs: VecDeque::with_capacity(capacity), closed: false }),
            ready: Condvar::new(),
            capacity,
        }
    }

    /// `false` when the queue is full (or closed): the caller is refused.
    fn push(&self, job: Job) -> bool {
        let Ok(mut state) = self.state.lock() else { return false };
        if state.closed || state.jobs.len() >= self.capacity {
            return false;
        }
        state.jobs.push_back(job);
        drop(state);
        self.ready.notify_one();
        true
    }

    fn next(&self, wait: Duration) -> Next {
        let Ok(state) = self.state.lock() else { return Next::Closed };
        let Ok((mut state, _)) = self.ready.wait_timeout_while(state, wait, |s| s.jobs.is_empty() && !s.closed) else {
            return Next::Closed;
        };
        match state.jobs.pop_front() {
            Some(job) => Next::Job(job),
            None if state.closed => Next::Closed,
            None => Next::Idle,
        }
    }

    fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.closed = true;
        }
        self.ready.notify_all();
    }
}

/// One worker: takes jobs until the service is dropped, keeping its memory
/// block between jobs and freeing it after a quiet spell.
fn work(queue: &JobQueue, load: &HashingLoad) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let wait = if memory.capacity() > 0 { IDLE_RELEASE } else { Duration::from_secs(3600) };
        match queue.next(wait) {
            Next::Job(job) => {
                load.queued.fetch_sub(1, Ordering::Relaxed);
                load.running.fetch_add(1, Ordering::Relaxed);
                job(&mut memory);
                load.running.fetch_sub(1, Ordering::Relaxed);
            }
            Next::Idle => memory = Vec::new(),
            Next::Closed => return,
        }
    }
}

/// `memory` sized for `params`, reusing what it already holds.
fn blocks_for<'m>(params: &Params, memory: &'m mut Vec<Block>) -> &'m mut [Block] {
    let needed = params.block_count();
    if memory.len() < needed {
        if memory.capacity() < needed {
            let own_mapping = OWN_MAPPING_BYTES.div_ceil(std::mem::size_of::<Block>());
            // Reserved, not touched: only the blocks in use become resident.
            *memory = Vec::with_capacity(needed.max(own_mapping));
        }
        memory.resize(needed, Block::new());
    }
    &mut memory[..needed]
}

fn hash_with(params: &Params, password: &[u8], memory: &mut Vec<Block>) -> Result<String, Error> {
    let mut salt = [0u8; SALT_BYTES];
    rand::rng().fill_bytes(&mut salt);
    let mut out = [0u8; OUTPUT_BYTES];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon2
        .hash_password_into_with_memory(password, &salt, &mut out, blocks_for(params, memory))
        .map_err(|e| Error::unexpected(format!("argon2 hash: {e}")))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| Error::unexpected(format!("argon2 params: {e}")))?,
        salt: Some(Salt::new(&salt).map_err(|e| Error::unexpected(format!("argon2 salt: {e}")))?),
        hash: Some(Output::new(&out).map_err(|e| Error::unexpected(format!("argon2 output: {e}")))?),
    };
    Ok(phc.to_string())
}

/// Verifies against a stored PHC string with the parameters it names (so
/// hashes made at another cost still verify); the comparison is constant-time.
fn verify_with(password: &[u8], stored: &str, memory: &mut Vec<Block>) -> Result<bool, Error> {
    let unreadable = |e: &dyn std::fmt::Display| Error::unexpected(format!("stored password hash: {e}"));
    let phc = PasswordHash::new(stored).map_err(|e| unreadable(&e))?;
    let algorithm = Algorithm::try_from(phc.algorithm.as_str()).map_err(|e| unreadable(&e))?;
    let version = phc.version.map(Version::try_from).transpose().map_err(|e| unreadable(&e))?.unwrap_or_default();
    let params = Params::try_from(&phc).map_err(|e| unreadable(&e))?;
    let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else {
        return Err(Error::unexpected("stored password hash without salt or output"));
    };
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password, salt.as_ref(), &mut out, blocks_for(&params, memory))
        .map_err(|e| Error::unexpected(format!("argon2 verify: {e}")))?;
    let computed = Output::new(&out).map_err(|e| unreadable(&e))?;
    // `Output`'s equality is constant-time.
    Ok(computed == expected)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordVerifier as _;

    fn hashing(threads: usize, max_queued: usize) -> PasswordHashing {
        PasswordHashing::new(HashingCost::INSECURE_FAST, HashingCapacity { threads, max_queued }).unwrap()
    }

    #[tokio::test]
    async fn hashes_verify_here_and_with_the_reference_implementation() {
        let hashing = hashing(2, 8);
        let stored = hashing.hash("correct horse battery").await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{stored}");
        assert!(hashing.verify("correct horse battery", Some(stored.clone())).await.unwrap());
        assert!(!hashing.verify("correct horse batterx", Some(stored.clone())).await.unwrap());
        // The argon2 crate's own verifier agrees, so stored hashes stay portable.
        Argon2::default().verify_password(b"correct horse battery", stored.as_str()).unwrap();
        assert!(!hashing.verify("anything", None).await.unwrap(), "the dummy never matches");
    }

    #[tokio::test]
    async fn hashes_made_at_another_cost_still_verify() {
        use argon2::password_hash::PasswordHasher as _;
        let older = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(128, 2, 1, None).unwrap())
            .hash_password(b"old password")
            .unwrap()
            .to_string();
        let hashing = hashing(1, 4);
        assert!(hashing.verify("old password", Some(older.clone())).await.unwrap());
        assert!(!hashing.verify("new password", Some(older)).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let hashing = hashing(1, 1);
        // Hold the only worker, then fill the one queue slot.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let hashing = hashing.clone();
            async move {
                hashing
                    .run(move |_| {
                        held.recv().ok();
                        Ok(())
                    })
                    .await
            }
        });
        while hashing.inner.load.running.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        let queued = tokio::spawn({
            let hashing = hashing.clone();
            async move { hashing.hash("waits its turn").await }
        });
        while hashing.inner.load.queued.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        let refused = hashing.hash("one too many").await;
        assert!(matches!(refused, Err(Error::Unavailable { .. })), "{refused:?}");
        assert_eq!(hashing.inner.load.refused.load(Ordering::Relaxed), 1);
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        assert!(queued.await.unwrap().is_ok(), "the queued hash is served");
    }
}
