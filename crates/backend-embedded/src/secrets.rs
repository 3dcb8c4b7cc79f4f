//! Keys that live beside the database, not in it: a leaked database file alone
//! gives neither the power to sign tokens nor to test guesses at access codes.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use rand::Rng;

pub const CODE_KEY_FILE: &str = "code-hmac.key";
pub const SIGNING_KEY_FILE: &str = "jwt-signing-key.pk8";
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// The admin API's bearer token, created on first start (256 random bits,
/// base64url) in a 0600 file the operator reads to configure their backend.
pub fn admin_token(data_dir: &Path) -> anyhow::Result<String> {
    use base64::Engine as _;
    let bytes = load_or_create(&data_dir.join(ADMIN_TOKEN_FILE), || {
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw).into_bytes())
    })?;
    let token = String::from_utf8(bytes).context("the admin token file is not text")?;
    Ok(token.trim().to_owned())
}

/// Reads a secret file, creating it with mode 0600 on first start. The new key
/// is written to a temporary file and linked into place, so a crash or a
/// second process starting at the same moment never sees half a key.
fn load_or_create(path: &Path, generate: impl FnOnce() -> anyhow::Result<Vec<u8>>) -> anyhow::Result<Vec<u8>> {
    if let Some(bytes) = read_private(path)? {
        return Ok(bytes);
    }
    let bytes = generate()?;
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()
    })();
    let linked = written.and_then(|()| fs::hard_link(&tmp, path));
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(bytes),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            read_private(path)?.with_context(|| format!("{} vanished", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

/// `None` if missing; refuses a key others can read, as ssh does.
fn read_private(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!("{} has permissions {mode:o}; it must be readable by its owner only (chmod 600)", path.display());
    }
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.is_empty() {
        bail!("{} is empty; restore it from a backup (tokens and codes depend on it)", path.display());
    }
    Ok(Some(bytes))
}

pub fn code_key(data_dir: &Path) -> anyhow::Result<[u8; 32]> {
    let path = data_dir.join(CODE_KEY_FILE);
    let bytes = load_or_create(&path, || {
        let mut key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Ok(key)
    })?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("{} must hold exactly 32 bytes", path.display()))
}

/// The RSA signing key as PKCS#1 DER (what the JWT library signs with); stored as PKCS#8.
pub fn signing_key(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = data_dir.join(SIGNING_KEY_FILE);
    let pkcs8 = load_or_create(&path, || {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
        let der = AsDer::<Pkcs8V1Der>::as_der(&pair).map_err(|_| anyhow::anyhow!("RSA key encoding failed"))?;
        Ok(der.as_ref().to_vec())
    })?;
    pkcs1_from_pkcs8(&pkcs8).with_context(|| format!("{} is not a PKCS#8 RSA key", path.display()))
}

/// PrivateKeyInfo ::= SEQUENCE { version INTEGER, algorithm SEQUENCE, privateKey OCTET STRING }
fn pkcs1_from_pkcs8(der: &[u8]) -> anyhow::Result<Vec<u8>> {
    let (0x30, info, _) = der_tlv(der)? else { bail!("not a SEQUENCE") };
    let (0x02, _, rest) = der_tlv(info)? else { bail!("no version") };
    let (0x30, _, rest) = der_tlv(rest)? else { bail!("no algorithm") };
    let (0x04, key, _) = der_tlv(rest)? else { bail!("no private key") };
    Ok(key.to_vec())
}

fn der_tlv(input: &[u8]) -> anyhow::Result<(u8, &[u8], &[u8])> {
    let truncated = || anyhow::anyhow!("truncated DER");
    let (&tag, rest) = input.split_first().ok_or_else(truncated)?;
    let (&first, rest) = rest.split_first().ok_or_else(truncated)?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            bail!("bad DER length");
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(truncated());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let first = code_key(dir.path()).unwrap();
        assert_eq!(code_key(dir.path()).unwrap(), first);
        let signing = signing_key(dir.path()).unwrap();
        assert_eq!(signing_key(dir.path()).unwrap(), signing);
        for file in [CODE_KEY_FILE, SIGNING_KEY_FILE] {
            let mode = fs::metadata(dir.path().join(file)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }

    #[test]
    fn a_key_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        code_key(dir.path()).unwrap();
        let path = dir.path().join(CODE_KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = code_key(dir.path()).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}
