//! `invitegate backup FILE` and `invitegate restore FILE`: the database, taken
//! with SQLite's online backup while the service runs, and the two keys that
//! make it usable (access codes are HMACs under one, tokens are signed with
//! the other), in one tar archive readable by its owner only.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::db::{DB_FILE, Db};
use crate::secrets::{CODE_KEY_FILE, SIGNING_KEY_FILE};

/// What an archive holds, each under its name in the data dir.
const ARCHIVED: [&str; 3] = [DB_FILE, CODE_KEY_FILE, SIGNING_KEY_FILE];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    pub users: u64,
    pub invitations: u64,
    pub database_bytes: u64,
}

/// Copies the database (a consistent snapshot, whatever is writing) and the
/// keys into `archive`, which appears complete or not at all.
pub fn backup(data_dir: &Path, archive: &Path) -> anyhow::Result<BackupSummary> {
    let database = data_dir.join(DB_FILE);
    if !database.exists() {
        bail!("no database at {}: is --data-dir right?", database.display());
    }
    let snapshot = sibling(archive, ".db-partial")?;
    let partial = sibling(archive, ".partial")?;
    let result = (|| {
        snapshot_database(&database, &snapshot)?;
        let summary = summarise(&snapshot)?;
        write_archive(data_dir, &snapshot, &partial)?;
        std::fs::rename(&partial, archive).with_context(|| format!("moving the backup to {}", archive.display()))?;
        sync_parent(archive)?;
        Ok(summary)
    })();
    let _ = std::fs::remove_file(&snapshot);
    let _ = std::fs::remove_file(&partial);
    result
}

/// Unpacks `archive` into `data_dir`, which must hold no database yet (a
/// restore never overwrites live data), and checks what it restored.
pub fn restore(archive: &Path, data_dir: &Path) -> anyhow::Result<BackupSummary> {
    crate::create_private_dir(data_dir)?;
    for name in ARCHIVED {
        if data_dir.join(name).exists() {
            bail!(
                "{} already holds {name}: restore into an empty data dir (move the old one aside first)",
                data_dir.display()
            );
        }
    }
    let file = File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let mut entries = tar::Archive::new(file);
    let mut restored = Vec::new();
    for entry in entries.entries().context("reading the backup")? {
        let mut entry = entry.context("reading the backup")?;
        let name = entry.path().context("reading the backup")?.to_string_lossy().into_owned();
        // Only our own three files, by exact name: nothing lands outside the data dir.
        let Some(&known) = ARCHIVED.iter().find(|&&known| known == name) else {
            bail!("{} is not an invitegate backup: it holds {name:?}", archive.display());
        };
        let target = data_dir.join(known);
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&target)
            .with_context(|| format!("creating {}", target.display()))?;
        std::io::copy(&mut entry, &mut out).with_context(|| format!("writing {}", target.display()))?;
        out.sync_all()?;
        restored.push(known);
    }
    for name in ARCHIVED {
        if !restored.contains(&name) {
            bail!("{} is incomplete: it lacks {name}", archive.display());
        }
    }
    sync_dir(data_dir)?;
    let database = data_dir.join(DB_FILE);
    let summary = summarise(&database)?;
    // Opening runs any migrations a newer invitegate needs, as a start would.
    Db::open(data_dir)?;
    Ok(summary)
}

fn snapshot_database(database: &Path, snapshot: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(snapshot);
    let source = Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .with_context(|| format!("opening {}", database.display()))?;
    source.execute_batch("PRAGMA query_only = ON; PRAGMA busy_timeout = 5000;")?;
    let mut copy = Connection::open(snapshot).with_context(|| format!("creating {}", snapshot.display()))?;
    std::fs::set_permissions(snapshot, std::fs::Permissions::from_mode(0o600))?;
    {
        let backup = Backup::new(&source, &mut copy)?;
        // All pages in one step: one read transaction, so one consistent
        // snapshot. In WAL mode it does not block the service's writes.
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                // Busy or locked by a checkpoint: try again shortly.
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    // One self-contained file: no WAL beside it.
    copy.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))?;
    let check: String = copy.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if check != "ok" {
        bail!("the copy failed its integrity check: {check}");
    }
    drop(copy);
    File::open(snapshot)?.sync_all()?;
    Ok(())
}

fn summarise(database: &Path) -> anyhow::Result<BackupSummary> {
    let conn = Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let count = |table: &str| -> anyhow::Result<u64> {
        let count: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| row.get(0))?;
        Ok(count.unsigned_abs())
    };
    Ok(BackupSummary {
        users: count("users")?,
        invitations: count("invitations")?,
        database_bytes: std::fs::metadata(database)?.len(),
    })
}

fn write_archive(data_dir: &Path, snapshot: &Path, partial: &Path) -> anyhow::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut archive = tar::Builder::new(file);
    archive.mode(tar::HeaderMode::Deterministic);
    for name in ARCHIVED {
        let source = if name == DB_FILE { snapshot.to_path_buf() } else { data_dir.join(name) };
        let mut input = File::open(&source).with_context(|| format!("reading {}", source.display()))?;
        archive.append_file(name, &mut input).with_context(|| format!("archiving {name}"))?;
    }
    let mut file = archive.into_inner()?;
    file.flush()?;
    file.sync_all()?;
    Ok(())
}

fn sibling(path: &Path, suffix: &str) -> anyhow::Result<PathBuf> {
    let name = path.file_name().with_context(|| format!("{} is not a file name", path.display()))?;
    Ok(path.with_file_name(format!(".{}{suffix}", name.to_string_lossy())))
}

fn sync_parent(path: &Path) -> anyhow::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => sync_dir(parent),
        None => sync_dir(Path::new(".")),
    }
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)?.sync_all().with_context(|| format!("syncing {}", dir.display()))
}
