//! Building the service from configuration and running it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::Response;
use axum::routing::{delete, get, post};
use backend_embedded::{EmbeddedConfig, HashingCapacity, HashingCost};
use domain::admin::AdminCredential;
use domain::messages::Branding;
use domain::{Adapters, SignUpPolicy};
use tokio::net::TcpListener;
use tower_http::cors::CorsLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::client_address::TrustedProxies;
use crate::clock::Clock;
use crate::error::error_response;
use crate::limits::AttemptLimits;
use crate::routes::{admin, auth, invitations, meta};
use crate::serve::ConnectionLimits;
use crate::service::{Invitegate, ServiceSettings};
use crate::telemetry;
use crate::wire::ErrorCode;

/// Where users and invitations live.
#[derive(Debug, Clone)]
pub enum Backend {
    /// SQLite, the local user pool and the outbox (or SMTP).
    Embedded(EmbeddedSettings),
    /// Cognito, DynamoDB and SES.
    Aws(backend_aws::AwsConfig),
}

/// What only the embedded backend needs.
#[derive(Debug, Clone)]
pub struct EmbeddedSettings {
    /// The database, keys and outbox.
    pub data_dir: std::path::PathBuf,
    pub smtp_url: Option<domain::SecretString>,
    pub mail_from: String,
    pub hashing_cost: HashingCost,
    pub hashing_capacity: HashingCapacity,
}

/// Everything needed to build the service; `config.rs` fills it from the CLI, tests directly.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub backend: Backend,
    pub listen: SocketAddr,
    pub public_url: Option<String>,
    /// In page titles and emails (`--app-name`).
    pub app_name: String,
    /// The sign-up page invitation emails link to, if the app hosts its own (`--signup-url`).
    pub signup_url: Option<String>,
    pub service: ServiceSettings,
    pub attempt_limits: AttemptLimits,
    pub cors_origins: Vec<String>,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
    pub connection_limits: ConnectionLimits,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` name the client.
    pub trusted_proxies: TrustedProxies,
    /// Where `/metrics` is served instead of beside the API, if set.
    pub metrics_listen: Option<SocketAddr>,
    /// Where the admin API's bearer token comes from.
    pub admin_token: AdminTokenSource,
}

/// Where the admin API's bearer token comes from.
#[derive(Debug, Clone)]
pub enum AdminTokenSource {
    Given(domain::SecretString),
    /// A file readable by its owner only.
    File(std::path::PathBuf),
    /// Embedded backend: the data dir's `admin-token`, created on first start.
    /// On AWS there is no data dir: no token, and `/admin` answers 401.
    DataDir,
    /// No admin API (every `/admin` route answers 401).
    None,
}

impl AdminTokenSource {
    fn credential(&self, backend: &Backend) -> anyhow::Result<Option<AdminCredential>> {
        let token = match (self, backend) {
            (Self::Given(token), _) => token.expose().to_owned(),
            (Self::File(path), _) => {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path)
                    .with_context(|| format!("reading the admin token file {}", path.display()))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    anyhow::bail!(
                        "{} has permissions {:o}; it must be readable by its owner only",
                        path.display(),
                        mode & 0o777
                    );
                }
                std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
            }
            (Self::DataDir, Backend::Embedded(embedded)) => {
                let token = backend_embedded::admin_token(&embedded.data_dir)?;
                let file = embedded.data_dir.join(backend_embedded::ADMIN_TOKEN_FILE);
                tracing::info!(file = %file.display(), "admin API token (Authorization: Bearer <token>) is in this file");
                token
            }
            (Self::DataDir, Backend::Aws(_)) | (Self::None, _) => return Ok(None),
        };
        let credential = AdminCredential::new(&token).context("the admin token is empty")?;
        Ok(Some(credential))
    }
}

#[derive(Clone)]
pub struct AppState {
    /// Shared, not copied, into every request.
    pub service: Arc<Invitegate>,
    /// What `/admin` requests must present; `None`: every `/admin` route answers 401.
    pub admin: Option<Arc<AdminCredential>>,
    /// How the pages name and mark their cookies (from the public URL).
    pub cookies: crate::pages::CookiePolicy,
}

/// The app's name and the addresses its emails and pages link to.
pub fn branding(config: &AppConfig, public_url: &str) -> Branding {
    Branding::new(&config.app_name, public_url, config.signup_url.as_deref())
}

/// Opens the configured backend; `public_url` is also the embedded pool's token issuer.
pub async fn open_backend(
    backend: &Backend,
    public_url: &str,
    branding: &Branding,
    policy: SignUpPolicy,
) -> anyhow::Result<Adapters> {
    match backend {
        Backend::Embedded(embedded) => backend_embedded::open(&EmbeddedConfig {
            data_dir: embedded.data_dir.clone(),
            issuer: public_url.to_owned(),
            branding: branding.clone(),
            policy,
            hashing_cost: embedded.hashing_cost,
            hashing_capacity: embedded.hashing_capacity,
            smtp_url: embedded.smtp_url.clone(),
            mail_from: embedded.mail_from.clone(),
        }),
        Backend::Aws(aws) => backend_aws::open(aws, &backend_aws::sdk_config().await),
    }
}

/// Opens the backend and assembles the use cases (shared by `serve` and the CLI).
pub async fn build_service(
    config: &AppConfig,
    public_url: String,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Invitegate> {
    let branding = branding(config, &public_url);
    let adapters = open_backend(&config.backend, &public_url, &branding, config.service.policy).await?;
    Ok(Invitegate::new(adapters, clock, config.service.clone(), branding, config.attempt_limits))
}

pub fn default_public_url(listen: SocketAddr) -> String {
    format!("http://{listen}")
}

pub fn router(state: AppState, config: &AppConfig) -> anyhow::Result<Router> {
    let mut api = Router::new()
        .route("/healthz", get(meta::healthz))
        .route("/readyz", get(meta::readyz))
        .route("/openapi.json", get(meta::openapi_json))
        .route("/.well-known/jwks.json", get(meta::jwks))
        .route("/sign_up", post(auth::sign_up))
        .route("/confirm_sign_up", post(auth::confirm_sign_up))
        .route("/resend_confirmation", post(auth::resend_confirmation))
        .route("/sign_in", post(auth::sign_in))
        .route("/refresh", post(auth::refresh))
        .route("/sign_out", post(auth::sign_out))
        .route("/forgot_password", post(auth::forgot_password))
        .route("/confirm_forgot_password", post(auth::confirm_forgot_password))
        .route("/change_password", post(auth::change_password))
        .route("/global_sign_out", post(auth::global_sign_out))
        .route("/me", get(invitations::me).delete(auth::delete_me))
        .route("/invitations", post(invitations::create).get(invitations::list))
        .route("/invitations/{id}", delete(invitations::revoke))
        .route("/invitations/{id}/resend", post(invitations::resend))
        .route("/admin/invitations", post(admin::create_invitation).get(admin::list_invitations))
        .route("/admin/invitations/{id}/revoke", post(admin::revoke_invitation))
        .route("/admin/invitations/{id}/resend", post(admin::resend_invitation))
        .route("/access_requests", post(auth::request_access))
        .route("/admin/access_requests", get(admin::list_access_requests))
        .route("/admin/access_requests/{id}/approve", post(admin::approve_access_request))
        .route("/admin/access_requests/{id}/reject", post(admin::reject_access_request))
        .route("/admin/users", get(admin::list_users))
        .route("/admin/users/{sub}", get(admin::show_user).delete(admin::delete_user))
        .route("/admin/users/{sub}/delete", post(admin::delete_user))
        .route("/admin/users/{sub}/disable", post(admin::disable_user))
        .route("/admin/users/{sub}/enable", post(admin::enable_user))
        .route("/admin/users/{sub}/sign_out", post(admin::sign_out_user))
        .route("/admin/users/{sub}/sign-out", post(admin::sign_out_user))
        .route("/admin/users/{sub}/reset_password", post(admin::reset_password))
        .route("/admin/users/{sub}/reset-password", post(admin::reset_password));
    if config.metrics_listen.is_none() {
        api = api.route("/metrics", get(meta::metrics));
    }
    let api = api.merge(crate::pages::router()).fallback(meta::not_found).with_state(state.clone());
    let origins = config
        .cors_origins
        .iter()
        .filter(|o| !o.trim().is_empty())
        .map(|o| HeaderValue::from_str(o.trim()).with_context(|| format!("CORS origin {o:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cors = CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION]);
    // Spans carry the path only: query strings (such as a pasted sign-up link) may hold codes.
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
        let id = request.headers().get(telemetry::REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
        tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path())
    });
    // The last layer added runs first: the id is set before the span is made.
    Ok(api
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, config.request_timeout))
        .layer(axum::middleware::map_response(json_for_bare_errors))
        .layer(axum::middleware::from_fn_with_state(state, telemetry::record_metrics))
        .layer(cors)
        .layer(trace)
        .layer(axum::middleware::from_fn(telemetry::request_id)))
}

/// The router of the separate metrics address.
fn metrics_router(state: AppState) -> Router {
    Router::new().route("/metrics", get(meta::metrics)).fallback(meta::not_found).with_state(state)
}

/// Errors produced outside our handlers (405 from routing, 408 from the
/// timeout layer) arrive without a body; give them the API's JSON shape.
async fn json_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (ErrorCode::MethodNotAllowed, "Method not allowed"),
        StatusCode::REQUEST_TIMEOUT => (ErrorCode::Timeout, "The request took too long"),
        StatusCode::PAYLOAD_TOO_LARGE => (ErrorCode::PayloadTooLarge, "Request body too large"),
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "Not found"),
        s if s.is_server_error() => (ErrorCode::Internal, "Internal error"),
        _ => (ErrorCode::InvalidRequest, "Invalid request"),
    };
    // The status stays the one the layer chose; the body gets the API's shape.
    let mut json = error_response(code, message);
    *json.status_mut() = status;
    if let Some(allow) = response.headers().get(header::ALLOW) {
        json.headers_mut().insert(header::ALLOW, allow.clone());
    }
    json
}

/// How often expired records are purged (first at start).
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

pub struct Application {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    router: Router,
    service: Invitegate,
    adapters: Adapters,
    address: SocketAddr,
    connection_limits: ConnectionLimits,
    trusted_proxies: TrustedProxies,
    cookies: crate::pages::CookiePolicy,
}

impl Application {
    /// Binds the listener (port 0 picks a free one) and builds the service.
    pub async fn build(config: AppConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let listener =
            TcpListener::bind(config.listen).await.with_context(|| format!("listening on {}", config.listen))?;
        let address = listener.local_addr()?;
        let metrics_listener = match config.metrics_listen {
            Some(at) => Some(TcpListener::bind(at).await.with_context(|| format!("listening for metrics on {at}"))?),
            None => None,
        };
        if config.public_url.is_none() && address.ip().is_unspecified() {
            tracing::warn!(%address, "listening on all interfaces without --public-url: invitation links will name {address}, which invitees cannot open; set INVITEGATE_PUBLIC_URL");
        }
        let public_url = config.public_url.clone().unwrap_or_else(|| default_public_url(address));
        let branding = branding(&config, &public_url);
        let adapters = open_backend(&config.backend, &public_url, &branding, config.service.policy).await?;
        let service = Invitegate::new(adapters.clone(), clock, config.service.clone(), branding, config.attempt_limits);
        let admin = config.admin_token.credential(&config.backend)?.map(Arc::new);
        let cookies = crate::pages::CookiePolicy::for_public_url(&public_url);
        let router = router(AppState { service: Arc::new(service.clone()), admin, cookies: cookies.clone() }, &config)?;
        Ok(Self {
            listener,
            metrics_listener,
            router,
            service,
            adapters,
            address,
            connection_limits: config.connection_limits,
            trusted_proxies: config.trusted_proxies,
            cookies,
        })
    }

    /// The service's own parts, for tests that must set up or inspect state
    /// no use case produces (a stale reservation, say). Nothing else uses them.
    pub fn adapters(&self) -> &Adapters {
        &self.adapters
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Where `/metrics` is served when it has an address of its own.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn service(&self) -> &Invitegate {
        &self.service
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        if let Some(listener) = self.metrics_listener {
            // Lives as long as the process: a scraper may read the last figures while the API drains.
            let metrics = metrics_router(AppState {
                service: Arc::new(self.service.clone()),
                admin: None,
                cookies: self.cookies.clone(),
            });
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, metrics).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            });
        }
        // Housekeeping for as long as the process serves.
        let service = self.service.clone();
        let housekeeping = tokio::spawn(async move {
            let mut every = tokio::time::interval(PURGE_INTERVAL);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(e) = service.purge_expired().await {
                    tracing::warn!(error = ?e, "purging expired records failed; trying again later");
                }
            }
        });
        let served =
            crate::serve::serve(self.listener, self.router, self.connection_limits, self.trusted_proxies, shutdown)
                .await;
        housekeeping.abort();
        served.context("serving HTTP")
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
