//! The Cognito PreSignUp trigger: confirms sign-ups that hold a reserved
//! invitation, and only those. It runs the same decision as the embedded pool
//! ([`domain::presignup::decide`]); this file only translates Cognito's event.

use std::future::Future;

use aws_lambda_events::event::cognito::{CognitoEventUserPoolsPreSignup, CognitoEventUserPoolsPreSignupTriggerSource};
use domain::presignup::{PreSignUpDecision, PreSignUpFacts, SignUpPolicy, Trigger, decide};
use domain::{Email, Error};

/// Why a sign-up was refused; Cognito shows the message as `UserLambdaValidationException`.
#[derive(Debug)]
pub struct Rejected(pub &'static str);

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Rejected {}

fn trigger(source: Option<&CognitoEventUserPoolsPreSignupTriggerSource>) -> Trigger {
    match source {
        Some(CognitoEventUserPoolsPreSignupTriggerSource::SignUp) => Trigger::SignUp,
        Some(CognitoEventUserPoolsPreSignupTriggerSource::AdminCreateUser) => Trigger::AdminCreateUser,
        // Federated sign-in, or anything newer than this code: not ours to confirm.
        _ => Trigger::ExternalProvider,
    }
}

/// Decides one event. `reserved` answers whether the email's invitation is
/// reserved by *this* sign-up, given the reservation nonce the SignUp carried
/// (a DynamoDB read in production).
pub async fn handle<F, Fut>(
    mut event: CognitoEventUserPoolsPreSignup,
    policy: SignUpPolicy,
    reserved: F,
) -> Result<CognitoEventUserPoolsPreSignup, Rejected>
where
    F: FnOnce(Email, Option<String>) -> Fut,
    Fut: Future<Output = Result<bool, Error>>,
{
    let trigger = trigger(event.cognito_event_user_pools_header.trigger_source.as_ref());
    let attributes = &event.request.user_attributes;
    let email = attributes.get("email").and_then(|raw| Email::parse(raw).ok());
    let has_phone = attributes.get("phone_number").is_some_and(|p| !p.is_empty());
    let nonce = attributes.get(backend_aws::RESERVATION_ATTRIBUTE).cloned();
    let invitation_reserved = match (&email, trigger) {
        (Some(email), Trigger::SignUp) => reserved(email.clone(), nonce).await.map_err(|e| {
            // Logged with its chain; Cognito only learns that the trigger failed.
            tracing::error!(error = ?e, "could not look the invitation up");
            Rejected(domain::presignup::TRIGGER_UNAVAILABLE)
        })?,
        _ => false,
    };
    let decision = decide(&PreSignUpFacts {
        trigger,
        has_email: email.is_some(),
        has_phone,
        phone_proven: false,
        invitation_reserved,
        policy,
    });
    tracing::info!(?decision, trigger = ?trigger, "pre-sign-up decision");
    match decision {
        PreSignUpDecision::Confirm { verify_email, verify_phone } => {
            event.response.auto_confirm_user = true;
            event.response.auto_verify_email = verify_email;
            event.response.auto_verify_phone = verify_phone;
        }
        PreSignUpDecision::RequireEmailConfirmation => {
            event.response.auto_confirm_user = false;
            event.response.auto_verify_email = false;
            event.response.auto_verify_phone = false;
        }
        PreSignUpDecision::Reject { message } => return Err(Rejected(message)),
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(fixture: &str) -> CognitoEventUserPoolsPreSignup {
        let path = format!("{}/tests/fixtures/{fixture}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    async fn run(
        fixture: &str,
        policy: SignUpPolicy,
        reserved: bool,
    ) -> Result<CognitoEventUserPoolsPreSignup, String> {
        handle(event(fixture), policy, |_, _| async move { Ok(reserved) }).await.map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn a_reserved_invitation_confirms_and_verifies_the_email_but_not_the_unproven_phone() {
        for policy in [SignUpPolicy::InviteOnly, SignUpPolicy::Open] {
            let out = run("aws-docs-signup.json", policy, true).await.unwrap();
            assert!(out.response.auto_confirm_user);
            assert!(out.response.auto_verify_email);
            assert!(!out.response.auto_verify_phone, "the phone number was never proven");
        }
    }

    #[tokio::test]
    async fn without_an_invitation_invite_only_rejects_and_open_leaves_unconfirmed() {
        let err = run("aws-docs-signup.json", SignUpPolicy::InviteOnly, false).await.unwrap_err();
        assert_eq!(err, "Sign-up is by invitation only");
        let out = run("aws-docs-signup.json", SignUpPolicy::Open, false).await.unwrap();
        assert!(!out.response.auto_confirm_user && !out.response.auto_verify_email && !out.response.auto_verify_phone);
    }

    #[tokio::test]
    async fn the_email_looked_up_is_the_one_signing_up() {
        let looked_up = std::sync::Mutex::new(None);
        handle(event("aws-docs-signup.json"), SignUpPolicy::Open, |email, _| {
            *looked_up.lock().unwrap() = Some(email);
            async { Ok(false) }
        })
        .await
        .unwrap();
        assert_eq!(looked_up.into_inner().unwrap().unwrap().as_str(), "testuser@example.com");
    }

    #[tokio::test]
    async fn the_nonce_the_sign_up_carried_is_the_one_checked() {
        let mut carrying = event("aws-docs-signup.json");
        carrying.request.user_attributes.insert(backend_aws::RESERVATION_ATTRIBUTE.into(), "N0NCE".into());
        let seen = std::sync::Mutex::new(None);
        handle(carrying, SignUpPolicy::InviteOnly, |_, nonce| {
            *seen.lock().unwrap() = Some(nonce);
            async { Ok(true) }
        })
        .await
        .unwrap();
        assert_eq!(seen.into_inner().unwrap(), Some(Some("N0NCE".to_owned())));
    }

    #[tokio::test]
    async fn other_triggers_and_missing_emails_are_never_confirmed() {
        let admin = run("aws-docs-admin-create-user.json", SignUpPolicy::InviteOnly, true).await.unwrap();
        assert!(!admin.response.auto_confirm_user);
        assert!(run("aws-docs-external-provider.json", SignUpPolicy::Open, true).await.is_err());
        let err = run("emulator-signup-without-email.json", SignUpPolicy::Open, true).await.unwrap_err();
        assert_eq!(err, "An email address is required");
    }

    #[tokio::test]
    async fn a_failed_lookup_rejects_without_detail() {
        let result = handle(event("aws-docs-signup.json"), SignUpPolicy::Open, |_, _| async {
            Err(Error::unexpected("DynamoDB is down at arn:aws:dynamodb:secret-table"))
        })
        .await;
        let message = result.unwrap_err().to_string();
        assert!(!message.contains("arn:"), "{message}");
    }
}
