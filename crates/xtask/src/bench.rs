//! The parts of `scripts/bench.sh` wrk cannot do: seed data, measure the
//! hashing bound through the service's own code, and load the hashing
//! endpoints while timing admitted and refused answers apart (wrk reports one
//! latency distribution for all statuses).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::RngExt as _;
use serde_json::json;

pub const BENCH_PASSWORD: &str = "Bench-Password-1";

pub async fn seed(
    data_dir: &Path,
    users: u64,
    refresh_tokens: u64,
    invitations: u64,
    invitations_out: Option<&Path>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    #[allow(clippy::disallowed_methods)] // a tool writing data for a real service: the wall clock is right
    let now = time::OffsetDateTime::now_utc();
    let seeded =
        backend_embedded::bench::seed(data_dir, users, refresh_tokens, invitations, BENCH_PASSWORD, now).await?;
    if let Some(out) = invitations_out {
        let lines: String = seeded.iter().map(|i| format!("{} {}\n", i.email, i.code)).collect();
        std::fs::write(out, lines).with_context(|| format!("writing {}", out.display()))?;
    }
    eprintln!(
        "seeded {users} users, {refresh_tokens} refresh tokens, {invitations} invitations in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub async fn bound(threads: usize, concurrency: usize, seconds: u64) -> anyhow::Result<()> {
    let rate = backend_embedded::bench::hashing_bound(threads, concurrency, Duration::from_secs(seconds)).await?;
    println!("{}", json!({ "hashes_per_sec": rate }));
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// POST /sign_in as random seeded users (right password).
    SignIn,
    /// POST /sign_up, each with a seeded invitation used once.
    SignUp,
}

pub struct Load<'a> {
    pub url: &'a str,
    pub scenario: Scenario,
    pub concurrency: usize,
    pub seconds: u64,
    pub users: u64,
    pub invitations: Option<&'a Path>,
}

#[derive(Default)]
struct Tally {
    admitted: Vec<Duration>,
    refused: Vec<Duration>,
    other: usize,
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

/// Each worker is one client (its own `X-Forwarded-For`, the service trusting
/// loopback as a proxy), so per-client limits do not shape the result. A
/// refused worker waits as `Retry-After` says, as a polite client does.
pub async fn load(spec: Load<'_>) -> anyhow::Result<()> {
    let invitations: Arc<Vec<(String, String)>> = Arc::new(match spec.invitations {
        Some(path) => std::fs::read_to_string(path)?
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(e, c)| (e.to_owned(), c.to_owned())))
            .collect(),
        None => Vec::new(),
    });
    if spec.scenario == Scenario::SignUp && invitations.is_empty() {
        anyhow::bail!("sign-up needs --invitations (from bench-seed)");
    }
    let next_invitation = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::builder().pool_max_idle_per_host(spec.concurrency).build()?;
    let started = Instant::now();
    let duration = Duration::from_secs(spec.seconds);
    let workers = (0..spec.concurrency).map(|worker| {
        let (client, invitations, next) = (client.clone(), Arc::clone(&invitations), Arc::clone(&next_invitation));
        let url = spec.url.trim_end_matches('/').to_owned();
        let (scenario, users) = (spec.scenario, spec.users.max(1));
        tokio::spawn(async move {
            let mut tally = Tally::default();
            let forwarded_for = format!("10.9.{}.{}", worker / 250, worker % 250 + 1);
            while started.elapsed() < duration {
                let (path, body) = match scenario {
                    Scenario::SignIn => {
                        let user = rand::rng().random_range(0..users);
                        ("sign_in", json!({ "email": format!("user{user}@bench.test"), "password": BENCH_PASSWORD }))
                    }
                    Scenario::SignUp => {
                        let Some((email, code)) = invitations.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            break;
                        };
                        ("sign_up", json!({ "email": email, "password": BENCH_PASSWORD, "accessCode": code }))
                    }
                };
                let sent = Instant::now();
                let response = client
                    .post(format!("{url}/{path}"))
                    .header("x-forwarded-for", &forwarded_for)
                    .json(&body)
                    .send()
                    .await;
                let took = sent.elapsed();
                match response.map(|r| r.status().as_u16()) {
                    Ok(200) => tally.admitted.push(took),
                    Ok(503) => {
                        tally.refused.push(took);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    _ => tally.other += 1,
                }
            }
            tally
        })
    });
    let mut all = Tally::default();
    for worker in workers.collect::<Vec<_>>() {
        let tally = worker.await?;
        all.admitted.extend(tally.admitted);
        all.refused.extend(tally.refused);
        all.other += tally.other;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.admitted.sort();
    all.refused.sort();
    println!(
        "{}",
        json!({
            "admitted": all.admitted.len(),
            "admitted_per_sec": all.admitted.len() as f64 / elapsed,
            "admitted_p50_ms": percentile_ms(&all.admitted, 50.0),
            "admitted_p99_ms": percentile_ms(&all.admitted, 99.0),
            "refused": all.refused.len(),
            "refused_p99_ms": percentile_ms(&all.refused, 99.0),
            "other": all.other,
        })
    );
    Ok(())
}
