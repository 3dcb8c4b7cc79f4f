//! Benchmark support (`scripts/bench.sh` through xtask), only built with the
//! `bench` feature: bulk data written straight into the database with SQL (a
//! million users in seconds, in the shape the service writes them), and the
//! password-hashing bound measured through the service's own hashing code.

use std::path::Path;

use anyhow::Context;
use domain::{AccessCode, CodeHasher};
use rand::Rng as _;
use rusqlite::params;
use sha2::{Digest, Sha256};

use crate::db::DB_FILE;
use crate::hashing::{HashingCapacity, HashingCost, PasswordHashing};

/// How the seeded accounts are named: `user{i}@bench.test`, all with one password.
pub fn seeded_user_email(i: u64) -> String {
    format!("user{i}@bench.test")
}

/// An invitation ready to be redeemed, and its code in clear (for the load generator).
pub struct SeededInvitation {
    pub email: String,
    pub code: String,
}

/// Adds `users` confirmed users (each with `password`), `refresh_tokens` live
/// tokens spread over them, and `invitations` pending invitations, to the
/// data dir (created if new). Returns the invitations with their codes.
pub async fn seed(
    data_dir: &Path,
    users: u64,
    refresh_tokens: u64,
    invitations: u64,
    password: &str,
    now: time::OffsetDateTime,
) -> anyhow::Result<Vec<SeededInvitation>> {
    crate::create_private_dir(data_dir)?;
    drop(crate::db::Db::open(data_dir)?); // creates the schema
    let codes = CodeHasher::new(crate::secrets::code_key(data_dir)?);
    // One production-cost hash, shared: each verifies like any other.
    let hashing = PasswordHashing::new(HashingCost::OWASP, HashingCapacity::with_threads(1))?;
    let password_hash = hashing.hash(password).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let path = data_dir.join(DB_FILE);
    tokio::task::spawn_blocking(move || {
        let mut conn = rusqlite::Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        conn.execute_batch("PRAGMA synchronous = OFF;")?;
        let now = now.unix_timestamp();
        let tx = conn.transaction()?;
        let first_user: u64 =
            tx.query_row("SELECT count(*) FROM users", [], |row| row.get::<_, i64>(0))?.unsigned_abs();
        let mut subs = Vec::with_capacity(usize::try_from(users.min(1 << 24))?);
        {
            let mut insert = tx.prepare(
                "INSERT INTO users (sub, email, password_hash, status, email_verified, created_at) \
                 VALUES (?1, ?2, ?3, 'CONFIRMED', 1, ?4)",
            )?;
            for i in first_user..first_user + users {
                let sub = uuid::Uuid::new_v4().to_string();
                insert.execute(params![sub, seeded_user_email(i), password_hash, now])?;
                subs.push(sub);
            }
        }
        {
            let mut insert = tx.prepare(
                "INSERT INTO refresh_tokens (token_hash, sub, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut rng = rand::rng();
            for i in 0..refresh_tokens {
                let mut raw = [0u8; 32];
                rng.fill_bytes(&mut raw);
                let hash: [u8; 32] = Sha256::digest(raw).into();
                let Some(sub) = subs.get(usize::try_from(i)? % subs.len().max(1)) else { break };
                insert.execute(params![hash.as_slice(), sub, now, now + 30 * 86_400])?;
            }
        }
        let mut seeded = Vec::new();
        {
            let mut insert = tx.prepare(
                "INSERT INTO invitations (id, email, code_hash, status, created_at, expires_at, active_email) \
                 VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?2)",
            )?;
            let first: u64 =
                tx.query_row("SELECT count(*) FROM invitations", [], |row| row.get::<_, i64>(0))?.unsigned_abs();
            let mut rng = rand::rng();
            for i in first..first + invitations {
                let email = format!("signup{i}@bench.test");
                let code = AccessCode::generate(&mut rng);
                let hash = codes.hash_access_code(&code);
                let id = uuid::Uuid::new_v4().to_string();
                insert.execute(params![id, email, hash.as_bytes().as_slice(), now, now + 7 * 86_400])?;
                seeded.push(SeededInvitation { email, code: code.expose_grouped() });
            }
        }
        tx.commit()?;
        Ok(seeded)
    })
    .await?
}

/// Password verifications per second through the service's own hashing (same
/// parameters, threads and queue), with `concurrency` callers for `duration`:
/// the most sign-ins (or sign-ups) per second this machine can do.
pub async fn hashing_bound(threads: usize, concurrency: usize, duration: std::time::Duration) -> anyhow::Result<f64> {
    let hashing = PasswordHashing::new(HashingCost::OWASP, HashingCapacity::with_threads(threads))?;
    let stored = hashing.hash("bench password").await.map_err(|e| anyhow::anyhow!("{e}"))?;
    // Warm up: each worker makes its memory block once.
    for _ in 0..threads * 2 {
        hashing.verify("bench password", Some(stored.clone())).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let started = std::time::Instant::now();
    let callers = (0..concurrency).map(|_| {
        let (hashing, stored) = (hashing.clone(), stored.clone());
        tokio::spawn(async move {
            let mut done = 0u64;
            while started.elapsed() < duration {
                if hashing.verify("bench password", Some(stored.clone())).await.unwrap_or(false) {
                    done += 1;
                }
            }
            done
        })
    });
    let mut total = 0;
    for caller in callers.collect::<Vec<_>>() {
        total += caller.await?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}
