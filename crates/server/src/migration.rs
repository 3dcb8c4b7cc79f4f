//! Reading what other systems exported, for `users import firebase` and
//! `invite import`: every record is checked before anything is written, so a
//! malformed file is refused whole, and a bad record is set aside with its
//! reason (never its hash or code).

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use anyhow::Context;
use domain::Email;
use domain::firebase::{FirebasePassword, ImportedUser};

use crate::service::ImportedInvitation;
use serde_json::Value;
use time::OffsetDateTime;

/// A record that cannot be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based position in the file (the line, for CSV and JSON lines).
    pub record: usize,
    /// What names the record to its owner: a Firebase uid, or an email.
    pub id: String,
    pub reason: String,
}

/// A file, read and checked.
#[derive(Debug)]
pub struct Checked<T> {
    pub records: Vec<T>,
    /// Each record's position in the file (1-based), in the same order.
    pub positions: Vec<usize>,
    pub rejected: Vec<Rejected>,
}

impl<T> Default for Checked<T> {
    fn default() -> Self {
        Self { records: Vec::new(), positions: Vec::new(), rejected: Vec::new() }
    }
}

/// One record as read: its position in the file, and what it holds, or what
/// names it and why it cannot be imported.
pub type ReadRecord<T> = (usize, Result<T, (String, String)>);

/// The format of an export, from its extension, else from its first byte.
fn is_json(path: &Path, content: &[u8]) -> bool {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("json") | Some("jsonl") | Some("ndjson") => true,
        Some("csv") => false,
        _ => content.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'),
    }
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut content = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut file| file.read_to_end(&mut content))
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(content)
}

/// Milliseconds since the epoch, as Firebase writes them (a string or a number).
fn millis(value: &Value) -> Option<OffsetDateTime> {
    let ms = match value {
        Value::String(s) => s.trim().parse::<i64>().ok()?,
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// The fields of one exported user, as strings, before checking.
struct RawUser<'a> {
    uid: &'a str,
    email: &'a str,
    email_verified: bool,
    hash: &'a str,
    salt: &'a str,
    created_at: Option<Result<OffsetDateTime, ()>>,
    disabled: bool,
}

fn check_user(raw: RawUser<'_>, now: OffsetDateTime) -> Result<ImportedUser, String> {
    let uid = raw.uid.trim();
    if uid.is_empty() {
        return Err("no localId".into());
    }
    if uid.len() > 128 {
        return Err("localId longer than 128 characters".into());
    }
    let email = raw.email.trim();
    if email.is_empty() {
        return Err("no email address (invitegate accounts are by email)".into());
    }
    let email = Email::parse(email).map_err(|e| format!("invalid email address: {e}"))?;
    let password = match (raw.hash.trim().is_empty(), raw.salt.trim().is_empty()) {
        (true, _) => None,
        (false, true) => return Err("a password hash without its salt".into()),
        (false, false) => Some(
            FirebasePassword::from_base64(raw.hash, raw.salt)
                .ok_or_else(|| "passwordHash or salt is not base64".to_owned())?,
        ),
    };
    let created_at = match raw.created_at {
        None => now,
        Some(Ok(at)) => at,
        Some(Err(())) => return Err("createdAt is not milliseconds since 1970".into()),
    };
    Ok(ImportedUser {
        firebase_uid: uid.to_owned(),
        email,
        email_verified: raw.email_verified,
        created_at,
        disabled: raw.disabled,
        password,
    })
}

/// Reads what `firebase auth:export` writes: JSON (`{"users": [...]}`) or CSV
/// (no header; UID, email, email verified, password hash, salt, …, creation
/// time in column 24). `now` stands in for a missing creation time.
pub fn read_firebase_export(path: &Path, now: OffsetDateTime) -> anyhow::Result<Checked<ImportedUser>> {
    let content = read(path)?;
    let raw: Vec<Result<ImportedUser, (String, String)>> = if is_json(path, &content) {
        let document: Value = serde_json::from_slice(&content)
            .with_context(|| format!("{} is not a JSON document from `firebase auth:export`", path.display()))?;
        let users = document.get("users").and_then(Value::as_array).with_context(|| {
            format!("{} has no \"users\" array (a `firebase auth:export` file has one)", path.display())
        })?;
        users
            .iter()
            .map(|user| {
                let text = |name: &str| user.get(name).and_then(Value::as_str).unwrap_or_default();
                let flag = |name: &str| user.get(name).and_then(Value::as_bool).unwrap_or(false);
                let raw = RawUser {
                    uid: text("localId"),
                    email: text("email"),
                    email_verified: flag("emailVerified"),
                    hash: text("passwordHash"),
                    salt: text("salt"),
                    created_at: user.get("createdAt").map(|v| millis(v).ok_or(())),
                    disabled: flag("disabled"),
                };
                let id = if raw.uid.is_empty() { raw.email.to_owned() } else { raw.uid.to_owned() };
                check_user(raw, now).map_err(|reason| (id, reason))
            })
            .collect()
    } else {
        let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(content.as_slice());
        let mut users = Vec::new();
        for (index, row) in reader.records().enumerate() {
            let row = row.with_context(|| format!("{}: CSV record {} is malformed", path.display(), index + 1))?;
            if row.len() < 5 {
                anyhow::bail!(
                    "{}: record {} has {} columns; a `firebase auth:export` CSV row has at least 5 \
                     (UID, email, email verified, password hash, salt)",
                    path.display(),
                    index + 1,
                    row.len()
                );
            }
            let field = |i: usize| row.get(i).unwrap_or_default();
            let verified = field(2).trim();
            let created = field(23).trim();
            let raw = RawUser {
                uid: field(0),
                email: field(1),
                email_verified: verified.eq_ignore_ascii_case("true"),
                hash: field(3),
                salt: field(4),
                created_at: (!created.is_empty()).then(|| millis(&Value::String(created.to_owned())).ok_or(())),
                disabled: false,
            };
            let id = if raw.uid.trim().is_empty() { raw.email.to_owned() } else { raw.uid.trim().to_owned() };
            users.push(check_user(raw, now).map_err(|reason| (id, reason)));
        }
        users
    };
    let mut checked = Checked::default();
    let (mut emails, mut uids) = (HashSet::new(), HashSet::new());
    for (index, user) in raw.into_iter().enumerate() {
        let record = index + 1;
        match user {
            Err((id, reason)) => checked.rejected.push(Rejected { record, id, reason }),
            Ok(user) => {
                let id = user.firebase_uid.clone();
                if !uids.insert(user.firebase_uid.clone()) {
                    checked.rejected.push(Rejected { record, id, reason: "localId appears twice in the file".into() });
                } else if !emails.insert(user.email.clone()) {
                    checked.rejected.push(Rejected { record, id, reason: "email appears twice in the file".into() });
                } else {
                    checked.records.push(user);
                    checked.positions.push(record);
                }
            }
        }
    }
    Ok(checked)
}

/// An expiry as other systems write it: RFC 3339, or Unix seconds (or
/// milliseconds, when too large to be seconds).
pub fn parse_expiry(raw: &str) -> Option<OffsetDateTime> {
    let raw = raw.trim();
    if let Ok(at) = OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339) {
        return Some(at);
    }
    let number: i64 = raw.parse().ok()?;
    let seconds = if number > 100_000_000_000 { number / 1000 } else { number };
    OffsetDateTime::from_unix_timestamp(seconds).ok()
}

/// The fields of one invitation from another system, before checking.
pub struct RawInvitation {
    pub email: Option<String>,
    pub code: Option<String>,
    pub expires_at: Option<String>,
    pub inviter: Option<String>,
}

/// Checks one invitation record; `Err` holds the reason (never the code).
pub fn check_invitation(raw: RawInvitation) -> Result<ImportedInvitation, String> {
    let email = raw.email.as_deref().map(str::trim).filter(|e| !e.is_empty()).ok_or("no email")?;
    let email = Email::parse(email).map_err(|e| format!("invalid email address: {e}"))?;
    let code = raw.code.as_deref().map(str::trim).filter(|c| !c.is_empty()).ok_or("no access code")?;
    if code.chars().count() > 256 {
        return Err("access code longer than 256 characters".into());
    }
    let expires_at = match raw.expires_at.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        None => None,
        Some(text) => Some(parse_expiry(text).ok_or("expiry is neither RFC 3339 nor Unix seconds")?),
    };
    let inviter = match raw.inviter.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        None => None,
        Some(text) => Some(Email::parse(text).map_err(|e| format!("invalid inviter address: {e}"))?),
    };
    Ok(ImportedInvitation { email, code: domain::SecretString::new(code.to_owned()), expires_at, inviter })
}

/// The first of these names a record has.
fn pick<'a>(fields: &'a std::collections::HashMap<String, String>, names: &[&str]) -> Option<&'a String> {
    names.iter().find_map(|name| fields.get(&name.to_ascii_lowercase()))
}

const EMAIL_NAMES: &[&str] = &["email"];
const CODE_NAMES: &[&str] = &["code", "access_code", "accesscode"];
const EXPIRY_NAMES: &[&str] = &["expires_at", "expiresat", "expiry", "expires"];
const INVITER_NAMES: &[&str] = &["inviter", "inviter_email", "inviteremail", "invited_by"];

fn raw_from_fields(fields: &std::collections::HashMap<String, String>) -> RawInvitation {
    RawInvitation {
        email: pick(fields, EMAIL_NAMES).cloned(),
        code: pick(fields, CODE_NAMES).cloned(),
        expires_at: pick(fields, EXPIRY_NAMES).cloned(),
        inviter: pick(fields, INVITER_NAMES).cloned(),
    }
}

/// Reads invitations from CSV with a header row (`email`, `code`, and
/// optionally `expires_at`, `inviter`) or JSON lines (one object per line,
/// the same names, also camelCase).
pub fn read_invitation_file(path: &Path) -> anyhow::Result<Checked<ImportedInvitation>> {
    let content = read(path)?;
    let mut raw: Vec<ReadRecord<ImportedInvitation>> = Vec::new();
    let label = |fields: &std::collections::HashMap<String, String>, record: usize| {
        pick(fields, EMAIL_NAMES).cloned().unwrap_or_else(|| format!("record {record}"))
    };
    if is_json(path, &content) {
        let text = std::str::from_utf8(&content).with_context(|| format!("{} is not UTF-8", path.display()))?;
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let record = index + 1;
            let object: serde_json::Map<String, Value> = serde_json::from_str(line)
                .with_context(|| format!("{}: line {record} is not a JSON object", path.display()))?;
            let fields = object
                .into_iter()
                .filter_map(|(key, value)| {
                    let value = match value {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        _ => return None,
                    };
                    Some((key.to_ascii_lowercase(), value))
                })
                .collect();
            let id = label(&fields, record);
            raw.push((record, check_invitation(raw_from_fields(&fields)).map_err(|reason| (id, reason))));
        }
    } else {
        let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(content.as_slice());
        let headers: Vec<String> = reader
            .headers()
            .with_context(|| format!("{}: no header row", path.display()))?
            .iter()
            .map(str::to_ascii_lowercase)
            .collect();
        let has = |names: &[&str]| names.iter().any(|n| headers.iter().any(|h| h == n));
        if !has(EMAIL_NAMES) || !has(CODE_NAMES) {
            anyhow::bail!(
                "{}: the header row must name an `email` and a `code` column (found: {})",
                path.display(),
                headers.join(", ")
            );
        }
        for (index, row) in reader.records().enumerate() {
            let record = index + 2;
            let row = row.with_context(|| format!("{}: line {record} is malformed", path.display()))?;
            let fields = headers.iter().cloned().zip(row.iter().map(str::to_owned)).collect();
            let id = label(&fields, record);
            raw.push((record, check_invitation(raw_from_fields(&fields)).map_err(|reason| (id, reason))));
        }
    }
    Ok(dedupe_invitations(raw))
}

/// Sets aside a second invitation for the same email.
pub fn dedupe_invitations(raw: Vec<ReadRecord<ImportedInvitation>>) -> Checked<ImportedInvitation> {
    let mut checked = Checked::default();
    let mut emails = HashSet::new();
    for (record, invitation) in raw {
        match invitation {
            Err((id, reason)) => checked.rejected.push(Rejected { record, id, reason }),
            Ok(invitation) if !emails.insert(invitation.email.clone()) => {
                let id = invitation.email.to_string();
                checked.rejected.push(Rejected { record, id, reason: "email appears twice".into() });
            }
            Ok(invitation) => {
                checked.records.push(invitation);
                checked.positions.push(record);
            }
        }
    }
    checked
}

/// Writes the rejected records as CSV (record, id, reason): never a hash or a code.
pub fn write_rejects(path: &Path, rejected: &[Rejected]) -> anyhow::Result<()> {
    let mut writer = csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
    writer.write_record(["record", "id", "reason"])?;
    for reject in rejected {
        writer.write_record([reject.record.to_string().as_str(), &reject.id, &reject.reason])?;
    }
    writer.flush().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-28 0:00 UTC);

    fn export(name: &str, content: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        (dir, path)
    }

    #[test]
    fn json_exports_keep_every_field_and_set_bad_records_aside() {
        let (_dir, path) = export(
            "users.json",
            r#"{"users": [
              {"localId": "u1", "email": "A@example.com", "emailVerified": true, "passwordHash": "aGFzaA==",
               "salt": "c2FsdA==", "createdAt": "1487891620000", "disabled": true},
              {"localId": "u2", "email": "b@example.com", "createdAt": 1487891620000},
              {"localId": "u3", "phoneNumber": "+15555550100"},
              {"localId": "u4", "email": "a@example.com"},
              {"localId": "u5", "email": "c@example.com", "passwordHash": "%%%", "salt": "c2FsdA=="},
              {"localId": "u1", "email": "d@example.com"}
            ]}"#,
        );
        let checked = read_firebase_export(&path, NOW).unwrap();
        assert_eq!(checked.records.len(), 2);
        let first = &checked.records[0];
        assert_eq!(
            (first.firebase_uid.as_str(), first.email.as_str()),
            ("u1", "a@example.com"),
            "emails are kept in lower case"
        );
        assert!(first.email_verified && first.disabled);
        assert_eq!(first.created_at, datetime!(2017-02-23 23:13:40 UTC));
        assert_eq!(first.password.as_ref().unwrap().hash, b"hash");
        let second = &checked.records[1];
        assert!(!second.email_verified && !second.disabled && second.password.is_none());
        let reasons: Vec<(usize, &str, &str)> =
            checked.rejected.iter().map(|r| (r.record, r.id.as_str(), r.reason.as_str())).collect();
        assert_eq!(
            reasons,
            [
                (3, "u3", "no email address (invitegate accounts are by email)"),
                (4, "u4", "email appears twice in the file"),
                (5, "u5", "passwordHash or salt is not base64"),
                (6, "u1", "localId appears twice in the file"),
            ]
        );
    }

    #[test]
    fn csv_exports_are_read_by_column() {
        let mut row = vec![""; 26];
        row[0] = "u1";
        row[1] = "a@example.com";
        row[2] = "true";
        row[3] = "aGFzaA==";
        row[4] = "c2FsdA==";
        row[5] = "Ann, the first";
        row[23] = "1487891620000";
        let line = row.iter().map(|f| format!("\"{f}\"")).collect::<Vec<_>>().join(",");
        let (_dir, path) = export("users.csv", &format!("{line}\nu2,b@example.com,false,,\n"));
        let checked = read_firebase_export(&path, NOW).unwrap();
        assert!(checked.rejected.is_empty(), "{:?}", checked.rejected);
        assert_eq!(checked.records[0].created_at, datetime!(2017-02-23 23:13:40 UTC));
        assert!(checked.records[0].email_verified);
        assert_eq!(checked.records[1].created_at, NOW, "no creation time: the import's");
        assert!(checked.records[1].password.is_none());
    }

    #[test]
    fn invitations_come_from_csv_with_a_header_or_json_lines() {
        let (_dir, path) = export(
            "old.csv",
            "Email,Code,Expires_At,Inviter\n\
             a@example.com, beta-2023 ,2027-01-01T00:00:00Z,\n\
             b@example.com,X7Y8Z9,1798761600,boss@example.com\n\
             not-an-address,abc,,\n\
             c@example.com,,,\n\
             a@example.com,other,,\n",
        );
        let checked = read_invitation_file(&path).unwrap();
        assert_eq!(checked.records.len(), 2);
        assert_eq!(checked.records[0].code.expose(), "beta-2023");
        assert_eq!(checked.records[0].expires_at, Some(datetime!(2027-01-01 0:00 UTC)));
        assert_eq!(checked.records[1].expires_at, Some(datetime!(2027-01-01 0:00 UTC)));
        assert_eq!(checked.records[1].inviter.as_ref().unwrap().as_str(), "boss@example.com");
        let reasons: Vec<(usize, &str)> = checked.rejected.iter().map(|r| (r.record, r.reason.as_str())).collect();
        assert_eq!(reasons[1..], [(5, "no access code"), (6, "email appears twice")]);
        assert!(reasons[0].1.starts_with("invalid email address"));
        assert!(checked.rejected.iter().all(|r| !r.reason.contains("abc") && !r.id.contains("other")));

        let (_dir, path) = export(
            "old.jsonl",
            "{\"email\": \"d@example.com\", \"accessCode\": 123456, \"expiresAt\": 1798761600000}\n\n",
        );
        let checked = read_invitation_file(&path).unwrap();
        assert_eq!(checked.records[0].code.expose(), "123456");
        assert_eq!(checked.records[0].expires_at, Some(datetime!(2027-01-01 0:00 UTC)));
        let (_dir, path) = export("old.csv", "mail,secret\na@example.com,x\n");
        assert!(read_invitation_file(&path).unwrap_err().to_string().contains("must name an `email` and a `code`"));
    }

    #[test]
    fn a_malformed_file_is_refused_whole() {
        let (_dir, path) = export("users.json", r#"{"users": [{"localId": "u1", "email": "a@example.com"}"#);
        let error = read_firebase_export(&path, NOW).unwrap_err().to_string();
        assert!(error.contains("is not a JSON document"), "{error}");
        let (_dir, path) = export("users.json", r#"{"accounts": []}"#);
        assert!(read_firebase_export(&path, NOW).unwrap_err().to_string().contains("no \"users\" array"));
        let (_dir, path) = export("users.csv", "u1,a@example.com\n");
        assert!(read_firebase_export(&path, NOW).unwrap_err().to_string().contains("has 2 columns"));
    }
}
