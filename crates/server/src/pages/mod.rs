//! Pages for people: sign-up from the invitation link, sign-in, the account
//! page, password recovery, asking for an invitation, confirming an address.
//!
//! Each handler parses the form, calls the same service method as the JSON
//! API and renders what it returns; no rule lives here. A `GET` or `HEAD`
//! never changes anything (mail scanners fetch every link in a message), so
//! codes in links are only used by the `POST` of the form they fill in.

mod browser;
mod views;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use domain::{Email, Error, InvitationId, Inviter, SecretString, SignUpPolicy, UserRecord};
use maud::Markup;
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub use browser::CookiePolicy;
use views::{AccountForm, Frame, InvitedBy, Problem};

use crate::error::ApiError;
use crate::service::{Actor, InvitationRef, SignUpForm, UserRef};
use crate::startup::AppState;
use crate::wire::ErrorCode;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/signup", get(sign_up_page).post(sign_up))
        .route("/signin", get(sign_in_page).post(sign_in))
        .route("/signout", post(sign_out))
        .route("/account", get(account_page))
        .route("/account/invite", post(invite))
        .route("/account/invitations/{id}/resend", post(resend))
        .route("/account/invitations/{id}/revoke", post(revoke))
        .route("/account/password", post(change_password))
        .route("/account/sign-out-everywhere", post(sign_out_everywhere))
        .route("/account/delete", post(delete_account))
        .route("/forgot-password", get(forgot_password_page).post(forgot_password))
        .route("/reset-password", get(reset_password_page).post(reset_password))
        .route("/request-access", get(request_access_page).post(request_access))
        .route("/confirm", get(confirm_page).post(confirm))
        .route("/assets/style.css", get(stylesheet))
        .layer(axum::middleware::map_response(page_headers))
}

/// On every page: nothing from elsewhere runs or frames it, nothing leaks
/// the address (which may hold a code), nothing is cached.
async fn page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../assets/style.css"),
    )
}

// ----- Per request: the browser's cookies, the form token, the session -----

/// A browser's visit: its form secret (made if it had none) and the cookies to set.
struct Visit {
    form_token: String,
    set_cookies: Vec<HeaderValue>,
}

impl Visit {
    fn new(state: &AppState, headers: &HeaderMap) -> Self {
        let (secret, set_cookies) = match state.cookies.form_secret(headers) {
            Some(secret) => (secret, vec![]),
            None => {
                let (secret, cookie) = state.cookies.new_form_secret();
                (secret, vec![cookie])
            }
        };
        Self { form_token: state.service.form_token(&secret), set_cookies }
    }

    fn frame<'a>(&'a self, state: &'a AppState, user: Option<&'a UserRecord>) -> Frame<'a> {
        Frame { app_name: &state.service.branding().app_name, form_token: &self.form_token, user }
    }

    /// A signed-out page: `body` is drawn in the frame that holds this visit's form token.
    fn show(
        self,
        state: &AppState,
        status: StatusCode,
        title: &str,
        notice: Option<&str>,
        body: impl FnOnce(&Frame<'_>) -> Markup,
    ) -> Response {
        let markup = {
            let frame = self.frame(state, None);
            views::page(&frame, title, notice, body(&frame))
        };
        self.render(status, markup)
    }

    fn render(self, status: StatusCode, markup: Markup) -> Response {
        with_cookies((status, Html(markup.into_string())).into_response(), self.set_cookies)
    }
}

fn with_cookies(mut response: Response, cookies: impl IntoIterator<Item = HeaderValue>) -> Response {
    for cookie in cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// `303 See Other`: after a form, the browser fetches the next page with GET.
fn see_other(to: &str, cookies: impl IntoIterator<Item = HeaderValue>) -> Response {
    with_cookies(Redirect::to(to).into_response(), cookies)
}

/// A signed-in browser: its account as read now, and an access token made
/// from its session for this request.
#[derive(Clone)]
struct Session {
    user: UserRecord,
    access_token: SecretString,
}

enum SessionState {
    SignedIn(Session),
    /// No cookie, or one whose session has ended (signed out, expired, reset).
    SignedOut {
        stale_cookie: bool,
    },
}

async fn session(state: &AppState, headers: &HeaderMap) -> Result<SessionState, Error> {
    let Some(refresh_token) = state.cookies.session(headers) else {
        return Ok(SessionState::SignedOut { stale_cookie: false });
    };
    let ended = |e: &Error| matches!(e, Error::NotAuthorized | Error::InvalidToken | Error::UserDisabled);
    let tokens = match state.service.refresh(&refresh_token).await {
        Ok(tokens) => tokens,
        Err(e) if ended(&e) => return Ok(SessionState::SignedOut { stale_cookie: true }),
        Err(e) => return Err(e),
    };
    match state.service.authenticate(&tokens.access_token).await {
        Ok(user) => Ok(SessionState::SignedIn(Session { user, access_token: tokens.access_token })),
        Err(e) if ended(&e) => Ok(SessionState::SignedOut { stale_cookie: true }),
        Err(e) => Err(e),
    }
}

/// The session, or the way to the sign-in page (forgetting a dead cookie).
async fn require_session(state: &AppState, headers: &HeaderMap) -> Result<Session, Response> {
    match session(state, headers).await {
        Ok(SessionState::SignedIn(session)) => Ok(session),
        Ok(SessionState::SignedOut { stale_cookie }) => {
            let forget = stale_cookie.then(|| state.cookies.end_session());
            Err(see_other("/signin", forget))
        }
        Err(e) => Err(failed(state, e)),
    }
}

/// A form a page posted, accepted only from our own pages: the browser's
/// headers must not name another site, and the form must carry the token
/// made for this browser's secret (see `browser`).
struct PageForm<T>(T);

trait HasFormToken {
    fn form_token(&self) -> &str;
}

impl<T: DeserializeOwned + HasFormToken + Send> FromRequest<AppState> for PageForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let axum::Form(form) =
            axum::Form::<T>::from_request(req, state).await.map_err(|_| PageError::new(state, Failure::BadForm))?;
        let from_our_page = state.cookies.same_site_request(&headers)
            && state
                .cookies
                .form_secret(&headers)
                .is_some_and(|secret| state.service.form_token_matches(&secret, form.form_token()));
        if !from_our_page {
            tracing::warn!("a form post without this browser's form token was refused");
            return Err(PageError::new(state, Failure::Forgery));
        }
        Ok(Self(form))
    }
}

macro_rules! form {
    ($name:ident { $($field:ident),* $(,)? }) => {
        #[derive(Deserialize)]
        struct $name {
            #[serde(default)]
            csrf: String,
            $(#[serde(default)] $field: String,)*
        }
        impl HasFormToken for $name {
            fn form_token(&self) -> &str {
                &self.csrf
            }
        }
    };
}

form!(SignUpFields { email, code, password });
form!(SignInFields { email, password });
form!(EmailFields { email });
form!(ResetFields { email, code, password });
form!(ConfirmFields { email, code });
form!(ChangePasswordFields { previous_password, password });
form!(PasswordFields { password });
form!(NoFields {});

/// A page saying why it could not do what was asked, when no form is shown again.
struct PageError {
    failure: Failure,
    app_name: String,
}

impl PageError {
    fn new(state: &AppState, failure: Failure) -> Self {
        Self { failure, app_name: state.service.branding().app_name.clone() }
    }
}

/// The error page for a service error.
fn failed(state: &AppState, e: Error) -> Response {
    PageError::new(state, Failure::Service(e)).into_response()
}

enum Failure {
    /// A form from elsewhere, or without its token.
    Forgery,
    /// A body that is not a form.
    BadForm,
    Service(Error),
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, text) = match self.failure {
            Failure::Forgery => (
                StatusCode::FORBIDDEN,
                "This form can't be sent".to_owned(),
                "It came from another site, or from a page that is too old. Go back, reload the page and try again. (Cookies must be on.)".to_owned(),
            ),
            Failure::BadForm => {
                (StatusCode::BAD_REQUEST, "This form can't be sent".to_owned(), "Its contents were not understood.".to_owned())
            }
            Failure::Service(e) => {
                // The API's handling: unexpected causes are logged, never shown.
                let status = ApiError(e).into_response().status();
                let text = if status.is_server_error() {
                    "Something went wrong on our side. Try again in a moment.".to_owned()
                } else {
                    "That did not work.".to_owned()
                };
                (status, "Something went wrong".to_owned(), text)
            }
        };
        let body = views::page(
            &Frame { app_name: &self.app_name, form_token: "", user: None },
            &title,
            None,
            views::message(&text, ("/", "Back to the start")),
        );
        (status, Html(body.into_string())).into_response()
    }
}

/// A service error as a form shows it: the API's status and wording, next to
/// the field it is about. Unexpected errors are logged and shown without detail.
fn problem(error: Error) -> (StatusCode, Problem) {
    let field = match &error {
        Error::InvalidEmail(_) | Error::UserExists | Error::AlreadyInvited => Some("email"),
        Error::InvalidPassword(_) => Some("password"),
        Error::InvalidAccessCode
        | Error::InvitationExpired
        | Error::InvitationRevoked
        | Error::InvitationRedeemed
        | Error::InvalidConfirmationCode => Some("code"),
        _ => None,
    };
    let status = ErrorCode::from(&error).status();
    if let Error::Unexpected(cause) = &error {
        tracing::error!(error = format!("{cause:#}"), "unexpected error");
    }
    (status, Problem { field, message: error.to_string() })
}

/// A required field left blank, named.
fn blank(field: &'static str, what: &str) -> (StatusCode, Problem) {
    (StatusCode::BAD_REQUEST, Problem { field: Some(field), message: format!("Enter {what}") })
}

fn filled(value: &str) -> Option<&str> {
    let value = value.trim();
    (!value.is_empty()).then_some(value)
}

#[derive(Deserialize, Default)]
struct Prefill {
    email: Option<String>,
    code: Option<String>,
    notice: Option<String>,
}

/// The confirmations a redirect may ask a page to show (by key, so no text comes from the address).
fn notice(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "signed-out" => "You are signed out.",
        "signed-out-everywhere" => "You are signed out on every device.",
        "password-reset" => "Your password is changed. Sign in with the new one.",
        "confirmed" => "Your address is confirmed. Sign in to continue.",
        "deleted" => "Your account is deleted.",
        "code-sent" => "If an account uses that address, a code is on its way. It works for an hour.",
        "confirmation-sent" => "Your account is made. We emailed you a code to confirm your address.",
        "requested" => "Thanks. If there is a place for you, an invitation will come by email.",
        "invited" => "Invitation sent.",
        "resent" => "A new code was sent; the old one no longer works.",
        "revoked" => "Invitation revoked.",
        "password-changed" => "Your password is changed.",
        "signed-up" => "Welcome! Your account is ready.",
        _ => return None,
    })
}

fn query_with_email(path: &str, email: &str, notice: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("email", email)
        .append_pair("notice", notice)
        .finish();
    format!("{path}?{query}")
}

// ----- Pages -----

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match session(&state, &headers).await {
        Ok(SessionState::SignedIn(_)) => see_other("/account", None),
        Ok(SessionState::SignedOut { stale_cookie }) => {
            see_other("/signin", stale_cookie.then(|| state.cookies.end_session()))
        }
        Err(e) => failed(&state, e),
    }
}

fn sign_up_view<'a>(
    state: &'a AppState,
    email: Option<&'a str>,
    email_fixed: bool,
    code: Option<&'a str>,
    rules: &'a [domain::password::PasswordRule],
) -> views::SignUpView<'a> {
    views::SignUpView {
        email,
        email_fixed,
        code,
        code_required: state.service.settings().policy == SignUpPolicy::InviteOnly,
        rules,
    }
}

async fn sign_up_page(State(state): State<AppState>, headers: HeaderMap, Query(prefill): Query<Prefill>) -> Response {
    let visit = Visit::new(&state, &headers);
    let rules = state.service.settings().password_policy.rules();
    let email = prefill.email.as_deref().and_then(filled);
    let view = sign_up_view(&state, email, email.is_some(), prefill.code.as_deref().and_then(filled), &rules);
    visit.show(&state, StatusCode::OK, "Create your account", None, |frame| views::sign_up(&view, None, frame))
}

async fn sign_up(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(form): PageForm<SignUpFields>,
) -> Response {
    let outcome = sign_up_and_sign_in(&state, &form, client).await;
    match outcome {
        Ok(Some(refresh_token)) => {
            see_other("/account?notice=signed-up", [state.cookies.start_session(&refresh_token)])
        }
        // Open mode: the address is confirmed by an emailed code first.
        Ok(None) => see_other(&query_with_email("/confirm", form.email.trim(), "confirmation-sent"), None),
        Err((status, problem)) => {
            let visit = Visit::new(&state, &headers);
            let rules = state.service.settings().password_policy.rules();
            // The email stays fixed if it was: a field it names is the only reason to edit it.
            let email_fixed = filled(&form.email).is_some() && problem.field != Some("email");
            let view = sign_up_view(&state, filled(&form.email), email_fixed, filled(&form.code), &rules);
            visit
                .show(&state, status, "Create your account", None, |frame| views::sign_up(&view, Some(&problem), frame))
        }
    }
}

/// Signs up, then in with the same password; `None` when the account must
/// first be confirmed.
async fn sign_up_and_sign_in(
    state: &AppState,
    form: &SignUpFields,
    client: SocketAddr,
) -> Result<Option<SecretString>, (StatusCode, Problem)> {
    let email = filled(&form.email).ok_or_else(|| blank("email", "your email address"))?;
    let email = Email::parse(email).map_err(|e| problem(e.into()))?;
    if form.password.is_empty() {
        return Err(blank("password", "a password"));
    }
    let password = SecretString::new(form.password.clone());
    let sign_up = SignUpForm {
        email: email.clone(),
        password: password.clone(),
        access_code: filled(&form.code).map(str::to_owned),
    };
    let outcome = state.service.sign_up(sign_up, client.ip()).await.map_err(problem)?;
    if !outcome.confirmed {
        return Ok(None);
    }
    let tokens = state.service.sign_in(email.as_str(), password, client.ip()).await.map_err(problem)?;
    let refresh = tokens.refresh_token.ok_or_else(|| problem(Error::unexpected("sign-in issued no refresh token")))?;
    Ok(Some(refresh))
}

async fn sign_in_page(State(state): State<AppState>, headers: HeaderMap, Query(prefill): Query<Prefill>) -> Response {
    let visit = Visit::new(&state, &headers);
    visit.show(&state, StatusCode::OK, "Sign in", notice(prefill.notice.as_deref()), |frame| {
        views::sign_in(prefill.email.as_deref().and_then(filled), None, frame)
    })
}

async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(form): PageForm<SignInFields>,
) -> Response {
    let attempt = async {
        let email = filled(&form.email).ok_or_else(|| blank("email", "your email address"))?;
        if form.password.is_empty() {
            return Err(blank("password", "your password"));
        }
        let tokens = state
            .service
            .sign_in(email, SecretString::new(form.password.clone()), client.ip())
            .await
            .map_err(problem)?;
        tokens.refresh_token.ok_or_else(|| problem(Error::unexpected("sign-in issued no refresh token")))
    };
    match attempt.await {
        Ok(refresh) => see_other("/account", [state.cookies.start_session(&refresh)]),
        Err((status, problem)) => {
            let visit = Visit::new(&state, &headers);
            visit.show(&state, status, "Sign in", None, |frame| {
                views::sign_in(filled(&form.email), Some(&problem), frame)
            })
        }
    }
}

async fn sign_out(State(state): State<AppState>, headers: HeaderMap, PageForm(_): PageForm<NoFields>) -> Response {
    if let Some(refresh) = state.cookies.session(&headers)
        && let Err(e) = state.service.sign_out(&refresh).await
        && !matches!(e, Error::NotAuthorized | Error::InvalidToken)
    {
        return failed(&state, e);
    }
    see_other("/signin?notice=signed-out", [state.cookies.end_session()])
}

async fn account_page(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(prefill): Query<Prefill>,
) -> Response {
    let session = match require_session(&state, &headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let page = AccountPage { state: &state, headers: &headers, client };
    page.render(session, notice(prefill.notice.as_deref()), None, StatusCode::OK).await
}

/// The account page for one request.
struct AccountPage<'a> {
    state: &'a AppState,
    headers: &'a HeaderMap,
    client: SocketAddr,
}

impl AccountPage<'_> {
    async fn render(
        &self,
        session: Session,
        notice: Option<&str>,
        problem: Option<(AccountForm, &Problem)>,
        status: StatusCode,
    ) -> Response {
        render_account(self.state, self.headers, user_actor(&session, self.client), session, notice, problem, status)
            .await
    }
}

async fn render_account(
    state: &AppState,
    headers: &HeaderMap,
    actor: Actor,
    session: Session,
    notice: Option<&str>,
    problem: Option<(AccountForm, &Problem)>,
    status: StatusCode,
) -> Response {
    let (profile, invitations) = match tokio::try_join!(
        state.service.profile(session.user.clone()),
        state.service.list_invitations(&actor, None)
    ) {
        Ok(both) => both,
        Err(e) => return failed(state, e),
    };
    let invited_by = match &profile.invited_by {
        None => InvitedBy::Nobody,
        Some(Inviter::Operator) => InvitedBy::Operator,
        Some(Inviter::User(sub)) => match state.service.find_user(&UserRef::Sub(sub.clone())).await {
            Ok(inviter) => InvitedBy::User(inviter.email.as_str().to_owned()),
            Err(Error::NotFound) => InvitedBy::FormerUser,
            Err(e) => return failed(state, e),
        },
    };
    let visit = Visit::new(state, headers);
    let rules = state.service.settings().password_policy.rules();
    let view = views::AccountView {
        user: &profile.user,
        invited_by,
        invites_remaining: profile.invites_remaining,
        invitations: &invitations,
        rules: &rules,
        app_name: &state.service.branding().app_name,
    };
    let markup = {
        let frame = visit.frame(state, Some(&session.user));
        views::page(&frame, "Your account", notice, views::account(&view, problem, &frame))
    };
    visit.render(status, markup)
}

/// Runs an account action for the signed-in browser; on success goes back to
/// the account page with `done` shown, on failure shows it at `form`.
async fn account_action<F, Fut>(
    state: AppState,
    headers: HeaderMap,
    client: SocketAddr,
    form: AccountForm,
    done: &str,
    action: F,
) -> Response
where
    F: FnOnce(AppState, Session) -> Fut,
    Fut: Future<Output = Result<(), (StatusCode, Problem)>>,
{
    let session = match require_session(&state, &headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let again = session.clone();
    match action(state.clone(), session).await {
        Ok(()) => see_other(&format!("/account?notice={done}"), None),
        Err((status, problem)) => {
            let page = AccountPage { state: &state, headers: &headers, client };
            page.render(again, None, Some((form, &problem)), status).await
        }
    }
}

fn user_actor(session: &Session, client: SocketAddr) -> Actor {
    Actor::User { sub: session.user.sub.clone(), client: client.ip() }
}

async fn invite(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(form): PageForm<EmailFields>,
) -> Response {
    account_action(state, headers, client, AccountForm::Invite, "invited", |state, session| async move {
        let email = filled(&form.email).ok_or_else(|| blank("email", "their email address"))?;
        let email = Email::parse(email).map_err(|e| problem(e.into()))?;
        state.service.invite(&user_actor(&session, client), email, None).await.map(drop).map_err(problem)
    })
    .await
}

async fn resend(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    PageForm(_): PageForm<NoFields>,
) -> Response {
    account_action(state, headers, client, AccountForm::Invitations, "resent", |state, session| async move {
        let target = InvitationRef::Id(InvitationId::new(id));
        state.service.resend(&user_actor(&session, client), &target).await.map(drop).map_err(problem)
    })
    .await
}

async fn revoke(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    PageForm(_): PageForm<NoFields>,
) -> Response {
    account_action(state, headers, client, AccountForm::Invitations, "revoked", |state, session| async move {
        let target = InvitationRef::Id(InvitationId::new(id));
        state.service.revoke(&user_actor(&session, client), &target).await.map(drop).map_err(problem)
    })
    .await
}

async fn change_password(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(form): PageForm<ChangePasswordFields>,
) -> Response {
    account_action(state, headers, client, AccountForm::Password, "password-changed", |state, session| async move {
        if form.previous_password.is_empty() {
            return Err(blank("previous_password", "your current password"));
        }
        if form.password.is_empty() {
            return Err(blank("password", "a new password"));
        }
        let previous = SecretString::new(form.previous_password);
        let proposed = SecretString::new(form.password);
        let result =
            state.service.change_password(session.user, session.access_token, previous, proposed, client.ip()).await;
        result.map_err(|e| {
            // A wrong current password is about that field, not the new one.
            let (status, mut problem) = problem(e);
            if problem.field.is_none() && status == StatusCode::UNAUTHORIZED {
                problem = Problem { field: Some("previous_password"), message: "Incorrect password".to_owned() };
            }
            (status, problem)
        })
    })
    .await
}

async fn sign_out_everywhere(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(_): PageForm<NoFields>,
) -> Response {
    let session = match require_session(&state, &headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    match state.service.global_sign_out(session.user).await {
        Ok(()) => see_other("/signin?notice=signed-out-everywhere", [state.cookies.end_session()]),
        Err(e) => failed(&state, e),
    }
}

async fn delete_account(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(form): PageForm<PasswordFields>,
) -> Response {
    let session = match require_session(&state, &headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let result = if form.password.is_empty() {
        Err(blank("password", "your password"))
    } else {
        let password = SecretString::new(form.password);
        state.service.delete_account(session.user.clone(), password, client.ip()).await.map_err(|e| {
            let (status, mut problem) = problem(e);
            if status == StatusCode::UNAUTHORIZED {
                problem.field = Some("password");
                problem.message = "Incorrect password".to_owned();
            }
            (status, problem)
        })
    };
    match result {
        Ok(()) => see_other("/signin?notice=deleted", [state.cookies.end_session()]),
        Err((status, problem)) => {
            let page = AccountPage { state: &state, headers: &headers, client };
            page.render(session, None, Some((AccountForm::Delete, &problem)), status).await
        }
    }
}

async fn forgot_password_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(prefill): Query<Prefill>,
) -> Response {
    let visit = Visit::new(&state, &headers);
    visit.show(&state, StatusCode::OK, "Reset your password", None, |frame| {
        views::forgot_password(prefill.email.as_deref().and_then(filled), None, frame)
    })
}

async fn forgot_password(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(form): PageForm<EmailFields>,
) -> Response {
    let attempt = async {
        let email = filled(&form.email).ok_or_else(|| blank("email", "your email address"))?;
        let email = Email::parse(email).map_err(|e| problem(e.into()))?;
        state.service.forgot_password(email.clone(), client.ip()).await.map_err(problem)?;
        Ok(email)
    };
    match attempt.await {
        Ok(email) => see_other(&query_with_email("/reset-password", email.as_str(), "code-sent"), None),
        Err((status, problem)) => {
            let visit = Visit::new(&state, &headers);
            visit.show(&state, status, "Reset your password", None, |frame| {
                views::forgot_password(filled(&form.email), Some(&problem), frame)
            })
        }
    }
}

async fn reset_password_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(prefill): Query<Prefill>,
) -> Response {
    let visit = Visit::new(&state, &headers);
    let rules = state.service.settings().password_policy.rules();
    let (email, code) = (prefill.email.as_deref().and_then(filled), prefill.code.as_deref().and_then(filled));
    visit.show(&state, StatusCode::OK, "Choose a new password", notice(prefill.notice.as_deref()), |frame| {
        views::reset_password(email, code, &rules, None, frame)
    })
}

async fn reset_password(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(form): PageForm<ResetFields>,
) -> Response {
    let attempt = async {
        let email = filled(&form.email).ok_or_else(|| blank("email", "your email address"))?;
        let email = Email::parse(email).map_err(|e| problem(e.into()))?;
        let code = filled(&form.code).ok_or_else(|| blank("code", "the code from the email"))?;
        if form.password.is_empty() {
            return Err(blank("password", "a new password"));
        }
        let password = SecretString::new(form.password.clone());
        state.service.confirm_forgot_password(email, code.to_owned(), password, client.ip()).await.map_err(|e| {
            // A wrong or used-up recovery code is said about the code field.
            let (status, mut problem) = problem(e);
            if problem.field.is_none() && status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
                problem.field = Some("code");
            }
            (status, problem)
        })
    };
    match attempt.await {
        // Every session ended with the reset, this browser's included.
        Ok(()) => see_other("/signin?notice=password-reset", [state.cookies.end_session()]),
        Err((status, problem)) => {
            let visit = Visit::new(&state, &headers);
            let rules = state.service.settings().password_policy.rules();
            visit.show(&state, status, "Choose a new password", None, |frame| {
                views::reset_password(filled(&form.email), filled(&form.code), &rules, Some(&problem), frame)
            })
        }
    }
}

fn not_found(state: &AppState) -> Response {
    failed(state, Error::NotFound)
}

async fn request_access_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(prefill): Query<Prefill>,
) -> Response {
    if state.service.settings().policy != SignUpPolicy::InviteOnly {
        return not_found(&state);
    }
    let visit = Visit::new(&state, &headers);
    visit.show(&state, StatusCode::OK, "Ask for an invitation", notice(prefill.notice.as_deref()), |frame| {
        views::request_access(None, None, frame)
    })
}

async fn request_access(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(form): PageForm<EmailFields>,
) -> Response {
    let attempt = async {
        let email = filled(&form.email).ok_or_else(|| blank("email", "your email address"))?;
        let email = Email::parse(email).map_err(|e| problem(e.into()))?;
        state.service.request_access(email, client.ip()).await.map_err(problem)
    };
    match attempt.await {
        Ok(()) => see_other("/request-access?notice=requested", None),
        Err((StatusCode::NOT_FOUND, _)) => not_found(&state),
        Err((status, problem)) => {
            let visit = Visit::new(&state, &headers);
            visit.show(&state, status, "Ask for an invitation", None, |frame| {
                views::request_access(filled(&form.email), Some(&problem), frame)
            })
        }
    }
}

async fn confirm_page(State(state): State<AppState>, headers: HeaderMap, Query(prefill): Query<Prefill>) -> Response {
    let visit = Visit::new(&state, &headers);
    let (email, code) = (prefill.email.as_deref().and_then(filled), prefill.code.as_deref().and_then(filled));
    visit.show(&state, StatusCode::OK, "Confirm your email", notice(prefill.notice.as_deref()), |frame| {
        views::confirm(email, code, None, frame)
    })
}

async fn confirm(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(form): PageForm<ConfirmFields>,
) -> Response {
    let attempt = async {
        let email = filled(&form.email).ok_or_else(|| blank("email", "your email address"))?;
        let email = Email::parse(email).map_err(|e| problem(e.into()))?;
        let code = filled(&form.code).ok_or_else(|| blank("code", "the code from the email"))?;
        state.service.confirm_sign_up(email, code.to_owned(), client.ip()).await.map_err(problem)
    };
    match attempt.await {
        Ok(()) => see_other(&query_with_email("/signin", form.email.trim(), "confirmed"), None),
        Err((status, problem)) => {
            let visit = Visit::new(&state, &headers);
            visit.show(&state, status, "Confirm your email", None, |frame| {
                views::confirm(filled(&form.email), filled(&form.code), Some(&problem), frame)
            })
        }
    }
}
