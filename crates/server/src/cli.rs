//! The `invitegate` commands.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use domain::{Email, Inviter};
use time::format_description::well_known::Rfc3339;

use crate::clock::SystemClock;
use crate::config::{BackendKind, Cli, Command, CommonArgs, InviteCommand, ServeArgs, UsersCommand, app_config};
use crate::service::{Actor, InvitationRef, Invitegate};
use crate::startup::{Application, build_service, default_public_url, shutdown_signal};
use crate::wire::ErrorCode;

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    run_writing_to(&cli, &mut std::io::stdout()).await
}

/// Runs the command; operator commands print their report to `out`.
pub async fn run_writing_to(cli: &Cli, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    match &cli.command {
        Command::Serve(serve) => run_serve(&cli.common, serve).await,
        Command::Invite(command) => run_invite(&cli.common, command, out).await,
        Command::Users(UsersCommand::List) => run_users(&cli.common, out).await,
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
        InviteCommand::Create { email, quota } => {
            let invitation = service.invite(&operator, parse_email(email)?, *quota).await.map_err(operator_error)?;
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
            let invitations = service.list_invitations(&operator, *status).await.map_err(operator_error)?;
            writeln!(out, "{:<36}  {:<32}  {:<8}  {:<25}  INVITED BY", "ID", "EMAIL", "STATUS", "EXPIRES")?;
            for invitation in invitations {
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
    }
    Ok(())
}

pub async fn run_users(common: &CommonArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let service = operator_service(common).await?;
    let users = service.list_users().await.map_err(operator_error)?;
    writeln!(out, "{:<36}  {:<32}  {:<11}  {:<8}  CREATED", "SUB", "EMAIL", "STATUS", "VERIFIED")?;
    for user in users {
        writeln!(
            out,
            "{:<36}  {:<32}  {:<11}  {:<8}  {}",
            user.sub,
            user.email,
            user.status.as_str(),
            user.email_verified,
            user.created_at.format(&Rfc3339)?
        )?;
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
