//! The `invitegate` commands.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use domain::{Email, Inviter};
use time::format_description::well_known::Rfc3339;

use crate::clock::SystemClock;
use crate::config::{
    BackendKind, Cli, Command, CommonArgs, FirebaseImportArgs, InviteCommand, InviteImportArgs, RequestsCommand,
    ServeArgs, UserImport, UsersCommand, app_config,
};
use crate::migration;
use crate::service::{
    AccessRequestRef, Actor, ImportedInvitation, InvitationImport, InvitationRef, Invitegate, OperatorInvite, UserRef,
};
use crate::startup::{Application, build_service, default_public_url, shutdown_signal};
use crate::wire::ErrorCode;
use domain::access_request::AccessRequestStatus;
use domain::firebase::FirebaseHashParams;

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    run_writing_to(&cli, &mut std::io::stdout()).await
}

/// Runs the command; operator commands print their report to `out`.
pub async fn run_writing_to(cli: &Cli, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    match &cli.command {
        Command::Serve(serve) => run_serve(&cli.common, serve).await,
        Command::Invite(command) => run_invite(&cli.common, command, out).await,
        Command::Users(UsersCommand::List) => run_users(&cli.common, out).await,
        Command::Users(command) => run_user_action(&cli.common, command, out).await,
        Command::Requests(command) => run_requests(&cli.common, command, out).await,
        Command::Backup { file } => run_backup(&cli.common, file, out),
        Command::Restore { file } => run_restore(&cli.common, file, out),
        Command::Outbox { count } => run_outbox(&cli.common, *count, out),
    }
}

async fn run_serve(common: &CommonArgs, serve: &ServeArgs) -> anyhow::Result<()> {
    // Only an embedded data dir greets its operator; on AWS that would mean paging through the pool.
    let data_dir = &common.embedded.data_dir;
    let unused = common.backend == BackendKind::Embedded && backend_embedded::is_unused(data_dir)?;
    let app = Application::build(app_config(common, Some(serve))?, Arc::new(SystemClock)).await?;
    tracing::info!(address = %app.address(), data_dir = %data_dir.display(), policy = common.policy.as_str(), "invitegate is listening");
    if unused && common.log_format == crate::telemetry::LogFormat::Json {
        // Log readers expect one JSON object per line: the hint becomes an event.
        tracing::info!(
            hint = %format!("invitegate --data-dir {} invite create you@example.com", data_dir.display()),
            "no users or invitations yet: invite yourself, then sign up with the emailed code"
        );
    } else if unused {
        eprintln!(
            "\ninvitegate has no users or invitations yet. To invite yourself, run in another terminal:\n\n    \
             invitegate --data-dir {dir} invite create you@example.com\n    \
             invitegate --data-dir {dir} outbox\n\nthen sign up with the code from that email (see the README).\n",
            dir = data_dir.display()
        );
    }
    app.run_until(shutdown_signal()).await
}

fn embedded_only(common: &CommonArgs, what: &str) -> anyhow::Result<()> {
    if common.backend != BackendKind::Embedded {
        anyhow::bail!(
            "{what} is for the embedded backend; on AWS, back up the DynamoDB table (point-in-time recovery) \
             and export the Cognito pool's users (see docs/aws.md)"
        );
    }
    Ok(())
}

fn run_backup(common: &CommonArgs, file: &std::path::Path, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    embedded_only(common, "backup")?;
    let summary = backend_embedded::backup(&common.embedded.data_dir, file)?;
    writeln!(
        out,
        "backed up {} users and {} invitations ({} bytes of database, with the keys) to {}",
        summary.users,
        summary.invitations,
        summary.database_bytes,
        file.display()
    )?;
    Ok(())
}

fn run_restore(common: &CommonArgs, file: &std::path::Path, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    embedded_only(common, "restore")?;
    let data_dir = &common.embedded.data_dir;
    let summary = backend_embedded::restore(file, data_dir)?;
    writeln!(
        out,
        "restored {} users and {} invitations into {}; start the service with --data-dir {}",
        summary.users,
        summary.invitations,
        data_dir.display(),
        data_dir.display()
    )?;
    Ok(())
}

async fn operator_service(common: &CommonArgs) -> anyhow::Result<Invitegate> {
    let config = app_config(common, None)?;
    let public_url = common.public_url.clone().unwrap_or_else(|| default_public_url(common.listen));
    build_service(&config, public_url, Arc::new(SystemClock)).await
}

fn parse_email(raw: &str) -> anyhow::Result<Email> {
    Email::parse(raw).map_err(|e| anyhow::anyhow!("{raw:?} is not a valid email address: {e}"))
}

/// Domain errors become messages an operator can act on; unexpected ones keep their chain.
fn operator_error(e: domain::Error) -> anyhow::Error {
    match e {
        domain::Error::Unexpected(cause) => cause,
        other => anyhow::anyhow!("{other} ({})", ErrorCode::from(&other)),
    }
}

pub async fn run_invite(common: &CommonArgs, command: &InviteCommand, out: &mut impl Write) -> anyhow::Result<()> {
    let service = operator_service(common).await?;
    let operator = Actor::Operator;
    match command {
        InviteCommand::Create { email, quota, expires_in_hours, no_email } => {
            let options = OperatorInvite {
                quota: *quota,
                expires_in: expires_in_hours.map(|h| time::Duration::hours(i64::from(h))),
                send_email: !no_email,
            };
            let (invitation, link) =
                service.invite_as_operator(parse_email(email)?, options).await.map_err(operator_error)?;
            if let Some(link) = link {
                // To the operator's terminal only: never logged.
                writeln!(
                    out,
                    "Invited {} (invitation {}), valid until {}. No email was sent; give them this link \
                     (it holds the code, and is shown only now):\n{}",
                    invitation.email,
                    invitation.id,
                    invitation.expires_at.format(&Rfc3339)?,
                    link.expose()
                )?;
                return Ok(());
            }
            writeln!(
                out,
                "Invited {} (invitation {}), valid until {}.\nThe access code was emailed to them{}.",
                invitation.email,
                invitation.id,
                invitation.expires_at.format(&Rfc3339)?,
                if common.backend == BackendKind::Embedded && common.embedded.smtp_url.is_none() {
                    "; read it with `invitegate outbox`"
                } else {
                    ""
                }
            )?;
        }
        InviteCommand::List { status } => {
            writeln!(out, "{:<36}  {:<32}  {:<8}  {:<25}  INVITED BY", "ID", "EMAIL", "STATUS", "EXPIRES")?;
            // Page by page, as `users list`.
            let mut cursor: Option<String> = None;
            loop {
                let page = service.invitations_page(*status, 500, cursor.as_deref()).await.map_err(operator_error)?;
                for invitation in &page.items {
                    let by = match &invitation.inviter {
                        Inviter::Operator => "operator".to_owned(),
                        Inviter::User(sub) => sub.to_string(),
                    };
                    writeln!(
                        out,
                        "{:<36}  {:<32}  {:<8}  {:<25}  {}",
                        invitation.id,
                        invitation.email,
                        invitation.status.as_str(),
                        invitation.expires_at.format(&Rfc3339)?,
                        by
                    )?;
                }
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        InviteCommand::Revoke { email } => {
            let target = InvitationRef::LatestFor(parse_email(email)?);
            let revoked = service.revoke(&operator, &target).await.map_err(operator_error)?;
            writeln!(out, "Revoked invitation {} for {}.", revoked.id, revoked.email)?;
        }
        InviteCommand::Resend { email } => {
            let target = InvitationRef::LatestFor(parse_email(email)?);
            let sent = service.resend(&operator, &target).await.map_err(operator_error)?;
            writeln!(
                out,
                "Sent a new code to {}; the old one no longer works. Valid until {}.",
                sent.email,
                sent.expires_at.format(&Rfc3339)?
            )?;
        }
        InviteCommand::Import(args) => import_invitations(&service, args, out).await?,
    }
    Ok(())
}

pub async fn run_users(common: &CommonArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let service = operator_service(common).await?;
    writeln!(out, "{:<36}  {:<32}  {:<11}  {:<8}  CREATED", "SUB", "EMAIL", "STATUS", "VERIFIED")?;
    // Page by page: a million accounts print without holding them all.
    let mut cursor: Option<String> = None;
    loop {
        let page = service.users_page(500, cursor.as_deref()).await.map_err(operator_error)?;
        for user in &page.items {
            let status = if user.disabled { "DISABLED" } else { user.status.as_str() };
            writeln!(
                out,
                "{:<36}  {:<32}  {:<11}  {:<8}  {}",
                user.sub,
                user.email,
                status,
                user.email_verified,
                user.created_at.format(&Rfc3339)?
            )?;
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}

pub async fn run_requests(common: &CommonArgs, command: &RequestsCommand, out: &mut impl Write) -> anyhow::Result<()> {
    let service = operator_service(common).await?;
    match command {
        RequestsCommand::List { status } => {
            let status = match status.as_deref() {
                Some(raw) => Some(
                    AccessRequestStatus::parse(raw)
                        .with_context(|| format!("unknown status {raw:?}: expected open, approved or rejected"))?,
                ),
                None => None,
            };
            let requests = service.access_requests(status).await.map_err(operator_error)?;
            writeln!(out, "{:<32}  {:<8}  REQUESTED", "EMAIL", "STATUS")?;
            for request in requests {
                writeln!(
                    out,
                    "{:<32}  {:<8}  {}",
                    request.email,
                    request.status.as_str(),
                    request.created_at.format(&Rfc3339)?
                )?;
            }
        }
        RequestsCommand::Approve { email } => {
            let target = AccessRequestRef::OpenFor(parse_email(email)?);
            let (request, invitation) = service.approve_access_request(&target).await.map_err(operator_error)?;
            writeln!(out, "Approved {}: invitation {} was emailed to them.", request.email, invitation.id)?;
        }
        RequestsCommand::Reject { email } => {
            let target = AccessRequestRef::OpenFor(parse_email(email)?);
            let request = service.reject_access_request(&target).await.map_err(operator_error)?;
            writeln!(out, "Rejected {}'s request.", request.email)?;
        }
    }
    Ok(())
}

/// One operator action on one account, named by email.
pub async fn run_user_action(common: &CommonArgs, command: &UsersCommand, out: &mut impl Write) -> anyhow::Result<()> {
    let service = operator_service(common).await?;
    let target = |email: &str| parse_email(email).map(UserRef::Email);
    match command {
        UsersCommand::List => unreachable!("listed by run_users"),
        UsersCommand::Show { email } => {
            let details = service.user_details(&target(email)?).await.map_err(operator_error)?;
            let user = &details.user;
            writeln!(out, "sub:           {}", user.sub)?;
            writeln!(out, "email:         {} (verified: {})", user.email, user.email_verified)?;
            let state = if user.disabled { "DISABLED" } else { user.status.as_str() };
            writeln!(out, "status:        {state}")?;
            writeln!(out, "created:       {}", user.created_at.format(&Rfc3339)?)?;
            let invited_by = match &details.invited_by {
                Some(Inviter::Operator) => "the operator".to_owned(),
                Some(Inviter::User(sub)) => sub.to_string(),
                None => "nobody (open sign-up)".to_owned(),
            };
            writeln!(out, "invited by:    {invited_by}")?;
            writeln!(out, "invites left:  {}", details.invites_remaining)?;
            writeln!(out, "invitations sent: {}", details.invitations.len())?;
            for invitation in &details.invitations {
                writeln!(out, "  {:<32}  {:<8}  {}", invitation.email, invitation.status.as_str(), invitation.id)?;
            }
            writeln!(out, "invitees: {}", details.invitees.len())?;
            for invitee in &details.invitees {
                writeln!(out, "  {invitee}")?;
            }
        }
        UsersCommand::Disable { email } => {
            let user = service.set_user_disabled(&target(email)?, true).await.map_err(operator_error)?;
            writeln!(out, "Disabled {}: it can no longer sign in, and its sessions have ended.", user.email)?;
        }
        UsersCommand::Enable { email } => {
            let user = service.set_user_disabled(&target(email)?, false).await.map_err(operator_error)?;
            writeln!(out, "Enabled {}.", user.email)?;
        }
        UsersCommand::Delete { email } => {
            let user = service.delete_user(&target(email)?).await.map_err(operator_error)?;
            writeln!(out, "Deleted {} ({}); its unused invitations were revoked.", user.email, user.sub)?;
        }
        UsersCommand::SignOut { email } => {
            let user = service.sign_out_user(&target(email)?).await.map_err(operator_error)?;
            writeln!(out, "Signed {} out everywhere.", user.email)?;
        }
        UsersCommand::ResetPassword { email } => {
            let user = service.reset_password(&target(email)?).await.map_err(operator_error)?;
            writeln!(out, "Sent a password-recovery code to {}.", user.email)?;
        }
        UsersCommand::Import(UserImport::Firebase(args)) => import_firebase(&service, args, out).await?,
    }
    Ok(())
}

/// Items per Scan page of the old system's table.
const SCAN_PAGE: i32 = 500;

/// Reads the old system's invitations: a file, or a paginated Scan of its DynamoDB table.
async fn read_invitations(args: &InviteImportArgs) -> anyhow::Result<migration::Checked<ImportedInvitation>> {
    if let Some(file) = &args.file {
        return migration::read_invitation_file(file);
    }
    let table = args.from_dynamodb.as_deref().context("a FILE or --from-dynamodb TABLE")?;
    let client = aws_sdk_dynamodb::Client::new(&backend_aws::sdk_config().await);
    let text =
        |item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>, name: &str| match item
            .get(name)?
        {
            aws_sdk_dynamodb::types::AttributeValue::S(s) => Some(s.clone()),
            aws_sdk_dynamodb::types::AttributeValue::N(n) => Some(n.clone()),
            _ => None,
        };
    let mut raw = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            // Pages of a bounded size: the table is read at a pace it can take.
            .limit(SCAN_PAGE)
            .set_exclusive_start_key(start)
            .send()
            .await
            .with_context(|| format!("scanning the DynamoDB table {table}"))?;
        for item in page.items() {
            let record = raw.len() + 1;
            let fields = migration::RawInvitation {
                email: text(item, &args.email_attr),
                code: text(item, &args.code_attr),
                expires_at: args.expiry_attr.as_deref().and_then(|name| text(item, name)),
                inviter: args.inviter_attr.as_deref().and_then(|name| text(item, name)),
            };
            let id = fields.email.clone().unwrap_or_else(|| format!("item {record}"));
            raw.push((record, migration::check_invitation(fields).map_err(|reason| (id, reason))));
        }
        match page.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => break,
        }
    }
    Ok(migration::dedupe_invitations(raw))
}

pub async fn import_invitations(
    service: &Invitegate,
    args: &InviteImportArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let checked = read_invitations(args).await?;
    let mut rejected = checked.rejected;
    let (mut imported, mut weak, mut rotated, mut skipped) = (0u64, 0u64, 0u64, 0u64);
    let mut progress = Progress::new(checked.records.len() as u64, "invitations");
    for (invitation, record) in checked.records.iter().zip(&checked.positions) {
        match service.import_invitation(invitation, args.rotate_weak, args.dry_run).await.map_err(operator_error)? {
            InvitationImport::Imported { weak: is_weak } => {
                imported += 1;
                weak += u64::from(is_weak);
            }
            InvitationImport::Rotated => rotated += 1,
            InvitationImport::AlreadyThere(_) => skipped += 1,
            InvitationImport::Refused(reason) => {
                rejected.push(migration::Rejected { record: *record, id: invitation.email.to_string(), reason });
            }
        }
        progress.advance(1);
    }
    progress.finish();
    rejected.sort_by_key(|r| r.record);
    let verb = if args.dry_run { "Would import" } else { "Imported" };
    writeln!(
        out,
        "{verb} {imported} invitations; {} {rotated} weak codes; skipped {skipped} already there; rejected {}.",
        if args.dry_run { "would replace" } else { "replaced" },
        rejected.len()
    )?;
    if weak > 0 {
        writeln!(
            out,
            "{weak} of the imported codes look guessable (under 40 bits). Run again with --rotate-weak to send \
             those invitees a new code instead (their old code then stops working)."
        )?;
    }
    if !rejected.is_empty() {
        let path = match (&args.rejects, &args.file) {
            (Some(path), _) => path.clone(),
            (None, Some(file)) => rejects_path(file, None),
            (None, None) => std::path::PathBuf::from(format!(
                "{}.rejected.csv",
                args.from_dynamodb.as_deref().unwrap_or("invitations")
            )),
        };
        migration::write_rejects(&path, &rejected)?;
        writeln!(out, "The rejected records and why: {}", path.display())?;
    }
    if args.dry_run {
        writeln!(out, "Dry run: nothing was written or sent.")?;
    }
    Ok(())
}

/// Users per batch: one transaction (embedded) or a few hundred requests (AWS).
const IMPORT_BATCH: usize = 500;

/// Progress on standard error: a bar on a terminal, a line per tenth otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    done: u64,
    next_line: u64,
}

impl Progress {
    pub fn new(total: u64, what: &str) -> Self {
        use std::io::IsTerminal as _;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            let style = indicatif::ProgressStyle::with_template(&format!(
                "{{spinner}} {what} [{{bar:40}}] {{pos}}/{{len}} ({{per_sec}}, {{eta}} left)"
            ))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style.progress_chars("=> "));
            bar
        });
        Self { bar, total, done: 0, next_line: 0 }
    }

    pub fn advance(&mut self, by: u64) {
        self.done += by;
        match &self.bar {
            Some(bar) => bar.inc(by),
            None if self.done >= self.next_line || self.done == self.total => {
                eprintln!("{} of {} records", self.done, self.total);
                self.next_line = self.done + (self.total / 10).max(1);
            }
            None => {}
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

fn rejects_path(file: &std::path::Path, given: Option<&std::path::PathBuf>) -> std::path::PathBuf {
    given.cloned().unwrap_or_else(|| {
        let mut name = file.file_name().unwrap_or_default().to_os_string();
        name.push(".rejected.csv");
        file.with_file_name(name)
    })
}

pub async fn import_firebase(
    service: &Invitegate,
    args: &FirebaseImportArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if !args.hash_algo.eq_ignore_ascii_case("SCRYPT") {
        anyhow::bail!("--hash-algo {}: only SCRYPT (Firebase's own) is supported", args.hash_algo);
    }
    let params = FirebaseHashParams::new(&args.hash_key, &args.salt_separator, args.rounds, args.mem_cost)?;
    // The whole file is checked before anything is written.
    #[allow(clippy::disallowed_methods)] // only stands in for a missing creation time
    let now = time::OffsetDateTime::now_utc();
    let checked = migration::read_firebase_export(&args.file, now)?;
    let mut rejected = checked.rejected;
    let (mut imported, mut skipped) = (0u64, 0u64);
    let mut progress = Progress::new(checked.records.len() as u64, "users");
    for (batch, positions) in checked.records.chunks(IMPORT_BATCH).zip(checked.positions.chunks(IMPORT_BATCH)) {
        let report = service.import_firebase_users(&params, batch, args.dry_run).await.map_err(operator_error)?;
        imported += report.imported;
        skipped += report.skipped;
        for email in report.taken {
            if let Some(index) = batch.iter().position(|u| u.email == email) {
                rejected.push(migration::Rejected {
                    record: positions[index],
                    id: batch[index].firebase_uid.clone(),
                    reason: "an account with this email already exists (not from this export)".into(),
                });
            }
        }
        progress.advance(batch.len() as u64);
    }
    rejected.sort_by_key(|r| r.record);
    progress.finish();
    let verb = if args.dry_run { "Would import" } else { "Imported" };
    writeln!(out, "{verb} {imported} users; skipped {skipped} already imported; rejected {}.", rejected.len())?;
    if !rejected.is_empty() {
        let path = rejects_path(&args.file, args.rejects.as_ref());
        migration::write_rejects(&path, &rejected)?;
        writeln!(out, "The rejected records and why: {}", path.display())?;
    }
    if args.dry_run {
        writeln!(out, "Dry run: nothing was written.")?;
    } else if imported > 0 {
        writeln!(out, "They sign in with their Firebase passwords, which are then replaced by this service's own.")?;
    }
    Ok(())
}

pub fn run_outbox(common: &CommonArgs, count: usize, out: &mut impl Write) -> anyhow::Result<()> {
    let data_dir = &common.embedded.data_dir;
    let messages = backend_embedded::outbox_messages(data_dir)?;
    if messages.is_empty() {
        writeln!(out, "The outbox ({}) is empty.", data_dir.join(backend_embedded::OUTBOX_DIR).display())?;
    }
    for path in messages.iter().take(count) {
        let content = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        writeln!(out, "==> {} <==\n{}\n", path.display(), content.replace("\r\n", "\n"))?;
    }
    Ok(())
}
