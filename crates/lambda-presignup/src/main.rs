//! A thin `main`: configuration and SDK clients built once, then the runtime loop.

use std::sync::Arc;

use anyhow::Context;
use backend_aws::{ENV_POLICY, ENV_TABLE};
use domain::SignUpPolicy;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt().with_ansi(false).without_time().with_target(false).init();
    let table = std::env::var(ENV_TABLE).with_context(|| format!("{ENV_TABLE} must name the invitation table"))?;
    let policy = match std::env::var(ENV_POLICY) {
        Ok(raw) => {
            SignUpPolicy::parse(&raw).with_context(|| format!("{ENV_POLICY} {raw:?}: expected invite_only or open"))?
        }
        Err(_) => SignUpPolicy::InviteOnly,
    };
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let table: Arc<str> = table.into();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        let (dynamo, table) = (dynamo.clone(), Arc::clone(&table));
        // Cognito's own (real) time is the trigger's clock: the lease was stamped against it.
        #[allow(clippy::disallowed_methods)]
        let now = time::OffsetDateTime::now_utc();
        async move {
            lambda_presignup::handle(event.payload, policy, |email, nonce| async move {
                backend_aws::invitation_reserved_for(&dynamo, &table, &email, nonce.as_deref(), now).await
            })
            .await
            // Cognito relays the message to the caller as UserLambdaValidationException.
            .map_err(|rejected| Diagnostic { error_type: "SignUpRejected".into(), error_message: rejected.to_string() })
        }
    }))
    .await
}
