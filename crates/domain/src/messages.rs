//! The emails invitegate sends. Both backends deliver exactly these.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{AccessCode, Email, OutgoingEmail};

/// The sign-up page's address with the email and code filled in.
pub fn sign_up_link(public_url: &str, to: &Email, code: &AccessCode) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("email", to.as_str())
        .append_pair("code", &code.expose_grouped())
        .finish();
    format!("{}/signup?{query}", public_url.trim_end_matches('/'))
}

pub fn invitation(public_url: &str, to: &Email, code: &AccessCode, expires_at: OffsetDateTime) -> OutgoingEmail {
    let grouped = code.expose_grouped();
    let link = sign_up_link(public_url, to, code);
    let expires = expires_at.format(&Rfc3339).unwrap_or_else(|_| expires_at.to_string());
    OutgoingEmail {
        to: to.clone(),
        subject: "You're invited".to_owned(),
        text_body: format!(
            "You have been invited to sign up.\n\n\
             Your access code: {grouped}\n\n\
             Sign up here: {link}\n\n\
             The code works once, for {to} only, until {expires}.\n\
             If you did not expect this email you can ignore it.\n"
        ),
    }
}

pub fn confirmation_code(to: &Email, code: &str) -> OutgoingEmail {
    OutgoingEmail {
        to: to.clone(),
        subject: "Your confirmation code".to_owned(),
        text_body: format!(
            "Your confirmation code is {code}\n\n\
             Enter it to finish signing up. It expires in 24 hours.\n\
             If you did not sign up you can ignore this email.\n"
        ),
    }
}

/// A password-recovery code (embedded backend; Cognito sends its own).
pub fn recovery_code(to: &Email, code: &str) -> OutgoingEmail {
    OutgoingEmail {
        to: to.clone(),
        subject: "Your password reset code".to_owned(),
        text_body: format!(
            "Your password reset code is {code}\n\n\
             Enter it with a new password to get back into your account. It expires in 1 hour\n\
             and works once.\n\
             If you did not ask to reset your password you can ignore this email: your\n\
             password has not changed.\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn invitation_contains_code_and_link() {
        let to = Email::parse("a+b@example.com").unwrap();
        let code = AccessCode::parse("ABCD-EFGH-JKMN-PQRS").unwrap();
        let msg = invitation("http://x:1/", &to, &code, datetime!(2026-01-08 0:00 UTC));
        assert!(msg.text_body.contains("ABCD-EFGH-JKMN-PQRS"));
        assert!(msg.text_body.contains("http://x:1/signup?email=a%2Bb%40example.com&code=ABCD-EFGH-JKMN-PQRS"));
        assert!(!format!("{msg:?}").contains("ABCD"));
    }
}
