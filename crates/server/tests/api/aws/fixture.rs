//! A fresh user pool per test app on the emulator. The invitation table and the
//! two PreSignUp functions (one per sign-up policy) are made once per test run
//! and shared: test emails are unique across the suite, so apps cannot collide.

use backend_aws::AwsConfig;
use domain::SignUpPolicy;
use serde_json::Value;
use tokio::sync::OnceCell;
use xtask::provision::{create_pool, create_table, create_trigger, verify_sender};

struct Shared {
    table: String,
    invite_only: (String, String),
    open: (String, String),
}

static SHARED: OnceCell<Shared> = OnceCell::const_new();

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("INVITEGATE_TEST_BACKEND=aws needs {name}: run ./scripts/test.sh, which starts the emulator and builds the Lambda")
    })
}

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

async fn shared(sdk: &aws_config::SdkConfig) -> &'static Shared {
    SHARED
        .get_or_init(|| async {
            let run = format!("it{}", short_id());
            let zip = std::fs::read(env("INVITEGATE_TEST_LAMBDA_ZIP")).expect("the Lambda zip");
            let table = format!("{run}-invitations");
            let table_arn = create_table(sdk, &table).await.expect("CreateTable on the emulator");
            let mut functions = Vec::new();
            for policy in [SignUpPolicy::InviteOnly, SignUpPolicy::Open] {
                let name = format!("{run}-{}", policy.as_str().replace('_', "-"));
                let arn =
                    create_trigger(sdk, &name, &table, &table_arn, policy, zip.clone()).await.expect("the trigger");
                functions.push((name, arn));
            }
            let open = functions.pop().expect("two functions");
            let invite_only = functions.pop().expect("two functions");
            Shared { table, invite_only, open }
        })
        .await
}

pub struct AwsApp {
    pub config: AwsConfig,
    pub endpoint: String,
    pub sdk: aws_config::SdkConfig,
    pub region: String,
}

impl AwsApp {
    pub async fn provision(policy: SignUpPolicy) -> Self {
        let endpoint = env("AWS_ENDPOINT_URL");
        let sdk = backend_aws::sdk_config().await;
        let shared = shared(&sdk).await;
        let (function_name, function_arn) = match policy {
            SignUpPolicy::InviteOnly => &shared.invite_only,
            SignUpPolicy::Open => &shared.open,
        };
        let name = format!("t{}", short_id());
        let pool = create_pool(&sdk, &name, function_name, function_arn).await.expect("CreateUserPool on the emulator");
        let mail_from = format!("invitegate@{name}.test");
        verify_sender(&sdk, &mail_from).await.expect("CreateEmailIdentity");
        let region = sdk.region().map(ToString::to_string).expect("AWS_REGION");
        let config = AwsConfig {
            user_pool_id: pool.user_pool_id,
            client_id: pool.client_id,
            client_secret: pool.client_secret,
            table: shared.table.clone(),
            mail_from: mail_from.clone(),
            code_key: domain::SecretString::new(backend_aws::generate_code_key()),
            issuer: None,
            jwks_url: None,
            endpoint_url: None,
        };
        Self { config, endpoint, sdk, region }
    }

    /// The `iss` Cognito (and the emulator) put in this pool's tokens.
    pub fn issuer(&self) -> String {
        format!("https://cognito-idp.{}.amazonaws.com/{}", self.region, self.config.user_pool_id)
    }

    pub fn cognito(&self) -> aws_sdk_cognitoidentityprovider::Client {
        aws_sdk_cognitoidentityprovider::Client::new(&self.sdk)
    }

    /// Cognito SignUp straight to the pool, bypassing invitegate. SECRET_HASH is
    /// computed with `secret` (the right one: `Some(client secret)`), or left out;
    /// `nonce` is sent as the reservation attribute, as the service sends it.
    pub async fn direct_sign_up(
        &self,
        email: &str,
        secret: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<
        aws_sdk_cognitoidentityprovider::operation::sign_up::SignUpOutput,
        aws_sdk_cognitoidentityprovider::error::SdkError<
            aws_sdk_cognitoidentityprovider::operation::sign_up::SignUpError,
        >,
    > {
        let attribute = |name: &str, value: &str| {
            aws_sdk_cognitoidentityprovider::types::AttributeType::builder().name(name).value(value).build().unwrap()
        };
        let mut attributes = vec![attribute("email", email)];
        if let Some(nonce) = nonce {
            attributes.push(attribute(backend_aws::RESERVATION_ATTRIBUTE, nonce));
        }
        self.cognito()
            .sign_up()
            .client_id(&self.config.client_id)
            .set_secret_hash(secret.map(|secret| backend_aws::secret_hash(email, &self.config.client_id, secret)))
            .username(email)
            .password(crate::helpers::PASSWORD)
            .set_user_attributes(Some(attributes))
            .send()
            .await
    }

    /// Emails to `to` that the emulator's SES delivered (ours, and Cognito's codes), oldest first.
    pub async fn mails_to(&self, to: &str) -> Vec<String> {
        let url = format!("{}/_ministack/ses/messages", self.endpoint.trim_end_matches('/'));
        let all: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        let mut mails: Vec<(String, String)> = all["messages"]
            .as_object()
            .into_iter()
            .flat_map(|accounts| accounts.values())
            .filter_map(Value::as_array)
            .flatten()
            .filter(|m| {
                m["To"]
                    .as_array()
                    .is_some_and(|list| list.iter().any(|a| a.as_str().is_some_and(|a| a.eq_ignore_ascii_case(to))))
            })
            .map(|m| {
                let stamp = m["Timestamp"].to_string();
                let body = format!(
                    "To: {to}\nSubject: {}\n\n{}",
                    m["Subject"].as_str().unwrap_or_default(),
                    m["BodyText"].as_str().unwrap_or_default()
                );
                (stamp, body)
            })
            .collect();
        mails.sort_by(|a, b| a.0.cmp(&b.0));
        mails.into_iter().map(|(_, body)| body).collect()
    }
}
