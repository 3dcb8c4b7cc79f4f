//! Delivery: RFC 5322 files in an outbox folder (the default), or SMTP.

use std::path::{Path, PathBuf};

use anyhow::Context;
use async_trait::async_trait;
use domain::{Error, Mailer, OutgoingEmail};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, Message, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use time::OffsetDateTime;

pub const OUTBOX_DIR: &str = "outbox";

fn build(from: &Mailbox, message: &OutgoingEmail) -> Result<Message, Error> {
    let to: Mailbox = message
        .to
        .as_str()
        .parse()
        .map_err(|e| Error::Unexpected(anyhow::Error::new(e).context("recipient address")))?;
    let builder = Message::builder().from(from.clone()).to(to).subject(message.subject.clone());
    let text = SinglePart::builder().header(ContentType::TEXT_PLAIN).body(body(&message.text_body));
    match &message.html_body {
        // Text first: clients show the last alternative they can render.
        Some(html) => builder.multipart(
            MultiPart::alternative()
                .singlepart(text)
                .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(body(html))),
        ),
        None => builder.singlepart(text),
    }
    .map_err(|e| Error::Unexpected(anyhow::Error::new(e).context("building an email")))
}

/// Plain 7-bit text when it is valid as such (ASCII, lines within RFC 5322's
/// 998 octets; ours always are), so the outbox reads as written and links are
/// not broken up by quoted-printable soft line breaks, which lettre would
/// otherwise choose for any line over 76 characters.
fn body(text: &str) -> Body {
    let text = text.replace("\r\n", "\n").replace('\n', "\r\n");
    if text.is_ascii() && text.split("\r\n").all(|line| line.len() <= 998) {
        Body::dangerous_pre_encoded(text.into_bytes(), ContentTransferEncoding::SevenBit)
    } else {
        Body::new(text)
    }
}

pub fn parse_from(from: &str) -> anyhow::Result<Mailbox> {
    from.parse().with_context(|| format!("mail sender {from:?} is not an address"))
}

/// Writes each message to `<data dir>/outbox/<time>-<id>.eml` for the operator to read.
pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl OutboxMailer {
    pub fn new(data_dir: &Path, from: Mailbox) -> anyhow::Result<Self> {
        let dir = data_dir.join(OUTBOX_DIR);
        crate::create_private_dir(&dir)?;
        Ok(Self { dir, from })
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, message: &OutgoingEmail) -> Result<(), Error> {
        let bytes = build(&self.from, message)?.formatted();
        // Only orders the outbox's file names; no rule reads it, so no injected clock.
        #[allow(clippy::disallowed_methods)]
        let now = OffsetDateTime::now_utc();
        let name = format!("{}-{}.eml", now.unix_timestamp_nanos(), uuid::Uuid::new_v4().simple());
        let path = self.dir.join(&name);
        let written = tokio::task::spawn_blocking({
            let (dir, path) = (self.dir.clone(), path.clone());
            move || write_durably(&dir, &path, &bytes)
        })
        .await
        .map_err(|e| Error::Unexpected(anyhow::Error::new(e).context("outbox task")))?;
        written.map_err(|e| Error::Unexpected(anyhow::Error::new(e).context(format!("writing {}", path.display()))))?;
        tracing::info!(path = %path.display(), subject = %message.subject, "email written to the outbox");
        Ok(())
    }
}

/// Writes `bytes` to a temporary file, flushes and fsyncs it, renames it into
/// place and fsyncs the folder: a reader never sees half a message, a message
/// acknowledged survives a crash, and a write that fails (a full disk) fails
/// the send instead of leaving an empty file behind. Owner-only: it holds a live code.
fn write_durably(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("message.eml");
    let partial = dir.join(format!(".{name}.partial"));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&partial)?;
        file.write_all(bytes)?;
        file.flush()?;
        file.sync_all()?;
        std::fs::rename(&partial, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        // Nothing half-written stays behind (the rename may not have happened).
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Sends through an SMTP server given as a URL (`smtp://`, `smtps://`, with credentials if needed).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    pub fn new(url: &str, from: Mailbox) -> anyhow::Result<Self> {
        // The URL may hold a password: never echo it back in the error.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|_| anyhow::anyhow!("INVITEGATE_SMTP_URL is not a valid smtp:// or smtps:// URL"))?
            .build();
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, message: &OutgoingEmail) -> Result<(), Error> {
        let email = build(&self.from, message)?;
        self.transport
            .send(email)
            .await
            .map_err(|e| Error::Unexpected(anyhow::Error::new(e).context("sending by SMTP")))?;
        tracing::info!(subject = %message.subject, "email sent by SMTP");
        Ok(())
    }
}

/// The outbox's messages, newest first.
pub fn outbox_messages(data_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = data_dir.join(OUTBOX_DIR);
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|ext| ext == "eml"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    paths.sort();
    paths.reverse();
    Ok(paths)
}
