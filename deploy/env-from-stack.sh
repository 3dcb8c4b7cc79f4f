#!/bin/sh
# deploy/env-from-stack.sh STACK [--init-code-key]
#
# Prints `export VAR=value` lines for the service's environment from the
# stack's outputs and its two Secrets Manager secrets:
#   eval "$(deploy/env-from-stack.sh invitegate)"
# The output holds the client secret and the code key: don't log it.
# Uses the aws CLI's usual configuration (AWS_PROFILE, AWS_DEFAULT_REGION —
# or AWS_REGION with CLI v2 —,
# AWS_ENDPOINT_URL, ...); the account's region is exported as AWS_REGION.
#
# INVITEGATE_CODE_KEY starts as a placeholder the service rejects (see
# CodeKeySecret in template.yaml). With --init-code-key, a placeholder is
# replaced by `openssl rand -base64 32`; a valid key is never changed (that
# would invalidate every outstanding invitation code). Without it, a
# placeholder is an error that names the command to run.
set -eu
die() { echo "env-from-stack.sh: $*" >&2; exit 1; }
[ $# -ge 1 ] || die "usage: $0 STACK [--init-code-key]"
stack=$1
init_key=false
[ "${2:-}" = --init-code-key ] && init_key=true

outputs=$(aws cloudformation describe-stacks --stack-name "$stack" \
    --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text) \
    || die "describe-stacks $stack failed"
output() { printf '%s\n' "$outputs" | awk -F '\t' -v k="$1" '$1 == k { print $2; exit }'; }
secret() {
    aws secretsmanager get-secret-value --secret-id "$1" --query SecretString --output text \
        || die "get-secret-value $1 failed"
}
# 'value' with single quotes escaped, for sh.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
emit() { printf 'export %s=%s\n' "$1" "$(quote "$2")"; }
need() {
    v=$(output "$1")
    [ -n "$v" ] && [ "$v" != None ] || die "stack $stack has no output $1"
    printf '%s' "$v"
}
valid_key() { [ "$(printf '%s' "$1" | base64 -d 2>/dev/null | wc -c)" -eq 32 ] && [ ${#1} -eq 44 ]; }

pool=$(need UserPoolId)
client=$(need AppClientId)
table=$(need InvitationTableName)
region=$(need Region)
policy=$(need SignUpPolicy)
client_secret=$(secret "$(need AppClientSecretArn)")
key_arn=$(need CodeKeySecretArn)
code_key=$(secret "$key_arn")
if ! valid_key "$code_key"; then
    $init_key || die "INVITEGATE_CODE_KEY is still the placeholder; run once:
  aws secretsmanager put-secret-value --secret-id '$key_arn' --secret-string \"\$(openssl rand -base64 32)\"
(or rerun with --init-code-key)"
    code_key=$(openssl rand -base64 32)
    aws secretsmanager put-secret-value --secret-id "$key_arn" --secret-string "$code_key" >/dev/null \
        || die "put-secret-value $key_arn failed"
    echo "env-from-stack.sh: set a new INVITEGATE_CODE_KEY in $key_arn" >&2
fi
mail_from=$(output MailFrom)

emit INVITEGATE_BACKEND aws
emit AWS_REGION "$region"
emit AWS_COGNITO_USER_POOL_ID "$pool"
emit AWS_COGNITO_APP_CLIENT_ID "$client"
emit AWS_COGNITO_APP_CLIENT_SECRET "$client_secret"
emit INVITEGATE_TABLE "$table"
emit INVITEGATE_POLICY "$policy"
emit INVITEGATE_CODE_KEY "$code_key"
if [ -n "$mail_from" ] && [ "$mail_from" != None ]; then
    emit INVITEGATE_MAIL_FROM "$mail_from"
else
    echo "env-from-stack.sh: the stack has no SenderEmail; set INVITEGATE_MAIL_FROM to a verified SES sender" >&2
fi
