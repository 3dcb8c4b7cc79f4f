//! The one SQLite database: WAL mode, migrations at start, and access from
//! async code through `spawn_blocking` on a single serialised connection.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use domain::Error;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

pub const DB_FILE: &str = "invitegate.sqlite3";

/// Each entry runs once, in order; `user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    sub               TEXT PRIMARY KEY,
    email             TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash     TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('UNCONFIRMED', 'CONFIRMED')),
    email_verified    INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    confirm_code_hash BLOB,
    confirm_expires_at INTEGER,
    confirm_attempts  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE refresh_tokens (
    token_hash BLOB PRIMARY KEY,
    sub        TEXT NOT NULL REFERENCES users (sub),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE TABLE invitations (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL,
    code_hash      BLOB NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'reserved', 'redeemed', 'revoked')),
    inviter_sub    TEXT,              -- NULL: the operator
    invitee_quota  INTEGER,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    reserved_until INTEGER,
    redeemed_by    TEXT UNIQUE,
    redeemed_at    INTEGER,
    -- Set to the email while the invitation blocks another for that address:
    -- the UNIQUE index is what enforces "one active invitation per email".
    active_email   TEXT UNIQUE
);
CREATE INDEX invitations_by_email ON invitations (email, created_at);
CREATE INDEX invitations_by_inviter ON invitations (inviter_sub, created_at);
CREATE TABLE invite_quotas (
    sub       TEXT PRIMARY KEY,
    remaining INTEGER NOT NULL CHECK (remaining >= 0)
);
"#,
    r#"
-- A user's refresh tokens are revoked and removed by sub: without this, a full scan.
CREATE INDEX refresh_tokens_by_sub ON refresh_tokens (sub);
"#,
];

#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(DB_FILE);
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("opening {}", path.display()))?;
        // FULL, not NORMAL: with NORMAL a power cut can undo a committed
        // redemption, and a single-use code could then be used twice.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
        )?;
        migrate(&mut conn)?;
        // SQLite creates files with the process umask (often 0644); it holds password hashes.
        for suffix in ["", "-wal", "-shm"] {
            let file = data_dir.join(format!("{DB_FILE}{suffix}"));
            if file.exists() {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("making {} private", file.display()))?;
            }
        }
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    /// Runs blocking database work off the async executor.
    pub async fn call<T, F>(&self, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| Error::unexpected("database mutex poisoned"))?;
            work(&mut guard)
        })
        .await
        .map_err(|e| Error::Unexpected(anyhow::Error::new(e).context("database task failed")))?
    }

    /// Runs `work` in one transaction that may write, committed if it returns
    /// `Ok` and rolled back otherwise. It begins IMMEDIATE: in WAL mode a
    /// DEFERRED transaction that read first cannot upgrade to a writer while
    /// another connection (the CLI, say) writes, and SQLite refuses it with
    /// SQLITE_BUSY at once, without waiting out `busy_timeout`.
    pub async fn write<T, F>(&self, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, Error> + Send + 'static,
    {
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            let value = work(&tx)?;
            tx.commit().map_err(db_err)?;
            Ok(value)
        })
        .await
    }
}

fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let applied: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let applied = usize::try_from(applied).unwrap_or(usize::MAX);
    if applied > MIGRATIONS.len() {
        anyhow::bail!("the database was written by a newer invitegate (schema {applied})");
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql).with_context(|| format!("migration {}", index + 1))?;
        tx.pragma_update(None, "user_version", i64::try_from(index + 1)?)?;
        tx.commit()?;
    }
    Ok(())
}

/// Wraps a database failure as unexpected (logged, never shown).
pub fn db_err(e: rusqlite::Error) -> Error {
    Error::Unexpected(anyhow::Error::new(e).context("database"))
}

pub fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(err, _)
        if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every query a request runs finds its rows through an index: `EXPLAIN
    /// QUERY PLAN` shows no `SCAN` of a table (cost would grow with the data).
    #[test]
    fn hot_queries_use_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let conn = db.conn.lock().unwrap();
        let hot = [
            "SELECT * FROM users WHERE email = 'a@example.com'",
            "SELECT * FROM users WHERE sub = 's'",
            "SELECT * FROM refresh_tokens WHERE token_hash = x'00'",
            "DELETE FROM refresh_tokens WHERE sub = 's'",
            "UPDATE refresh_tokens SET revoked_at = 1 WHERE sub = 's'",
            "SELECT * FROM invitations WHERE id = 'i'",
            "SELECT * FROM invitations WHERE email = 'a@example.com'",
            "SELECT * FROM invitations WHERE email = 'a@example.com' ORDER BY created_at DESC, rowid DESC LIMIT 1",
            "SELECT * FROM invitations WHERE active_email = 'a@example.com'",
            "SELECT * FROM invitations WHERE inviter_sub = 's' ORDER BY created_at DESC, rowid DESC",
            "SELECT inviter_sub FROM invitations WHERE redeemed_by = 's'",
            "SELECT remaining FROM invite_quotas WHERE sub = 's'",
        ];
        for sql in hot {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> =
                stmt.query_map([], |row| row.get::<_, String>(3)).unwrap().map(Result::unwrap).collect();
            assert!(plan.iter().all(|step| !step.starts_with("SCAN ")), "{sql}: {plan:?}");
        }
    }
}
