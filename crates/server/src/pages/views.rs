//! The pages' HTML. No script, no inline style (the CSP forbids both): one
//! stylesheet, labels on every input, errors tied to their field.

use domain::password::PasswordRule;
use domain::{InvitationStatus, UserRecord};
use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::service::InvitationSummary;

/// What every page knows: the app's name, the form token, who is signed in.
pub struct Frame<'a> {
    pub app_name: &'a str,
    pub form_token: &'a str,
    pub user: Option<&'a UserRecord>,
}

/// A failed submission: the API's message, and the field it is about (if one).
#[derive(Debug, Clone)]
pub struct Problem {
    pub field: Option<&'static str>,
    pub message: String,
}

impl Problem {
    fn about(problem: Option<&Problem>, field: &str) -> Option<String> {
        problem.filter(|p| p.field == Some(field)).map(|p| p.message.clone())
    }
}

pub fn page(frame: &Frame<'_>, title: &str, notice: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · " (frame.app_name) }
                link rel="stylesheet" href="/assets/style.css";
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/" { (frame.app_name) }
                    @if let Some(user) = frame.user {
                        form method="post" action="/signout" class="inline" {
                            (token(frame))
                            span class="who" { (user.email.as_str()) }
                            button type="submit" class="link" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    @if let Some(notice) = notice {
                        p class="notice" role="status" { (notice) }
                    }
                    (body)
                }
            }
        }
    }
}

fn token(frame: &Frame<'_>) -> Markup {
    html! { input type="hidden" name="csrf" value=(frame.form_token); }
}

/// A problem not about one field, announced when the page loads.
fn summary(problem: Option<&Problem>) -> Markup {
    html! {
        @if let Some(problem) = problem.filter(|p| p.field.is_none()) {
            p class="error" role="alert" id="form-error" { (problem.message) }
        }
    }
}

/// One labelled input, with its hint and its error tied to it.
struct Input<'a> {
    id: &'a str,
    name: &'a str,
    label: &'a str,
    kind: &'a str,
    value: Option<&'a str>,
    autocomplete: &'a str,
    hint: Option<Markup>,
    readonly: bool,
    required: bool,
}

impl<'a> Input<'a> {
    fn new(id: &'a str, label: &'a str, kind: &'a str, autocomplete: &'a str) -> Self {
        Self { id, name: id, label, kind, value: None, autocomplete, hint: None, readonly: false, required: true }
    }

    fn named(mut self, name: &'a str) -> Self {
        self.name = name;
        self
    }

    fn value(mut self, value: Option<&'a str>) -> Self {
        self.value = value;
        self
    }

    fn hint(mut self, hint: Markup) -> Self {
        self.hint = Some(hint);
        self
    }

    fn readonly(mut self, readonly: bool) -> Self {
        self.readonly = readonly;
        self
    }

    fn render(self, problem: Option<&Problem>) -> Markup {
        let error = Problem::about(problem, self.name);
        let hint_id = format!("{}-hint", self.id);
        let error_id = format!("{}-error", self.id);
        let mut described = Vec::new();
        if self.hint.is_some() {
            described.push(hint_id.as_str());
        }
        if error.is_some() {
            described.push(error_id.as_str());
        }
        let described = (!described.is_empty()).then(|| described.join(" "));
        html! {
            div class="field" {
                label for=(self.id) { (self.label) }
                @if let Some(hint) = &self.hint { div class="hint" id=(hint_id) { (hint) } }
                @if let Some(error) = &error { p class="field-error" id=(error_id) { (error) } }
                input id=(self.id) name=(self.name) type=(self.kind) autocomplete=(self.autocomplete)
                    value=[self.value] readonly[self.readonly] required[self.required]
                    aria-invalid=[error.as_ref().map(|_| "true")] aria-describedby=[described];
            }
        }
    }
}

fn rules_hint(rules: &[PasswordRule]) -> Markup {
    html! {
        "Your password needs:"
        ul class="rules" { @for rule in rules { li { (rule.to_string()) } } }
    }
}

pub struct SignUpView<'a> {
    pub email: Option<&'a str>,
    /// The email came with the invitation link: shown, not editable.
    pub email_fixed: bool,
    pub code: Option<&'a str>,
    pub code_required: bool,
    pub rules: &'a [PasswordRule],
}

pub fn sign_up(view: &SignUpView<'_>, problem: Option<&Problem>, frame: &Frame<'_>) -> Markup {
    let code_label = if view.code_required { "Access code" } else { "Access code (if you were invited)" };
    let mut code = Input::new("code", code_label, "text", "one-time-code").value(view.code);
    code.required = view.code_required;
    html! {
        p { "Choose a password to create your account." }
        (summary(problem))
        form method="post" action="/signup" novalidate {
            (token(frame))
            (Input::new("email", "Email", "email", "username").value(view.email).readonly(view.email_fixed)
                .hint(html! { @if view.email_fixed { "The address your invitation was sent to." } })
                .render(problem))
            (code.render(problem))
            (Input::new("password", "Password", "password", "new-password").hint(rules_hint(view.rules)).render(problem))
            button type="submit" { "Create account" }
        }
        p class="aside" { "Already have an account? " a href="/signin" { "Sign in" } }
    }
}

pub fn sign_in(email: Option<&str>, problem: Option<&Problem>, frame: &Frame<'_>) -> Markup {
    html! {
        (summary(problem))
        form method="post" action="/signin" novalidate {
            (token(frame))
            (Input::new("email", "Email", "email", "username").value(email).render(problem))
            (Input::new("password", "Password", "password", "current-password").render(problem))
            button type="submit" { "Sign in" }
        }
        p class="aside" { a href="/forgot-password" { "Forgot your password?" } }
    }
}

pub fn forgot_password(email: Option<&str>, problem: Option<&Problem>, frame: &Frame<'_>) -> Markup {
    html! {
        p { "Enter your account's email address and we will send you a code to choose a new password." }
        (summary(problem))
        form method="post" action="/forgot-password" novalidate {
            (token(frame))
            (Input::new("email", "Email", "email", "username").value(email).render(problem))
            button type="submit" { "Send me a code" }
        }
        p class="aside" { "Have a code already? " a href="/reset-password" { "Enter it" } }
    }
}

pub fn reset_password(
    email: Option<&str>,
    code: Option<&str>,
    rules: &[PasswordRule],
    problem: Option<&Problem>,
    frame: &Frame<'_>,
) -> Markup {
    html! {
        (summary(problem))
        form method="post" action="/reset-password" novalidate {
            (token(frame))
            (Input::new("email", "Email", "email", "username").value(email).render(problem))
            (Input::new("code", "Code from the email", "text", "one-time-code").value(code).render(problem))
            (Input::new("password", "New password", "password", "new-password").hint(rules_hint(rules)).render(problem))
            button type="submit" { "Set new password" }
        }
    }
}

pub fn request_access(email: Option<&str>, problem: Option<&Problem>, frame: &Frame<'_>) -> Markup {
    html! {
        p { "Sign-up is by invitation. Leave your email address and we will let you know when there is a place for you." }
        (summary(problem))
        form method="post" action="/request-access" novalidate {
            (token(frame))
            (Input::new("email", "Email", "email", "email").value(email).render(problem))
            button type="submit" { "Ask for an invitation" }
        }
    }
}

pub fn confirm(email: Option<&str>, code: Option<&str>, problem: Option<&Problem>, frame: &Frame<'_>) -> Markup {
    html! {
        p { "Enter the code we emailed you to finish signing up." }
        (summary(problem))
        form method="post" action="/confirm" novalidate {
            (token(frame))
            (Input::new("email", "Email", "email", "username").value(email).render(problem))
            (Input::new("code", "Confirmation code", "text", "one-time-code").value(code).render(problem))
            button type="submit" { "Confirm" }
        }
    }
}

/// Who invited the person, as they should read it.
pub enum InvitedBy {
    Nobody,
    Operator,
    User(String),
    FormerUser,
}

pub struct AccountView<'a> {
    pub user: &'a UserRecord,
    pub invited_by: InvitedBy,
    pub invites_remaining: u32,
    pub invitations: &'a [InvitationSummary],
    pub rules: &'a [PasswordRule],
    pub app_name: &'a str,
}

/// Which of the account page's forms a problem came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountForm {
    Invite,
    Invitations,
    Password,
    Delete,
}

fn date(at: OffsetDateTime) -> String {
    at.date().to_string()
}

pub fn account(view: &AccountView<'_>, problem: Option<(AccountForm, &Problem)>, frame: &Frame<'_>) -> Markup {
    let about = |form: AccountForm| problem.filter(|(f, _)| *f == form).map(|(_, p)| p);
    html! {
        section aria-labelledby="you" {
            h2 id="you" { "You" }
            dl class="facts" {
                dt { "Email" } dd { (view.user.email.as_str()) }
                dt { "Invited by" }
                dd {
                    @match &view.invited_by {
                        InvitedBy::Nobody => "Nobody: you signed up yourself",
                        InvitedBy::Operator => { "The team behind " (view.app_name) }
                        InvitedBy::User(email) => (email),
                        InvitedBy::FormerUser => "Someone who has since deleted their account",
                    }
                }
                dt { "Member since" } dd { time datetime=(view.user.created_at.format(&Rfc3339).unwrap_or_default()) { (date(view.user.created_at)) } }
                dt { "Invitations left" } dd { (view.invites_remaining) }
            }
        }
        section aria-labelledby="invite" {
            h2 id="invite" { "Invite a friend" }
            @if view.invites_remaining == 0 {
                p { "You have no invitations left." }
            }
            (summary(about(AccountForm::Invite)))
            form method="post" action="/account/invite" novalidate {
                (token(frame))
                (Input::new("invitee", "Their email address", "email", "off").named("email").render(about(AccountForm::Invite)))
                button type="submit" { "Send invitation" }
            }
        }
        section aria-labelledby="sent" {
            h2 id="sent" { "Invitations you sent" }
            (summary(about(AccountForm::Invitations)))
            @if view.invitations.is_empty() {
                p { "None yet." }
            } @else {
                div class="table" {
                    table {
                        thead { tr { th scope="col" { "Email" } th scope="col" { "Status" } th scope="col" { "Sent" } th scope="col" { span class="visually-hidden" { "Actions" } } } }
                        tbody {
                            @for invitation in view.invitations {
                                tr {
                                    td { (invitation.email.as_str()) }
                                    td { span class=(format!("status {}", invitation.status.as_str())) { (status_label(invitation.status)) } }
                                    td { (date(invitation.created_at)) }
                                    td class="actions" {
                                        @if invitation.status == InvitationStatus::Pending {
                                            form method="post" action=(format!("/account/invitations/{}/resend", invitation.id.as_str())) class="inline" {
                                                (token(frame))
                                                button type="submit" class="secondary" aria-label=(format!("Resend the invitation to {}", invitation.email.as_str())) { "Resend" }
                                            }
                                            form method="post" action=(format!("/account/invitations/{}/revoke", invitation.id.as_str())) class="inline" {
                                                (token(frame))
                                                button type="submit" class="secondary" aria-label=(format!("Revoke the invitation to {}", invitation.email.as_str())) { "Revoke" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="password-heading" {
            h2 id="password-heading" { "Change password" }
            (summary(about(AccountForm::Password)))
            form method="post" action="/account/password" novalidate {
                (token(frame))
                (Input::new("current-password", "Current password", "password", "current-password").named("previous_password").render(about(AccountForm::Password)))
                (Input::new("new-password", "New password", "password", "new-password").named("password").hint(rules_hint(view.rules)).render(about(AccountForm::Password)))
                button type="submit" { "Change password" }
            }
        }
        section aria-labelledby="sessions" {
            h2 id="sessions" { "Sessions" }
            p { "Signed in on a device you no longer use? End every session, this one included." }
            form method="post" action="/account/sign-out-everywhere" {
                (token(frame))
                button type="submit" class="secondary" { "Sign out everywhere" }
            }
        }
        section aria-labelledby="delete" {
            h2 id="delete" { "Delete account" }
            p { "Your account goes for good, and invitations you sent that nobody used are revoked." }
            (summary(about(AccountForm::Delete)))
            form method="post" action="/account/delete" novalidate {
                (token(frame))
                (Input::new("delete-password", "Your password, to confirm", "password", "current-password").named("password").render(about(AccountForm::Delete)))
                button type="submit" class="danger" { "Delete my account" }
            }
        }
    }
}

fn status_label(status: InvitationStatus) -> &'static str {
    match status {
        InvitationStatus::Pending => "Waiting",
        InvitationStatus::Redeemed => "Signed up",
        InvitationStatus::Revoked => "Revoked",
        InvitationStatus::Expired => "Expired",
    }
}

/// A page that only explains (a refused form, something not found).
pub fn message(text: &str, next: (&str, &str)) -> Markup {
    html! {
        p { (text) }
        p { a href=(next.0) { (next.1) } }
    }
}
