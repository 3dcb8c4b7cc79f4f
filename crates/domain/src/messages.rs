//! The emails invitegate sends. Both backends deliver exactly these.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{AccessCode, Email, OutgoingEmail};

/// What the emails are signed with and where their links lead.
#[derive(Debug, Clone)]
pub struct Branding {
    /// In subjects, greetings and page titles (`--app-name`).
    pub app_name: String,
    /// Base of the service's own pages (confirmation, password reset).
    pub public_url: String,
    /// The sign-up page invitation links open: `<public url>/signup` unless
    /// the app hosts its own (`--signup-url`).
    pub signup_url: String,
}

impl Branding {
    pub const DEFAULT_APP_NAME: &'static str = "invitegate";

    pub fn new(app_name: &str, public_url: &str, signup_url: Option<&str>) -> Self {
        let public_url = public_url.trim_end_matches('/').to_owned();
        let signup_url = signup_url.map_or_else(|| format!("{public_url}/signup"), str::to_owned);
        Self { app_name: app_name.to_owned(), public_url, signup_url }
    }

    /// `<public url><path>?email=…&code=…`.
    fn page_link(&self, path: &str, to: &Email, code: &str) -> String {
        with_query(&format!("{}{path}", self.public_url), to, code)
    }
}

/// `base` with the email and code added to its query (which it may already have).
fn with_query(base: &str, to: &Email, code: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("email", to.as_str())
        .append_pair("code", code)
        .finish();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}{query}")
}

/// The sign-up page's address with the email and code filled in.
pub fn sign_up_link(branding: &Branding, to: &Email, code: &AccessCode) -> String {
    with_query(&branding.signup_url, to, &code.expose_grouped())
}

/// The HTML part: the same words as the text part, with the link as a button.
fn html(branding: &Branding, lead: &str, code: (&str, &str), button: (&str, &str), after: &[&str]) -> String {
    let ((code_label, code), (label, link)) = (code, button);
    maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (branding.app_name) } }
            body style="font-family: system-ui, sans-serif; line-height: 1.5; color: #1a1a1a; max-width: 36em; margin: 0 auto; padding: 1em" {
                p { (lead) }
                p { (code_label) " " strong style="font-family: monospace; font-size: 1.2em; letter-spacing: 0.05em" { (code) } }
                p {
                    a href=(link) style="display: inline-block; padding: 0.7em 1.4em; background: #1f5fbf; color: #ffffff; border-radius: 6px; text-decoration: none; font-weight: 600" { (label) }
                }
                @for paragraph in after { p { (paragraph) } }
                p style="font-size: 0.9em; color: #555555" { "Or open this address: " (link) }
            }
        }
    }
    .into_string()
    // Short lines, so the part goes out as plain 7-bit text like the other.
    .replace("</p>", "</p>\n")
}

pub fn invitation(branding: &Branding, to: &Email, code: &AccessCode, expires_at: OffsetDateTime) -> OutgoingEmail {
    let grouped = code.expose_grouped();
    let link = sign_up_link(branding, to, code);
    let expires = expires_at.format(&Rfc3339).unwrap_or_else(|_| expires_at.to_string());
    let app = &branding.app_name;
    let intro = format!("You have been invited to sign up for {app}.");
    let terms = format!("The code works once, for {to} only, until {expires}.");
    let ignore = "If you did not expect this email you can ignore it.";
    OutgoingEmail {
        to: to.clone(),
        subject: format!("You're invited to {app}"),
        text_body: format!(
            "{intro}\n\n\
             Your access code: {grouped}\n\n\
             Sign up here: {link}\n\n\
             {terms}\n\
             {ignore}\n"
        ),
        html_body: Some(html(branding, &intro, ("Your access code:", &grouped), ("Sign up", &link), &[&terms, ignore])),
    }
}

pub fn confirmation_code(branding: &Branding, to: &Email, code: &str) -> OutgoingEmail {
    let link = branding.page_link("/confirm", to, code);
    let app = &branding.app_name;
    let finish = "Enter it to finish signing up. It expires in 24 hours.";
    let ignore = "If you did not sign up you can ignore this email.";
    OutgoingEmail {
        to: to.clone(),
        subject: format!("Your {app} confirmation code"),
        text_body: format!(
            "Your confirmation code is {code}\n\n\
             {finish}\n\
             Confirm here: {link}\n\n\
             {ignore}\n"
        ),
        html_body: Some(html(branding, finish, ("Your confirmation code is", code), ("Confirm", &link), &[ignore])),
    }
}

/// A password-recovery code (embedded backend; Cognito sends its own).
pub fn recovery_code(branding: &Branding, to: &Email, code: &str) -> OutgoingEmail {
    let link = branding.page_link("/reset-password", to, code);
    let app = &branding.app_name;
    let enter = "Enter it with a new password to get back into your account. It expires in 1 hour and works once.";
    let ignore = "If you did not ask to reset your password you can ignore this email: your password has not changed.";
    OutgoingEmail {
        to: to.clone(),
        subject: format!("Your {app} password reset code"),
        text_body: format!(
            "Your password reset code is {code}\n\n\
             Enter it with a new password to get back into your account. It expires in 1 hour\n\
             and works once.\n\
             Reset it here: {link}\n\n\
             If you did not ask to reset your password you can ignore this email: your\n\
             password has not changed.\n"
        ),
        html_body: Some(html(
            branding,
            enter,
            ("Your password reset code is", code),
            ("Choose a new password", &link),
            &[ignore],
        )),
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
        let branding = Branding::new("Acme <beta>", "http://x:1/", None);
        let msg = invitation(&branding, &to, &code, datetime!(2026-01-08 0:00 UTC));
        assert_eq!(msg.subject, "You're invited to Acme <beta>");
        assert!(msg.text_body.contains("ABCD-EFGH-JKMN-PQRS"));
        assert!(msg.text_body.contains("http://x:1/signup?email=a%2Bb%40example.com&code=ABCD-EFGH-JKMN-PQRS"));
        let html = msg.html_body.as_deref().unwrap();
        // The link as a button, its `&` escaped; the app's name escaped too.
        assert!(html.contains(r#"href="http://x:1/signup?email=a%2Bb%40example.com&amp;code=ABCD-EFGH-JKMN-PQRS""#));
        assert!(html.contains("Acme &lt;beta&gt;") && !html.contains("<beta>"));
        assert!(!format!("{msg:?}").contains("ABCD"));
    }

    #[test]
    fn links_go_to_the_apps_own_sign_up_page_when_it_has_one() {
        let to = Email::parse("a@example.com").unwrap();
        let code = AccessCode::parse("ABCD-EFGH-JKMN-PQRS").unwrap();
        let own = Branding::new("Acme", "https://auth.acme.test", Some("https://acme.test/join?src=mail"));
        assert_eq!(
            sign_up_link(&own, &to, &code),
            "https://acme.test/join?src=mail&email=a%40example.com&code=ABCD-EFGH-JKMN-PQRS"
        );
        let recovery = recovery_code(&own, &to, "123456");
        assert!(recovery.text_body.contains("https://auth.acme.test/reset-password?email=a%40example.com&code=123456"));
    }
}
