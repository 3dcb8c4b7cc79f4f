//! argon2id password hashing, off the async executor and a bounded number at a time.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use domain::Error;
use tokio::sync::Semaphore;

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

#[derive(Clone)]
pub struct PasswordHashing {
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// Verified against when the user is unknown, so timing does not tell.
    /// Made on first need, off the executor: CLI commands never pay for it.
    dummy_hash: Arc<OnceLock<String>>,
}

const DUMMY_PASSWORD: &[u8] = b"invitegate-dummy-password";

impl PasswordHashing {
    pub fn new(cost: HashingCost, max_concurrent: usize) -> anyhow::Result<Self> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        Ok(Self {
            argon2,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy_hash: Arc::new(OnceLock::new()),
        })
    }

    pub async fn hash(&self, password: &str) -> Result<String, Error> {
        let argon2 = self.argon2.clone();
        let password = password.to_owned();
        self.run(move || {
            argon2
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| Error::unexpected(format!("argon2 hash: {e}")))
        })
        .await
    }

    /// `Ok(false)` for a wrong password; with `hash = None` checks the dummy and returns false.
    pub async fn verify(&self, password: &str, hash: Option<String>) -> Result<bool, Error> {
        let argon2 = self.argon2.clone();
        let password = password.to_owned();
        let known = hash.is_some();
        let dummy = Arc::clone(&self.dummy_hash);
        let ok = self
            .run(move || {
                let hash = match hash {
                    Some(hash) => hash,
                    None => dummy
                        .get_or_init(|| argon2.hash_password(DUMMY_PASSWORD).map(|h| h.to_string()).unwrap_or_default())
                        .clone(),
                };
                match argon2.verify_password(password.as_bytes(), hash.as_str()) {
                    Ok(()) => Ok(true),
                    Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
                    Err(e) => Err(Error::unexpected(format!("argon2 verify: {e}"))),
                }
            })
            .await?;
        Ok(ok && known)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let _permit = self.permits.acquire().await.map_err(|_| Error::unexpected("hashing semaphore closed"))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Error::Unexpected(anyhow::Error::new(e).context("hashing task failed")))?
    }
}
