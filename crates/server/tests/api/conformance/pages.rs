//! The pages, in a real browser (headless Chromium, see `browser.rs`), on
//! every backend: what an invitee does from the emailed link to their
//! account page, with a mail scanner ahead of them, axe-core on every page,
//! and screenshots of each at 1280 and 375 px in target/browser-screenshots.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, ORIGIN};

use crate::browser::{Browser, Scheme};
use crate::helpers::*;

const NEW_PASSWORD: &str = "An0ther-secret!";

/// The sign-up link in the newest invitation to `to`.
async fn invitation_link(app: &TestApp, to: &str) -> String {
    let mail = app.latest_mail(to).await;
    let link = mail.lines().find_map(|l| l.strip_prefix("Sign up here: ")).expect("a sign-up link");
    link.trim().to_owned()
}

/// What a mail security scanner does to every link: GET and HEAD, again and again.
async fn scan(link: &str) {
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let get = client.get(link).send().await.unwrap();
        assert_eq!(get.status(), StatusCode::OK);
        let head = client.head(link).send().await.unwrap();
        assert_eq!(head.status(), StatusCode::OK);
    }
}

/// Opens the emailed link and signs up with `password`; lands on the account page.
async fn sign_up_from_link(browser: &Browser, link: &str, email: &str, password: &str) {
    browser.open(link).await;
    assert_eq!(browser.value("#email").await, email);
    assert!(browser.attribute("#email", "readonly").await.is_some(), "the invitation's email is not editable");
    assert!(!browser.value("#code").await.is_empty(), "the code is filled in");
    browser.fill("#password", password).await;
    browser.click("button[type=submit]", "#you").await;
    assert_eq!(browser.path().await, "/account");
}

#[tokio::test]
async fn an_invitee_signs_up_from_the_scanned_link_and_invites_a_friend_whose_link_works_the_same() {
    let app = spawn_app().await;
    let backend = app.backend;
    let alice = "alice.pages@example.com";
    app.operator_invite(alice).await;
    let link = invitation_link(&app, alice).await;
    assert!(link.starts_with(&format!("{}/signup?", app.base)), "{link}");
    scan(&link).await;

    let browser = Browser::start().await;
    browser.open(&link).await;
    browser.check_page(backend, "signup").await;
    sign_up_from_link(&browser, &link, alice, PASSWORD).await;
    assert!(browser.text("main").await.contains(alice));
    let code = link.split("code=").nth(1).unwrap();
    assert!(!captured_log().contains(code), "the code in the link never reaches the log");
    browser.check_page(backend, "account").await;

    // Invite a friend from the account page.
    let bob = "bob.pages@example.com";
    browser.fill("#invitee", bob).await;
    browser.click("form[action='/account/invite'] button", ".notice").await;
    assert!(browser.text(".notice").await.contains("Invitation sent"));
    assert!(browser.text("table").await.contains(bob), "the sent invitation is listed");
    assert!(browser.has("form[action$='/resend'] button").await && browser.has("form[action$='/revoke'] button").await);
    browser.check_page(backend, "account-with-invitations").await;
    browser.close().await;

    let friend_link = invitation_link(&app, bob).await;
    scan(&friend_link).await;
    let friend = Browser::start().await;
    sign_up_from_link(&friend, &friend_link, bob, PASSWORD).await;
    assert!(friend.text(".facts").await.contains(alice), "the friend sees who invited them");
    friend.close().await;
}

#[tokio::test]
async fn forms_show_the_apis_messages_at_their_fields_and_keep_what_was_typed() {
    let app = spawn_app().await;
    let backend = app.backend;
    let carol = "carol.pages@example.com";
    app.operator_invite(carol).await;
    let link = invitation_link(&app, carol).await;

    let browser = Browser::start().await;
    browser.open(&link).await;
    // Every rule is shown before anything is typed.
    let rules = browser.text("#password-hint").await;
    for rule in ["8 characters", "upper-case", "lower-case", "digit", "symbol"] {
        assert!(rules.contains(rule), "{rules}");
    }
    browser.fill("#password", "weak").await;
    browser.click("button[type=submit]", "#password-error").await;
    let message = browser.text("#password-error").await;
    assert!(message.contains("8 characters") && message.contains("upper-case"), "{message}");
    assert_eq!(browser.attribute("#password", "aria-invalid").await.as_deref(), Some("true"));
    let described = browser.attribute("#password", "aria-describedby").await.unwrap_or_default();
    assert!(described.contains("password-error"), "the error is tied to its field: {described}");
    assert_eq!(browser.value("#email").await, carol, "the email is kept");
    assert!(!browser.value("#code").await.is_empty(), "the code is kept");
    assert_eq!(browser.value("#password").await, "", "the password is not sent back");
    browser.check_page(backend, "signup-error").await;

    // The rejected try did not use the invitation up.
    browser.fill("#password", PASSWORD).await;
    browser.click("button[type=submit]", "#you").await;

    // A wrong password: the API's one message for any wrong credential.
    let other = Browser::start().await;
    other.open(&format!("{}/signin", app.base)).await;
    other.check_page(backend, "signin").await;
    other.fill("#email", carol).await;
    other.fill("#password", "Wr0ng-password!").await;
    other.click("button[type=submit]", "#form-error").await;
    assert_eq!(other.text("#form-error").await, "Incorrect email or password");
    assert_eq!(other.value("#email").await, carol);
    other.check_page(backend, "signin-error").await;
    other.close().await;
    browser.close().await;
}

#[tokio::test]
async fn sign_out_ends_the_session_on_the_server_and_a_recovery_code_sets_a_new_password() {
    let app = spawn_app().await;
    let backend = app.backend;
    let dave = "dave.pages@example.com";
    app.invited_user(dave).await;

    let browser = Browser::start().await;
    browser.open(&format!("{}/", app.base)).await;
    assert_eq!(browser.path().await, "/signin", "/ sends a stranger to sign in");
    // Keyboard only: type, Tab to the next field, Enter to send.
    browser.focus("#email").await;
    browser.type_keys(&format!("{dave}\u{E004}{PASSWORD}\u{E007}")).await;
    browser.wait_for("#you").await;
    assert_eq!(browser.path().await, "/account");
    let session = browser.cookie_header().await;
    assert!(session.contains("ig_session="), "{session}");

    browser.click("form[action='/signout'] button", "#email").await;
    assert_eq!(browser.path().await, "/signin");
    // The cookie copied before signing out opens nothing any more.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let replayed = client.get(format!("{}/account", app.base)).header(COOKIE, &session).send().await.unwrap();
    assert_eq!(replayed.status(), StatusCode::SEE_OTHER);
    assert_eq!(replayed.headers()["location"], "/signin");

    // Forgot password → the emailed code → a new password.
    browser.click("a[href='/forgot-password']", "#email").await;
    browser.check_page(backend, "forgot-password").await;
    let mails = app.mail_count(dave).await;
    browser.fill("#email", dave).await;
    browser.click("button[type=submit]", "#code").await;
    assert_eq!(browser.path().await, "/reset-password");
    assert_eq!(browser.value("#email").await, dave);
    browser.check_page(backend, "reset-password").await;
    let mail = app.wait_for_mail(dave, mails + 1).await;
    let code: String =
        mail.split_once("code is ").expect("a recovery code").1.chars().take_while(char::is_ascii_digit).collect();
    browser.fill("#code", &code).await;
    browser.fill("#password", NEW_PASSWORD).await;
    browser.click("button[type=submit]", ".notice").await;
    assert_eq!(browser.path().await, "/signin");

    browser.fill("#email", dave).await;
    browser.fill("#password", PASSWORD).await;
    browser.click("button[type=submit]", "#form-error").await;
    browser.fill("#password", NEW_PASSWORD).await;
    browser.click("button[type=submit]", "#you").await;
    assert_eq!(browser.path().await, "/account");
    browser.close().await;
}

#[tokio::test]
async fn a_form_posted_from_another_site_or_without_its_token_is_refused() {
    let app = spawn_app().await;
    let erin = "erin.pages@example.com";
    app.invited_user(erin).await;
    let target = "target.pages@example.com";

    let browser = Browser::start().await;
    browser.open(&format!("{}/signin", app.base)).await;
    browser.fill("#email", erin).await;
    browser.fill("#password", PASSWORD).await;
    browser.click("button[type=submit]", "#you").await;
    let cookies = browser.cookie_header().await;
    let token = browser.value("form[action='/account/invite'] input[name=csrf]").await;

    // Another site (localhost is not the same site as 127.0.0.1) with a form
    // that posts to the account page, clicked by the signed-in person.
    let evil = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let evil_port = evil.local_addr().unwrap().port();
    let form = format!(
        "<!doctype html><title>Prize</title><form method=post action='{}/account/invite'>\
         <input name=email value='{target}'><input name=csrf value='{token}'>\
         <button id=go>Claim your prize</button></form>",
        app.base
    );
    let site = axum::Router::new().route("/", axum::routing::get(move || async move { axum::response::Html(form) }));
    tokio::spawn(async move { axum::serve(evil, site).await });
    browser.open(&format!("http://localhost:{evil_port}/")).await;
    browser.click("#go", "h1").await;
    assert!(browser.text("h1").await.contains("can't be sent"), "{}", browser.text("main").await);
    browser.assert_accessible("refused form").await;
    assert_eq!(app.mail_count(target).await, 0, "nothing was sent");

    // The same post straight from a script, with every cookie but no token, or a wrong one.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let post = |csrf: &str, origin: &str| {
        client
            .post(format!("{}/account/invite", app.base))
            .header(COOKIE, &cookies)
            .header(ORIGIN, origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("email", target)
                    .append_pair("csrf", csrf)
                    .finish(),
            )
            .send()
    };
    assert_eq!(post("", "null").await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(post("AAAA", "null").await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(post(&token, "http://evil.example").await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(app.mail_count(target).await, 0, "nothing was sent");
    // With its token, and `Origin: null` as Chromium sends under `no-referrer`, it goes through.
    let accepted = post(&token, "null").await.unwrap();
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.mail_count(target).await, 1);
    browser.close().await;
}

#[tokio::test]
async fn pages_never_change_state_on_get_and_send_their_protective_headers() {
    let app = spawn_app().await;
    let frank = "frank.pages@example.com";
    app.operator_invite(frank).await;
    let link = invitation_link(&app, frank).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let query = link.split_once('?').unwrap().1;
    for path in ["/signup", "/signin", "/forgot-password", "/reset-password", "/request-access", "/confirm"] {
        let url = format!("{}{path}?{query}", app.base);
        for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
            let response = client.request(method.clone(), &url).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{method} {path}");
            let headers = response.headers();
            assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
            assert_eq!(headers["cache-control"], "no-store", "{path}");
            assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
            let csp = headers["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
            assert!(!csp.contains("unsafe-inline"), "{csp}");
            for cookie in headers.get_all("set-cookie") {
                let cookie = cookie.to_str().unwrap();
                assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
            }
        }
    }
    // Every page fetched with the code in its address; the code still works.
    let code = link.split("code=").nth(1).unwrap().replace("%2D", "-");
    let response = app.sign_up(frank, PASSWORD, &code).await;
    assert_eq!(response.status(), StatusCode::OK);
    // `/` and `/account` send a stranger to sign in.
    for path in ["/", "/account"] {
        let response = client.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.headers()["location"], "/signin", "{path}");
    }
}

#[tokio::test]
async fn the_other_pages_are_accessible_in_light_and_dark() {
    let app = spawn_app().await;
    let backend = app.backend;
    for scheme in [Scheme::Light, Scheme::Dark] {
        let browser = Browser::start_with(scheme).await;
        browser.open(&format!("{}/signin", app.base)).await;
        assert_eq!(browser.prefers_dark().await, scheme == Scheme::Dark);
        let suffix = if scheme == Scheme::Dark { "-dark" } else { "" };
        for page in ["request-access", "confirm", "signup", "signin", "forgot-password", "reset-password"] {
            let shot = if page == "signup" { "signup-without-link" } else { page };
            browser.open(&format!("{}/{page}", app.base)).await;
            browser.wait_for("h1").await;
            browser.check_page(backend, &format!("{shot}{suffix}")).await;
        }
        if scheme == Scheme::Dark {
            let grace = "grace.pages@example.com";
            app.invited_user(grace).await;
            browser.open(&format!("{}/signin", app.base)).await;
            browser.fill("#email", grace).await;
            browser.fill("#password", PASSWORD).await;
            browser.click("button[type=submit]", "#you").await;
            browser.check_page(backend, "account-dark").await;
        }
        browser.close().await;
    }
}

#[tokio::test]
async fn the_account_page_resends_revokes_changes_the_password_ends_every_session_and_deletes() {
    let app = spawn_app().await;
    let backend = app.backend;
    let heidi = "heidi.pages@example.com";
    app.invited_user(heidi).await;

    let browser = Browser::start().await;
    let elsewhere = Browser::start().await;
    for b in [&browser, &elsewhere] {
        b.open(&format!("{}/signin", app.base)).await;
        b.fill("#email", heidi).await;
        b.fill("#password", PASSWORD).await;
        b.click("button[type=submit]", "#you").await;
    }

    // Two invitations: one re-sent (its first code stops working), one revoked.
    for friend in ["ivan.pages@example.com", "judy.pages@example.com"] {
        browser.fill("#invitee", friend).await;
        browser.click("form[action='/account/invite'] button", ".notice").await;
    }
    let first_code = app.access_code("ivan.pages@example.com").await;
    browser.click("button[aria-label='Resend the invitation to ivan.pages@example.com']", ".notice").await;
    assert!(browser.text(".notice").await.contains("new code"));
    assert_eq!(app.mail_count("ivan.pages@example.com").await, 2);
    let stale = app.sign_up("ivan.pages@example.com", PASSWORD, &first_code).await;
    expect_error(stale, StatusCode::FORBIDDEN, "invalid_access_code").await;
    browser.click("button[aria-label='Revoke the invitation to judy.pages@example.com']", ".notice").await;
    assert!(browser.text("table").await.contains("Revoked"));
    assert!(!browser.has("button[aria-label='Revoke the invitation to judy.pages@example.com']").await);
    // A bad address: the API's message, at the form.
    browser.fill("#invitee", "not an address").await;
    browser.click("form[action='/account/invite'] button", "#invitee-error").await;
    assert!(browser.text("#invitee-error").await.contains("Invalid email"));

    // A wrong current password is said at that field; then a right one.
    browser.fill("#current-password", "Wr0ng-password!").await;
    browser.fill("#new-password", NEW_PASSWORD).await;
    browser.click("form[action='/account/password'] button", "#current-password-error").await;
    browser.fill("#current-password", PASSWORD).await;
    browser.fill("#new-password", NEW_PASSWORD).await;
    browser.click("form[action='/account/password'] button", ".notice").await;
    assert!(browser.text(".notice").await.contains("password is changed"));

    // Sign out everywhere ends the other browser's session too.
    browser.click("form[action='/account/sign-out-everywhere'] button", ".notice").await;
    assert_eq!(browser.path().await, "/signin");
    elsewhere.open(&format!("{}/account", app.base)).await;
    elsewhere.wait_for("#password").await;
    assert_eq!(elsewhere.path().await, "/signin", "the other session ended");
    elsewhere.close().await;

    // Delete asks for the password, then the account is gone.
    browser.fill("#email", heidi).await;
    browser.fill("#password", NEW_PASSWORD).await;
    browser.click("button[type=submit]", "#you").await;
    browser.fill("#delete-password", "Wr0ng-password!").await;
    browser.click("form[action='/account/delete'] button", "#delete-password-error").await;
    browser.check_page(backend, "account-delete-error").await;
    browser.fill("#delete-password", NEW_PASSWORD).await;
    browser.click("form[action='/account/delete'] button", ".notice").await;
    assert_eq!(browser.path().await, "/signin");
    let gone = app.post("/sign_in", serde_json::json!({ "email": heidi, "password": NEW_PASSWORD })).await;
    assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);
    browser.close().await;
}

#[tokio::test]
async fn in_open_mode_a_sign_up_without_a_code_is_confirmed_on_the_confirm_page() {
    let app = spawn_app_with(|c| c.service.policy = domain::SignUpPolicy::Open).await;
    let kim = "kim.pages@example.com";
    let browser = Browser::start().await;
    browser.open(&format!("{}/signup", app.base)).await;
    assert!(browser.attribute("#email", "readonly").await.is_none(), "nothing to fix the email to");
    assert!(browser.attribute("#code", "required").await.is_none(), "no code needed");
    browser.fill("#email", kim).await;
    browser.fill("#password", PASSWORD).await;
    browser.click("button[type=submit]", "#code").await;
    assert_eq!(browser.path().await, "/confirm");
    assert_eq!(browser.value("#email").await, kim);
    // The invite-only page is not there in open mode.
    let missing = reqwest::get(format!("{}/request-access", app.base)).await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    browser.fill("#code", "000000").await;
    browser.click("button[type=submit]", "#code-error").await;
    browser.fill("#code", &app.confirmation_code(kim).await).await;
    browser.click("button[type=submit]", ".notice").await;
    assert_eq!(browser.path().await, "/signin");
    assert_eq!(browser.value("#email").await, kim);
    browser.fill("#password", PASSWORD).await;
    browser.click("button[type=submit]", "#you").await;
    assert!(browser.text(".facts").await.contains("signed up yourself"));
    browser.close().await;
}

#[tokio::test]
async fn invitation_links_go_to_the_apps_own_sign_up_page_and_the_app_is_named() {
    let app = spawn_app_with(|c| {
        c.signup_url = Some("https://app.example/join?from=mail".into());
        c.app_name = "Acme & Co".into();
    })
    .await;
    let liam = "liam.pages@example.com";
    app.operator_invite(liam).await;
    let link = invitation_link(&app, liam).await;
    assert!(link.starts_with("https://app.example/join?from=mail&email=liam.pages%40example.com&code="), "{link}");
    let mail = app.latest_mail(liam).await;
    assert!(mail.contains("Acme & Co"), "{mail}");
    let page = reqwest::get(format!("{}/signin", app.base)).await.unwrap().text().await.unwrap();
    assert!(page.contains("<title>Sign in · Acme &amp; Co</title>"), "{page}");
    // The code still works with the API from the app's own page.
    let code = app.access_code(liam).await;
    assert_eq!(app.sign_up(liam, PASSWORD, &code).await.status(), StatusCode::OK);
}
