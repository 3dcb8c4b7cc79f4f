use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use backend_embedded::HashingCost;
use domain::{Adapters, Email, PasswordPolicy, SignUpPolicy};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use server::clock::ManualClock;
use server::limits::AttemptLimits;
use server::service::ServiceSettings;
use server::service::{Actor, InvitationSummary, Invitegate};
use server::startup::{AppConfig, Application, Backend, EmbeddedSettings};
use server::wire;
use tempfile::TempDir;
use time::OffsetDateTime;

pub const PASSWORD: &str = "Sup3r-secret!";

/// Which backend the suite runs on: `INVITEGATE_TEST_BACKEND=aws` for the AWS
/// backend against the emulator at `AWS_ENDPOINT_URL` (see scripts/test.sh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Embedded,
    Aws,
}

pub fn test_backend() -> TestBackend {
    match std::env::var("INVITEGATE_TEST_BACKEND").as_deref() {
        Ok("aws") => TestBackend::Aws,
        Ok("embedded") | Err(_) => TestBackend::Embedded,
        Ok(other) => panic!("INVITEGATE_TEST_BACKEND={other}: expected embedded or aws"),
    }
}

pub struct TestApp {
    pub backend: TestBackend,
    pub base: String,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    pub service: Invitegate,
    /// The service's parts, to set up or inspect state directly.
    pub parts: Adapters,
    /// What this app was built from, for a second instance on the same backend.
    pub config: AppConfig,
    pub data_dir: TempDir,
    /// The `iss` and client id the backend's tokens carry.
    pub issuer: String,
    pub client_id: String,
    /// On the AWS backend: the provisioned pool and the emulator.
    pub aws: Option<crate::aws::fixture::AwsApp>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub fn test_config(data_dir: &Path) -> AppConfig {
    AppConfig {
        backend: Backend::Embedded(EmbeddedSettings {
            data_dir: data_dir.to_path_buf(),
            smtp_url: None,
            mail_from: "invitegate <no-reply@invitegate.test>".into(),
            hashing_cost: HashingCost::INSECURE_FAST,
            hashing_capacity: backend_embedded::HashingCapacity::with_threads(2),
        }),
        listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        app_name: "Acme Beta".into(),
        signup_url: None,
        service: ServiceSettings {
            policy: SignUpPolicy::InviteOnly,
            default_invite_quota: 5,
            invitation_ttl: time::Duration::days(7),
            password_policy: PasswordPolicy::default(),
        },
        attempt_limits: AttemptLimits::default(),
        cors_origins: vec![],
        request_timeout: Duration::from_secs(30),
        max_body_bytes: 16 * 1024,
        connection_limits: server::serve::ConnectionLimits::for_this_process(),
        trusted_proxies: server::client_address::TrustedProxies::default(),
        metrics_listen: None,
        admin_token: server::startup::AdminTokenSource::Given(domain::SecretString::new(ADMIN_TOKEN.to_owned())),
    }
}

/// The admin API's token in test apps.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// `configure` sees the embedded configuration; on the AWS backend it is applied
/// once more after provisioning, so it can also adjust the AWS settings.
pub async fn spawn_app_with(configure: impl Fn(&mut AppConfig)) -> TestApp {
    init_logging();
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(data_dir.path());
    configure(&mut config);
    let backend = test_backend();
    let aws = match backend {
        TestBackend::Embedded => None,
        TestBackend::Aws => {
            let aws = crate::aws::fixture::AwsApp::provision(config.service.policy).await;
            config.backend = Backend::Aws(aws.config.clone());
            configure(&mut config);
            Some(aws)
        }
    };
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let app = Application::build(config.clone(), Arc::new(clock.clone())).await.unwrap();
    let base = format!("http://{}", app.address());
    let service = app.service().clone();
    let parts = app.adapters().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    let (issuer, client_id) = match &aws {
        Some(aws) => (aws.issuer(), aws.config.client_id.clone()),
        None => (base.clone(), backend_embedded::CLIENT_ID.to_owned()),
    };
    TestApp {
        backend,
        base,
        client: reqwest::Client::new(),
        clock,
        service,
        parts,
        config,
        data_dir,
        issuer,
        client_id,
        aws,
        _shutdown: tx,
    }
}

impl TestApp {
    /// Another instance of the service on the same backend (its own process
    /// state, shared storage), as a second server behind a load balancer.
    pub async fn second_instance(&self) -> (String, tokio::sync::oneshot::Sender<()>) {
        let app = Application::build(self.config.clone(), Arc::new(self.clock.clone())).await.unwrap();
        let base = format!("http://{}", app.address());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        (base, tx)
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.client.post(format!("{}{path}", self.base)).json(&body).send().await.unwrap()
    }

    pub async fn post_auth(&self, path: &str, token: &str, body: Value) -> Response {
        self.client.post(format!("{}{path}", self.base)).bearer_auth(token).json(&body).send().await.unwrap()
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Response {
        self.client.get(format!("{}{path}", self.base)).bearer_auth(token).send().await.unwrap()
    }

    pub async fn delete_auth(&self, path: &str, token: &str) -> Response {
        self.client.delete(format!("{}{path}", self.base)).bearer_auth(token).send().await.unwrap()
    }

    pub async fn operator_invite(&self, email: &str) -> InvitationSummary {
        self.operator_invite_with_quota(email, None).await
    }

    pub async fn operator_invite_with_quota(&self, email: &str, quota: Option<u32>) -> InvitationSummary {
        self.service.invite(&Actor::Operator, Email::parse(email).unwrap(), quota).await.unwrap()
    }

    /// Every email sent to `to`, oldest first: from the outbox, or from the emulator's SES.
    pub async fn mails_to(&self, to: &str) -> Vec<String> {
        if let Some(aws) = &self.aws {
            return aws.mails_to(to).await;
        }
        let mut paths = backend_embedded::outbox_messages(self.data_dir.path()).unwrap();
        paths.reverse();
        paths
            .into_iter()
            .map(|path| decode_quoted_printable(&std::fs::read_to_string(&path).unwrap()))
            .filter(|mail| mail.lines().any(|l| l.eq_ignore_ascii_case(&format!("To: {to}"))))
            .collect()
    }

    /// The newest email sent to `to`.
    pub async fn latest_mail(&self, to: &str) -> String {
        self.mails_to(to).await.pop().unwrap_or_else(|| panic!("no email to {to}"))
    }

    /// Waits (up to 10 s) until `to` has received `count` emails, for mail
    /// sent after the answer (recovery codes); returns the newest.
    pub async fn wait_for_mail(&self, to: &str, count: usize) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let mails = self.mails_to(to).await;
            if mails.len() >= count {
                return mails.last().cloned().unwrap();
            }
            assert!(std::time::Instant::now() < deadline, "no email #{count} to {to}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub async fn mail_count(&self, to: &str) -> usize {
        self.mails_to(to).await.len()
    }

    /// The access code in the newest invitation to `to`.
    pub async fn access_code(&self, to: &str) -> String {
        let mail = self.latest_mail(to).await;
        let line = mail.lines().find_map(|l| l.strip_prefix("Your access code: ")).expect("access code line");
        line.trim().to_owned()
    }

    /// The six-digit code in the newest confirmation email (ours, or Cognito's).
    pub async fn confirmation_code(&self, to: &str) -> String {
        let mail = self.latest_mail(to).await;
        let after = mail.split_once("code is ").expect("a confirmation code").1;
        after.chars().take_while(char::is_ascii_digit).collect()
    }

    pub async fn sign_up(&self, email: &str, password: &str, code: &str) -> Response {
        let body = wire::SignUpRequest {
            email: Some(email.to_owned()),
            password: Some(password.to_owned()),
            access_code: Some(code.to_owned()),
        };
        self.client.post(format!("{}/sign_up", self.base)).json(&body).send().await.unwrap()
    }

    /// Operator invites `email`, who signs up with the emailed code. Returns the sub.
    pub async fn invited_user(&self, email: &str) -> String {
        self.operator_invite(email).await;
        let response = self.sign_up(email, PASSWORD, &self.access_code(email).await).await;
        let body: wire::SignUpResponse = expect_body(response, StatusCode::OK).await;
        assert!(body.user_confirmed, "an invited user is confirmed at once");
        body.user_sub
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Value {
        let response = self.post("/sign_in", json!({ "email": email, "password": password })).await;
        expect_json(response, StatusCode::OK).await
    }

    /// An invited, signed-in user's access token.
    pub async fn signed_in_user(&self, email: &str) -> (String, String) {
        let sub = self.invited_user(email).await;
        let response = self.post("/sign_in", json!({ "email": email, "password": PASSWORD })).await;
        let tokens: wire::TokensResponse = expect_body(response, StatusCode::OK).await;
        (sub, tokens.access_token)
    }
}

pub async fn expect_json(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// A successful answer, read as its wire type.
pub async fn expect_body<T: serde::de::DeserializeOwned>(response: Response, status: StatusCode) -> T {
    let body = expect_json(response, status).await;
    serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("not the documented shape ({e}): {body}"))
}

/// Asserts an API error: status, machine code, and the `{error, code}` shape
/// (`wire::ErrorBody`), with the status the code is documented to carry.
pub async fn expect_error(response: Response, status: StatusCode, code: &str) -> Value {
    let body = expect_json(response, status).await;
    let parsed: wire::ErrorBody =
        serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("not an error body ({e}): {body}"));
    assert_eq!(parsed.code.as_str(), code, "body: {body}");
    assert_eq!(parsed.code.status().as_u16(), status.as_u16(), "{code} carries another status in wire.rs");
    assert!(!parsed.error.is_empty(), "body: {body}");
    body
}

pub fn decode_quoted_printable(raw: &str) -> String {
    if !raw.contains("Content-Transfer-Encoding: quoted-printable") {
        return raw.replace("\r\n", "\n");
    }
    let joined = raw.replace("=\r\n", "").replace("\r\n", "\n");
    let mut out = Vec::new();
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// Everything every test app logs, kept so tests can check what reached the log.
#[derive(Clone, Default)]
pub struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        if std::env::var_os("TEST_LOG").is_some() {
            std::io::stderr().write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static LOG: OnceLock<CapturedLog> = OnceLock::new();

/// One global subscriber at TRACE for the whole test binary, quiet unless `TEST_LOG` is set.
fn init_logging() -> &'static CapturedLog {
    LOG.get_or_init(|| {
        let log = CapturedLog::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other subscriber in tests");
        log
    })
}

pub fn captured_log() -> String {
    String::from_utf8_lossy(&init_logging().0.lock().unwrap()).into_owned()
}

/// A server process that is killed when the test ends, failed or not.
pub struct ServerProcess(pub std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `command` (an `invitegate serve` with `--listen …:0`), waits for the
/// address it logs, and keeps draining its log so it never blocks on a full pipe.
pub fn start_server(mut command: std::process::Command) -> (ServerProcess, String) {
    use std::io::{BufRead, BufReader};
    let mut child = command
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let server = ServerProcess(child);
    let mut line = String::new();
    let address = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "invitegate exited early");
        if let Some(rest) = line.split("address=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (server, address)
}
