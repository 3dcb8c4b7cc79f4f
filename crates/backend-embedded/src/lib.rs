//! invitegate's embedded backend: everything on one machine, no cloud account.

mod backup;
#[cfg(feature = "bench")]
pub mod bench;
mod db;
mod hashing;
mod legacy;
mod mailer;
mod pool;
mod secrets;
mod store;
mod tokens;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use domain::{Adapters, CodeHasher, Mailer, SignUpPolicy};

use db::{DB_FILE, Db};
use hashing::PasswordHashing;
use mailer::{OutboxMailer, SmtpMailer, parse_from};
use pool::LocalUserPool;
use store::SqliteInvitationStore;
use tokens::TokenIssuer;

pub use backup::{BackupSummary, backup, restore};
pub use hashing::{HashingCapacity, HashingCost};
pub use mailer::{OUTBOX_DIR, outbox_messages};
pub use secrets::{ADMIN_TOKEN_FILE, admin_token};
pub use tokens::CLIENT_ID;

pub struct EmbeddedConfig {
    pub data_dir: PathBuf,
    /// `iss` of the tokens: the service's public URL.
    pub issuer: String,
    /// The app's name and page addresses, for the emails the pool sends.
    pub branding: domain::messages::Branding,
    pub policy: SignUpPolicy,
    pub hashing_cost: HashingCost,
    pub hashing_capacity: HashingCapacity,
    pub smtp_url: Option<domain::SecretString>,
    pub mail_from: String,
}

/// Creates `dir` (and missing parents) readable by its owner only: it holds
/// password hashes, and the outbox holds live codes.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    use std::os::unix::fs::PermissionsExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating the directory {}", dir.display()))?;
    // `create` leaves a folder that already existed as it was (often 0755).
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} private", dir.display()))
}

/// Whether the data dir holds no users and no invitations yet (used to greet a
/// new operator): two indexed existence checks, not a listing.
pub fn is_unused(data_dir: &Path) -> anyhow::Result<bool> {
    let path = data_dir.join(DB_FILE);
    if !path.exists() {
        return Ok(true);
    }
    let conn = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", path.display()))?;
    let unused = conn.query_row(
        "SELECT NOT EXISTS (SELECT 1 FROM users) AND NOT EXISTS (SELECT 1 FROM invitations)",
        [],
        |row| row.get(0),
    )?;
    Ok(unused)
}

/// The parts the service needs, wired to one database.
pub fn open(config: &EmbeddedConfig) -> anyhow::Result<Adapters> {
    create_private_dir(&config.data_dir)?;
    let db = Db::open(&config.data_dir)?;
    let code_hasher = CodeHasher::new(secrets::code_key(&config.data_dir)?);
    let tokens = TokenIssuer::new(&secrets::signing_key(&config.data_dir)?, config.issuer.clone())?;
    let from = parse_from(&config.mail_from)?;
    let mailer: Arc<dyn Mailer> = match &config.smtp_url {
        Some(url) => Arc::new(SmtpMailer::new(url.expose(), from)?),
        None => Arc::new(OutboxMailer::new(&config.data_dir, from)?),
    };
    let hashing = PasswordHashing::new(config.hashing_cost, config.hashing_capacity)?;
    let hashing_load = hashing.load();
    let pool = LocalUserPool::new(
        db.clone(),
        hashing,
        tokens,
        code_hasher.clone(),
        Arc::clone(&mailer),
        config.branding.clone(),
        config.policy,
    );
    Ok(Adapters {
        store: Arc::new(SqliteInvitationStore::new(db.clone())),
        legacy: Arc::new(legacy::SqliteLegacyPasswords::new(db)),
        pool: Arc::new(pool),
        mailer,
        // One process serves one data dir: its counts can live in memory.
        attempts: Arc::new(domain::limiter::MemoryAttemptCounter::default()),
        codes: code_hasher,
        hashing_load: Some(hashing_load),
    })
}
