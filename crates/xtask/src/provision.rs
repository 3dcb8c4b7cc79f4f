//! Creating, against the SDK's endpoint (an emulator, or a scratch account),
//! everything the AWS backend runs on, configured as the original write-up
//! set it up. For tests and development; production uses `deploy/`.
//!
//! Order matters: the table, then the trigger's role and function, then the
//! pool with the trigger attached, the invoke permission, the confidential
//! client and the sender identity.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use aws_config::SdkConfig;
use aws_sdk_cognitoidentityprovider::types::{
    AccountRecoverySettingType, AdminCreateUserConfigType, AttributeDataType, ExplicitAuthFlowsType, LambdaConfigType,
    PasswordPolicyType, PreventUserExistenceErrorTypes, RecoveryOptionNameType, RecoveryOptionType,
    SchemaAttributeType, StringAttributeConstraintsType, UserPoolMfaType, UserPoolPolicyType, UserPoolTierType,
    UsernameAttributeType, UsernameConfigurationType, VerifiedAttributeType,
};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, Runtime};
use backend_aws::{BY_EMAIL_INDEX, BY_INVITER_INDEX};
use domain::{PasswordPolicy, SecretString, SignUpPolicy};

/// How long an administrator-set temporary password lasts: Cognito's default.
pub const TEMPORARY_PASSWORD_DAYS: i32 = 7;
/// The DynamoDB attribute DynamoDB's TTL reads.
pub const TTL_ATTRIBUTE: &str = "ttl";
pub const TRIGGER_TIMEOUT_SECS: i32 = 10;

pub struct ProvisionRequest<'a> {
    /// Prefix for every resource name.
    pub name: &'a str,
    pub policy: SignUpPolicy,
    pub mail_from: &'a str,
    /// A `provided.al2023` zip whose `bootstrap` is the `lambda-presignup` binary.
    pub lambda_zip: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Provisioned {
    pub user_pool_id: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub table: String,
    pub function_name: String,
}

fn ctx<T, E: std::error::Error + Send + Sync + 'static>(r: Result<T, E>, what: &str) -> anyhow::Result<T> {
    r.map_err(anyhow::Error::new).with_context(|| what.to_owned())
}

pub async fn create_table(sdk: &SdkConfig, table: &str) -> anyhow::Result<String> {
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let attribute = |name: &str, kind| AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build();
    let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
    let index = |name: &str, hash: &str, range: &str| -> anyhow::Result<GlobalSecondaryIndex> {
        ctx(
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(hash, KeyType::Hash)?)
                .key_schema(key(range, KeyType::Range)?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build(),
            "index definition",
        )
    };
    let created = dynamo
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(ctx(attribute("pk", ScalarAttributeType::S), "attribute")?)
        .attribute_definitions(ctx(attribute("sk", ScalarAttributeType::S), "attribute")?)
        .attribute_definitions(ctx(attribute("gsi1pk", ScalarAttributeType::S), "attribute")?)
        .attribute_definitions(ctx(attribute("gsi1sk", ScalarAttributeType::N), "attribute")?)
        .attribute_definitions(ctx(attribute("gsi2pk", ScalarAttributeType::S), "attribute")?)
        .attribute_definitions(ctx(attribute("gsi2sk", ScalarAttributeType::N), "attribute")?)
        .key_schema(ctx(key("pk", KeyType::Hash), "key")?)
        .key_schema(ctx(key("sk", KeyType::Range), "key")?)
        .global_secondary_indexes(index(BY_EMAIL_INDEX, "gsi1pk", "gsi1sk")?)
        .global_secondary_indexes(index(BY_INVITER_INDEX, "gsi2pk", "gsi2sk")?)
        .send()
        .await;
    let arn =
        ctx(created, "CreateTable")?.table_description.and_then(|d| d.table_arn).context("CreateTable gave no ARN")?;
    let ttl = TimeToLiveSpecification::builder().attribute_name(TTL_ATTRIBUTE).enabled(true).build();
    ctx(
        dynamo.update_time_to_live().table_name(table).time_to_live_specification(ctx(ttl, "ttl")?).send().await,
        "UpdateTimeToLive",
    )?;
    Ok(arn)
}

/// The trigger's role may read the invitation table and write its logs; nothing else.
pub fn trigger_policy(table_arn: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            { "Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": table_arn },
            { "Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*" }
        ]
    })
    .to_string()
}

pub async fn provision(sdk: &SdkConfig, request: ProvisionRequest<'_>) -> anyhow::Result<Provisioned> {
    let name = request.name;
    let table = format!("{name}-invitations");
    let table_arn = create_table(sdk, &table).await?;
    let function_name = format!("{name}-presignup");
    let function_arn =
        create_trigger(sdk, &function_name, &table, &table_arn, request.policy, request.lambda_zip).await?;
    let pool = create_pool(sdk, name, &function_name, &function_arn).await?;
    verify_sender(sdk, request.mail_from).await?;
    Ok(Provisioned {
        user_pool_id: pool.user_pool_id,
        client_id: pool.client_id,
        client_secret: pool.client_secret,
        table,
        function_name,
    })
}

/// The PreSignUp function and its least-privilege role (named like the function).
pub async fn create_trigger(
    sdk: &SdkConfig,
    function_name: &str,
    table: &str,
    table_arn: &str,
    policy: SignUpPolicy,
    lambda_zip: Vec<u8>,
) -> anyhow::Result<String> {
    let iam = aws_sdk_iam::Client::new(sdk);
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Principal": { "Service": "lambda.amazonaws.com" }, "Action": "sts:AssumeRole" }]
    });
    let role = ctx(
        iam.create_role().role_name(function_name).assume_role_policy_document(trust.to_string()).send().await,
        "CreateRole",
    )?;
    let role_arn = role.role.map(|r| r.arn).context("CreateRole gave no ARN")?;
    ctx(
        iam.put_role_policy()
            .role_name(function_name)
            .policy_name("read-invitations")
            .policy_document(trigger_policy(table_arn))
            .send()
            .await,
        "PutRolePolicy",
    )?;
    let lambda = aws_sdk_lambda::Client::new(sdk);
    let environment = Environment::builder()
        .variables("INVITEGATE_TABLE", table)
        .variables("INVITEGATE_POLICY", policy.as_str())
        .build();
    let function = lambda
        .create_function()
        .function_name(function_name)
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role_arn)
        .timeout(TRIGGER_TIMEOUT_SECS)
        .environment(environment)
        .code(FunctionCode::builder().zip_file(Blob::new(lambda_zip)).build())
        .send()
        .await;
    ctx(function, "CreateFunction")?.function_arn.context("CreateFunction gave no ARN")
}

pub struct PoolIds {
    pub user_pool_id: String,
    pub client_id: String,
    pub client_secret: SecretString,
}

/// Cognito's password policy from the domain's: the service checks passwords
/// against the domain's policy before Cognito does, so the two must agree.
pub fn cognito_password_policy(policy: &PasswordPolicy) -> anyhow::Result<PasswordPolicyType> {
    let minimum_length = i32::try_from(policy.min_length).context("password minimum length out of range")?;
    Ok(PasswordPolicyType::builder()
        .minimum_length(minimum_length)
        .require_uppercase(policy.require_uppercase)
        .require_lowercase(policy.require_lowercase)
        .require_numbers(policy.require_digit)
        .require_symbols(policy.require_symbol)
        .temporary_password_validity_days(TEMPORARY_PASSWORD_DAYS)
        .build())
}

/// The user pool as the write-up configured it, with the trigger attached, and its confidential client.
pub async fn create_pool(
    sdk: &SdkConfig,
    name: &str,
    function_name: &str,
    function_arn: &str,
) -> anyhow::Result<PoolIds> {
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(sdk);
    let password_policy = cognito_password_policy(&PasswordPolicy::default())?;
    let recovery = AccountRecoverySettingType::builder()
        .recovery_mechanisms(ctx(
            RecoveryOptionType::builder().name(RecoveryOptionNameType::VerifiedEmail).priority(1).build(),
            "recovery",
        )?)
        .build();
    let pool = cognito
        .create_user_pool()
        .pool_name(format!("{name}-users"))
        // Lite has everything invitegate uses; new pools otherwise default to Essentials (about 3x the price).
        .user_pool_tier(UserPoolTierType::Lite)
        .username_attributes(UsernameAttributeType::Email)
        // Emails are compared without case everywhere else; so must usernames be.
        .username_configuration(ctx(
            UsernameConfigurationType::builder().case_sensitive(false).build(),
            "username configuration",
        )?)
        .auto_verified_attributes(VerifiedAttributeType::Email)
        .policies(UserPoolPolicyType::builder().password_policy(password_policy).build())
        .mfa_configuration(UserPoolMfaType::Off)
        .account_recovery_setting(recovery)
        .admin_create_user_config(AdminCreateUserConfigType::builder().allow_admin_create_user_only(false).build())
        .lambda_config(LambdaConfigType::builder().pre_sign_up(function_arn).build())
        .schema(reservation_attribute()?)
        .schema(signed_out_attribute())
        .schema(disabled_attribute())
        .schema(import_attribute(backend_aws::FIREBASE_UID_ATTRIBUTE, "128"))
        .schema(import_attribute(backend_aws::CREATED_AT_ATTRIBUTE, "20"))
        .send()
        .await;
    let pool = ctx(pool, "CreateUserPool")?.user_pool.context("CreateUserPool gave no pool")?;
    let user_pool_id = pool.id.context("pool without id")?;
    let pool_arn = pool.arn.context("pool without ARN")?;
    let lambda = aws_sdk_lambda::Client::new(sdk);
    ctx(
        lambda
            .add_permission()
            .function_name(function_name)
            .statement_id(format!("cognito-{user_pool_id}"))
            .action("lambda:InvokeFunction")
            .principal("cognito-idp.amazonaws.com")
            .source_arn(pool_arn)
            .send()
            .await,
        "AddPermission",
    )?;
    let client = cognito
        .create_user_pool_client()
        .user_pool_id(&user_pool_id)
        .client_name(format!("{name}-server"))
        .generate_secret(true)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .prevent_user_existence_errors(PreventUserExistenceErrorTypes::Enabled)
        .enable_token_revocation(true)
        // The reservation nonce may be written at sign-up but never read back by the client.
        .set_write_attributes(Some(vec!["email".into(), backend_aws::RESERVATION_ATTRIBUTE.into()]))
        .set_read_attributes(Some(vec!["email".into(), "email_verified".into()]))
        .send()
        .await;
    let client = ctx(client, "CreateUserPoolClient")?.user_pool_client.context("no client")?;
    Ok(PoolIds {
        user_pool_id,
        client_id: client.client_id.context("client without id")?,
        client_secret: SecretString::new(client.client_secret.context("client without secret")?),
    })
}

/// `custom:reservation`: carries a sign-up's reservation nonce to the PreSignUp trigger.
fn reservation_attribute() -> anyhow::Result<SchemaAttributeType> {
    let name = backend_aws::RESERVATION_ATTRIBUTE.trim_start_matches("custom:");
    Ok(SchemaAttributeType::builder()
        .name(name)
        .attribute_data_type(AttributeDataType::String)
        .mutable(true)
        .string_attribute_constraints(
            StringAttributeConstraintsType::builder().min_length("1").max_length("64").build(),
        )
        .build())
}

/// `custom:signed_out_at`: the last global sign-out, in Unix seconds. Not in
/// the client's read or write attributes: only the service writes it.
fn signed_out_attribute() -> SchemaAttributeType {
    SchemaAttributeType::builder()
        .name(backend_aws::SIGNED_OUT_ATTRIBUTE.trim_start_matches("custom:"))
        .attribute_data_type(AttributeDataType::String)
        .mutable(true)
        .string_attribute_constraints(
            StringAttributeConstraintsType::builder().min_length("1").max_length("20").build(),
        )
        .build()
}

/// `custom:disabled`: "1" while an operator has disabled the user (see
/// `backend_aws::DISABLED_ATTRIBUTE` for why not AdminDisableUser). Service-written only.
fn disabled_attribute() -> SchemaAttributeType {
    SchemaAttributeType::builder()
        .name(backend_aws::DISABLED_ATTRIBUTE.trim_start_matches("custom:"))
        .attribute_data_type(AttributeDataType::String)
        .mutable(true)
        .string_attribute_constraints(StringAttributeConstraintsType::builder().min_length("1").max_length("1").build())
        .build()
}

/// A service-written string attribute of users imported from Firebase.
fn import_attribute(name: &str, max_length: &str) -> SchemaAttributeType {
    SchemaAttributeType::builder()
        .name(name.trim_start_matches("custom:"))
        .attribute_data_type(AttributeDataType::String)
        .mutable(true)
        .string_attribute_constraints(
            StringAttributeConstraintsType::builder().min_length("1").max_length(max_length).build(),
        )
        .build()
}

/// SES only sends from verified identities; emulators verify at once.
pub async fn verify_sender(sdk: &SdkConfig, mail_from: &str) -> anyhow::Result<()> {
    let address = mail_from.rsplit_once('<').map_or(mail_from, |(_, a)| a.trim_end_matches('>')).trim();
    let ses = aws_sdk_sesv2::Client::new(sdk);
    match ses.create_email_identity().email_identity(address).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_already_exists_exception()) => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context("CreateEmailIdentity")),
    }
}

/// Provisions everything under `name` and writes the service's environment as
/// `export` lines, the client secret and a fresh code key included: this is for
/// emulators and scratch accounts, so keep the output away from shared logs.
pub async fn provision_and_export(
    name: &str,
    lambda_zip: &Path,
    policy: SignUpPolicy,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let zip = std::fs::read(lambda_zip).with_context(|| format!("reading {}", lambda_zip.display()))?;
    let sdk = backend_aws::sdk_config().await;
    let mail_from =
        std::env::var(backend_aws::ENV_MAIL_FROM).unwrap_or_else(|_| format!("no-reply@{name}.example.com"));
    let provisioned =
        provision(&sdk, ProvisionRequest { name, policy, mail_from: &mail_from, lambda_zip: zip }).await?;
    writeln!(out, "export INVITEGATE_BACKEND=aws")?;
    writeln!(out, "export {}={}", backend_aws::ENV_POOL, provisioned.user_pool_id)?;
    writeln!(out, "export {}={}", backend_aws::ENV_CLIENT, provisioned.client_id)?;
    writeln!(out, "export {}={}", backend_aws::ENV_SECRET, provisioned.client_secret.expose())?;
    writeln!(out, "export {}={}", backend_aws::ENV_TABLE, provisioned.table)?;
    writeln!(out, "export {}='{}'", backend_aws::ENV_MAIL_FROM, mail_from)?;
    writeln!(out, "export {}={}", backend_aws::ENV_CODE_KEY, backend_aws::generate_code_key())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/template.yaml");

    /// The settings of the template's `PasswordPolicy:` block: the lines indented
    /// deeper than its key, as `Key: value` with any trailing comment dropped.
    fn password_policy_block(template: &str) -> Vec<(String, String)> {
        let mut lines = template.lines();
        let Some(indent) = lines.by_ref().find_map(|line| {
            line.trim_start().starts_with("PasswordPolicy:").then(|| line.len() - line.trim_start().len())
        }) else {
            return Vec::new();
        };
        lines
            .take_while(|line| line.trim().is_empty() || line.len() - line.trim_start().len() > indent)
            .filter_map(|line| {
                let setting = line.split('#').next().unwrap_or_default();
                let (key, value) = setting.split_once(':')?;
                Some((key.trim().to_owned(), value.trim().to_owned()))
            })
            .collect()
    }

    fn template_password_policy(template: &str) -> PasswordPolicy {
        let block = password_policy_block(template);
        let setting = |key: &str| -> &str {
            block
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("the template's PasswordPolicy has no {key}"))
        };
        let flag = |key: &str| match setting(key) {
            "true" => true,
            "false" => false,
            other => panic!("the template's {key} is {other:?}, not true or false"),
        };
        PasswordPolicy {
            min_length: setting("MinimumLength").parse().expect("MinimumLength is a number"),
            require_uppercase: flag("RequireUppercase"),
            require_lowercase: flag("RequireLowercase"),
            require_digit: flag("RequireNumbers"),
            require_symbol: flag("RequireSymbols"),
        }
    }

    #[test]
    fn template_password_policy_is_the_domains() {
        let template = std::fs::read_to_string(TEMPLATE).expect("deploy/template.yaml is readable");
        assert_eq!(template_password_policy(&template), PasswordPolicy::default());
        let temporary_days = password_policy_block(&template)
            .into_iter()
            .find(|(k, _)| k == "TemporaryPasswordValidityDays")
            .map(|(_, v)| v);
        assert_eq!(temporary_days, Some(TEMPORARY_PASSWORD_DAYS.to_string()));
    }

    /// The check above can fail: a template that differs reads back as a different policy.
    #[test]
    fn a_different_template_policy_is_told_apart() {
        let template = "\
      Policies:
        PasswordPolicy: # a comment
          MinimumLength: 10
          RequireUppercase: true
          RequireLowercase: true
          RequireNumbers: true
          RequireSymbols: false
          TemporaryPasswordValidityDays: 7
      MfaConfiguration: \"OFF\"
";
        let policy = template_password_policy(template);
        assert_eq!(policy.min_length, 10);
        assert!(!policy.require_symbol);
        assert_ne!(policy, PasswordPolicy::default());
    }

    #[test]
    fn cognito_policy_follows_the_domains() {
        let domain = PasswordPolicy { min_length: 12, require_symbol: false, ..PasswordPolicy::default() };
        let cognito = cognito_password_policy(&domain).expect("12 fits an i32");
        assert_eq!(cognito.minimum_length, Some(12));
        assert!(!cognito.require_symbols);
        assert!(cognito.require_numbers);
    }
}
