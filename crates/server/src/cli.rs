//! The `invitegate` commands.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use domain::{Email, Inviter, PasswordPolicy};
use time::format_description::well_known::Rfc3339;

use crate::clock::SystemClock;
use crate::config::{AwsCommand, BackendKind, Cli, Command, CommonArgs, InviteCommand, ServeArgs, UsersCommand};
use crate::limits::AttemptLimits;
use crate::service::ServiceSettings;
use crate::startup::{AppConfig, Application, Backend, build_service, default_public_url, shutdown_signal};

pub fn app_config(common: &CommonArgs, serve: Option<&ServeArgs>) -> anyhow::Result<AppConfig> {
    let backend = match common.backend {
        BackendKind::Embedded => Backend::Embedded,
        BackendKind::Aws => Backend::Aws(backend_aws::AwsConfig::from_env()?),
    };
    Ok(AppConfig {
        backend,
        data_dir: common.data_dir.clone(),
        listen: common.listen,
        public_url: common.public_url.clone(),
        service: ServiceSettings {
            policy: common.policy,
            default_invite_quota: common.invite_quota,
            invitation_ttl: time::Duration::hours(i64::from(common.invitation_ttl_hours)),
            password_policy: PasswordPolicy::default(),
        },
        smtp_url: common.smtp_url.clone(),
        mail_from: common.mail_from.clone(),
        hashing_cost: backend_embedded::HashingCost::OWASP,
        attempt_limits: AttemptLimits::default(),
        cors_origins: serve.map(|s| s.cors_origins.clone()).unwrap_or_default(),
        request_timeout: Duration::from_secs(serve.map_or(30, |s| s.request_timeout_secs)),
        max_body_bytes: serve.map_or(16 * 1024, |s| s.max_body_bytes),
    })
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Serve(serve) => run_serve(&cli.common, serve).await,
        Command::Invite(command) => run_invite(&cli.common, command, &mut std::io::stdout()).await,
        Command::Users(UsersCommand::List) => run_users(&cli.common, &mut std::io::stdout()).await,
        Command::Outbox { count } => run_outbox(&cli.common, *count, &mut std::io::stdout()),
        Command::Aws(AwsCommand::Provision { name, lambda_zip }) => {
            run_provision(&cli.common, name, lambda_zip, &mut std::io::stdout()).await
        }
    }
}

async fn run_serve(common: &CommonArgs, serve: &ServeArgs) -> anyhow::Result<()> {
    // Only an embedded data dir greets its operator; on AWS that would mean paging through the pool.
    let unused = common.backend == BackendKind::Embedded && backend_embedded::is_unused(&common.data_dir)?;
    let app = Application::build(app_config(common, Some(serve))?, Arc::new(SystemClock)).await?;
    tracing::info!(address = %app.address(), data_dir = %common.data_dir.display(), policy = common.policy.as_str(), "invitegate is listening");
    if unused {
        eprintln!(
            "\ninvitegate has no users or invitations yet. To invite yourself, run in another terminal:\n\n    \
             invitegate --data-dir {dir} invite create you@example.com\n    \
             invitegate --data-dir {dir} outbox\n\nthen sign up with the code from that email (see the README).\n",
            dir = common.data_dir.display()
        );
    }
    app.run_until(shutdown_signal()).await
}

async fn operator_service(common: &CommonArgs) -> anyhow::Result<crate::service::Invitegate> {
    let config = app_config(common, None)?;
    let public_url = common.public_url.clone().unwrap_or_else(|| default_public_url(common.listen));
    build_service(&config, public_url, Arc::new(SystemClock)).await
}

/// Prints `export` lines for the provisioned resources (the secret included: this is for
/// emulators and scratch accounts; keep the output away from shared logs).
pub async fn run_provision(
    common: &CommonArgs,
    name: &str,
    lambda_zip: &std::path::Path,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let zip = std::fs::read(lambda_zip).with_context(|| format!("reading {}", lambda_zip.display()))?;
    let sdk = backend_aws::sdk_config().await;
    let mail_from =
        std::env::var(backend_aws::ENV_MAIL_FROM).unwrap_or_else(|_| format!("no-reply@{name}.example.com"));
    let provisioned = backend_aws::provision::provision(
        &sdk,
        backend_aws::provision::ProvisionRequest {
            name,
            policy: common.policy,
            mail_from: &mail_from,
            lambda_zip: zip,
        },
    )
    .await?;
    writeln!(out, "export INVITEGATE_BACKEND=aws")?;
    writeln!(out, "export {}={}", backend_aws::ENV_POOL, provisioned.user_pool_id)?;
    writeln!(out, "export {}={}", backend_aws::ENV_CLIENT, provisioned.client_id)?;
    writeln!(out, "export {}={}", backend_aws::ENV_SECRET, provisioned.client_secret.expose())?;
    writeln!(out, "export {}={}", backend_aws::ENV_TABLE, provisioned.table)?;
    writeln!(out, "export {}='{}'", backend_aws::ENV_MAIL_FROM, mail_from)?;
    writeln!(out, "export {}={}", backend_aws::ENV_CODE_KEY, backend_aws::generate_code_key())?;
    Ok(())
}

fn parse_email(raw: &str) -> anyhow::Result<Email> {
    Email::parse(raw).map_err(|e| anyhow::anyhow!("{raw:?} is not a valid email address: {e}"))
}

/// Domain errors become messages an operator can act on; unexpected ones keep their chain.
fn operator_error(e: domain::Error) -> anyhow::Error {
    match e {
        domain::Error::Unexpected(cause) => cause,
        other => anyhow::anyhow!("{other} ({})", other.code()),
    }
}

pub async fn run_invite(common: &CommonArgs, command: &InviteCommand, out: &mut impl Write) -> anyhow::Result<()> {
    let service = operator_service(common).await?;
    let now = time::OffsetDateTime::now_utc();
    match command {
        InviteCommand::Create { email, quota } => {
            let invitation =
                service.invite(Inviter::Operator, parse_email(email)?, *quota).await.map_err(operator_error)?;
            writeln!(
                out,
                "Invited {} (invitation {}), valid until {}.\nThe access code was emailed to them{}.",
                invitation.email,
                invitation.id,
                invitation.expires_at.format(&Rfc3339)?,
                if common.backend == BackendKind::Embedded && common.smtp_url.is_none() {
                    "; read it with `invitegate outbox`"
                } else {
                    ""
                }
            )?;
        }
        InviteCommand::List { status } => {
            let invitations = service.store.list(None).await.map_err(operator_error)?;
            writeln!(out, "{:<36}  {:<32}  {:<8}  {:<25}  INVITED BY", "ID", "EMAIL", "STATUS", "EXPIRES")?;
            for invitation in invitations.iter().filter(|i| status.is_none_or(|s| i.status_at(now) == s)) {
                let by = match &invitation.inviter {
                    Inviter::Operator => "operator".to_owned(),
                    Inviter::User(sub) => sub.to_string(),
                };
                writeln!(
                    out,
                    "{:<36}  {:<32}  {:<8}  {:<25}  {}",
                    invitation.id,
                    invitation.email,
                    invitation.status_at(now).as_str(),
                    invitation.expires_at.format(&Rfc3339)?,
                    by
                )?;
            }
        }
        InviteCommand::Revoke { email } => {
            let latest = service.latest_for_email(&parse_email(email)?).await.map_err(operator_error)?;
            let revoked = service.revoke(&Inviter::Operator, &latest.id).await.map_err(operator_error)?;
            writeln!(out, "Revoked invitation {} for {}.", revoked.id, revoked.email)?;
        }
        InviteCommand::Resend { email } => {
            let latest = service.latest_for_email(&parse_email(email)?).await.map_err(operator_error)?;
            let sent = service.resend(&Inviter::Operator, &latest.id).await.map_err(operator_error)?;
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
    let users = service.pool.list_users().await.map_err(operator_error)?;
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
    let messages = backend_embedded::outbox_messages(&common.data_dir)?;
    if messages.is_empty() {
        writeln!(out, "The outbox ({}) is empty.", common.data_dir.join(backend_embedded::OUTBOX_DIR).display())?;
    }
    for path in messages.iter().take(count) {
        let content = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        writeln!(out, "==> {} <==\n{}\n", path.display(), content.replace("\r\n", "\n"))?;
    }
    Ok(())
}
