//! The one SQLite database: WAL mode, migrations at start; writes on one
//! serialised connection through `spawn_blocking`, reads on a small pool of
//! their own (WAL lets them run beside a write).

use std::path::{Path, PathBuf};
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
    r#"
-- Expired tokens are purged on a schedule, found through this index; a
-- signed-out token is deleted at once, so no revoked rows are kept.
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);
DELETE FROM refresh_tokens WHERE revoked_at IS NOT NULL;
"#,
    r#"
-- Account recovery and global sign-out.
ALTER TABLE users ADD COLUMN signed_out_at INTEGER;
ALTER TABLE users ADD COLUMN recovery_code_hash BLOB;
ALTER TABLE users ADD COLUMN recovery_expires_at INTEGER;
ALTER TABLE users ADD COLUMN recovery_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
-- Requests for an invitation. `open_email` is set while the request is open:
-- its UNIQUE index allows one open request per email.
CREATE TABLE access_requests (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('open', 'approved', 'rejected')),
    created_at INTEGER NOT NULL,
    decided_at INTEGER,
    open_email TEXT UNIQUE
);
CREATE INDEX access_requests_by_created ON access_requests (created_at);
-- Listings of any size, page by page, in creation order.
CREATE INDEX users_by_created ON users (created_at);
CREATE INDEX invitations_by_created ON invitations (created_at);
"#,
    r#"
-- Users brought over from Firebase: the account keeps its Firebase uid, and
-- its Firebase password waits in legacy_passwords until the first sign-in.
ALTER TABLE users ADD COLUMN firebase_uid TEXT;
CREATE UNIQUE INDEX users_by_firebase_uid ON users (firebase_uid) WHERE firebase_uid IS NOT NULL;
CREATE TABLE firebase_hash_params (
    id             INTEGER PRIMARY KEY,
    signer_key     BLOB NOT NULL,
    salt_separator BLOB NOT NULL,
    rounds         INTEGER NOT NULL,
    mem_cost       INTEGER NOT NULL,
    UNIQUE (signer_key, salt_separator, rounds, mem_cost)
);
CREATE TABLE legacy_passwords (
    email     TEXT PRIMARY KEY COLLATE NOCASE,
    state     TEXT NOT NULL CHECK (state IN ('pending', 'active', 'retired')),
    params_id INTEGER REFERENCES firebase_hash_params (id),
    hash      BLOB,
    salt      BLOB
);
"#,
];

/// Read connections kept open: one per async worker thread, and some to spare.
const READERS: usize = 8;

#[derive(Clone)]
pub struct Db {
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Readers>,
}

struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")?;
    // Every statement the service runs stays prepared.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl Db {
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(DB_FILE);
        let mut conn = connect(&path).with_context(|| format!("opening {}", path.display()))?;
        // FULL, not NORMAL: with NORMAL a power cut can undo a committed
        // redemption, and a single-use code could then be used twice.
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
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
        let readers = Readers { path, idle: Mutex::new(Vec::new()) };
        Ok(Self { writer: Arc::new(Mutex::new(conn)), readers: Arc::new(readers) })
    }

    /// Runs a read on a connection that cannot write (`query_only`), beside
    /// any write in progress, on the calling thread. Why not off the executor
    /// like writes: the hot reads are one indexed lookup in a warm page cache,
    /// a few microseconds, while handing them to a blocking thread and back
    /// costs more than that in context switches (measured: it halved `/me`'s
    /// throughput). Writes wait on fsync for milliseconds, so they stay off it.
    pub async fn read<T, F>(&self, work: F) -> Result<T, Error>
    where
        F: FnOnce(&Connection) -> Result<T, Error>,
    {
        let idle = self.readers.idle.lock().map_err(|_| Error::unexpected("database mutex poisoned"))?.pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = connect(&self.readers.path).map_err(db_err)?;
                conn.execute_batch("PRAGMA query_only = ON;").map_err(db_err)?;
                conn
            }
        };
        let result = work(&conn);
        if let Ok(mut idle) = self.readers.idle.lock()
            && idle.len() < READERS
        {
            idle.push(conn);
        }
        result
    }

    /// Runs blocking work on the one write connection, off the async executor.
    async fn call_writer<T, F>(&self, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    {
        let conn = Arc::clone(&self.writer);
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
        self.call_writer(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            let value = work(&tx)?;
            tx.commit().map_err(db_err)?;
            Ok(value)
        })
        .await
    }
}

impl Db {
    /// Whether a write could commit now: takes the write lock and lets it go.
    pub async fn check_writable(&self) -> Result<(), Error> {
        self.call_writer(|conn| {
            conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").map_err(db_err)?;
            Ok(())
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

/// The one row `sql` selects, if any, through the connection's statement cache.
pub fn optional_row<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>, Error> {
    use rusqlite::OptionalExtension as _;
    conn.prepare_cached(sql).map_err(db_err)?.query_row(params, row).optional().map_err(db_err)
}

/// A listing's position: the last row's creation second and rowid, opaque to callers.
pub fn encode_cursor(created_at: i64, rowid: i64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{created_at}.{rowid}"))
}

pub fn decode_cursor(cursor: &str) -> Result<(i64, i64), Error> {
    use base64::Engine as _;
    let invalid = || Error::InvalidRequest("Invalid cursor".into());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    let (created_at, rowid) = raw.split_once('.').ok_or_else(invalid)?;
    Ok((created_at.parse().map_err(|_| invalid())?, rowid.parse().map_err(|_| invalid())?))
}

/// A page from rows fetched with `LIMIT limit + 1`, each with its creation
/// second and rowid: the extra row only tells that a next page exists.
pub fn keyset_page<T>(mut rows: Vec<(T, i64, i64)>, limit: i64) -> domain::Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more { rows.last().map(|(_, created_at, rowid)| encode_cursor(*created_at, *rowid)) } else { None };
    domain::Page { items: rows.into_iter().map(|(item, _, _)| item).collect(), next }
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
        let conn = db.writer.lock().unwrap();
        let hot = [
            "SELECT * FROM users WHERE email = 'a@example.com'",
            "SELECT * FROM users WHERE sub = 's'",
            "SELECT * FROM refresh_tokens WHERE token_hash = x'00'",
            "DELETE FROM refresh_tokens WHERE sub = 's'",
            "DELETE FROM refresh_tokens WHERE token_hash = x'00'",
            "DELETE FROM refresh_tokens WHERE rowid IN \
             (SELECT rowid FROM refresh_tokens WHERE expires_at <= 1 LIMIT 1000)",
            "SELECT * FROM invitations WHERE id = 'i'",
            "SELECT * FROM invitations WHERE email = 'a@example.com'",
            "SELECT * FROM invitations WHERE email = 'a@example.com' ORDER BY created_at DESC, rowid DESC LIMIT 1",
            "SELECT * FROM invitations WHERE active_email = 'a@example.com'",
            "SELECT * FROM invitations WHERE inviter_sub = 's' ORDER BY created_at DESC, rowid DESC",
            "SELECT inviter_sub FROM invitations WHERE redeemed_by = 's'",
            "SELECT remaining FROM invite_quotas WHERE sub = 's'",
            // Listing pages (the admin API, `users list`).
            "SELECT * FROM users WHERE (created_at, rowid) > (1, 1) ORDER BY created_at, rowid LIMIT 3",
            "SELECT * FROM invitations WHERE (created_at, rowid) < (1, 1) ORDER BY created_at DESC, rowid DESC LIMIT 3",
            "SELECT * FROM access_requests WHERE id = 'r'",
            "SELECT (SELECT remaining FROM invite_quotas WHERE sub = 's'), \
                    EXISTS (SELECT 1 FROM invitations WHERE redeemed_by = 's'), \
                    (SELECT inviter_sub FROM invitations WHERE redeemed_by = 's')",
        ];
        for sql in hot {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> =
                stmt.query_map([], |row| row.get::<_, String>(3)).unwrap().map(Result::unwrap).collect();
            // "SCAN CONSTANT ROW" is the row of a FROM-less SELECT, not a table.
            let scans_a_table = |step: &String| step.starts_with("SCAN ") && step != "SCAN CONSTANT ROW";
            assert!(!plan.iter().any(scans_a_table), "{sql}: {plan:?}");
        }
    }
}
#[cfg(test)]
mod statement_cache_tests {
    /// The statements requests run stay prepared: SQLite re-prepares a
    /// statement on every run when an ORDER BY sits beside a bound parameter
    /// (3.54), which costs more than the query itself.
    #[test]
    fn hot_statements_are_not_reprepared() {
        let dir = tempfile::tempdir().unwrap();
        drop(super::Db::open(dir.path()).unwrap());
        let conn = super::connect(&dir.path().join(super::DB_FILE)).unwrap();
        let columns = "id, email, code_hash, status, inviter_sub, invitee_quota, created_at, expires_at, \
                       reserved_until, redeemed_by, redeemed_at";
        for sql in [
            format!("SELECT {columns}, rowid FROM invitations WHERE inviter_sub = ?1"),
            "SELECT sub FROM users WHERE sub = ?1".to_owned(),
            "SELECT sub FROM users WHERE email = ?1".to_owned(),
            "SELECT (SELECT remaining FROM invite_quotas WHERE sub = ?1), \
                    EXISTS (SELECT 1 FROM invitations WHERE redeemed_by = ?1), \
                    (SELECT inviter_sub FROM invitations WHERE redeemed_by = ?1)"
                .to_owned(),
        ] {
            for value in ["a", "b", "c"] {
                let mut stmt = conn.prepare_cached(&sql).unwrap();
                stmt.query_map([value], |_| Ok(())).unwrap().for_each(drop);
                let reprepared = stmt.get_status(rusqlite::StatementStatus::RePrepare);
                assert_eq!(reprepared, 0, "{sql}");
            }
        }
    }
}
