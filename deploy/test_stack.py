"""End-to-end test of deploy/template.yaml on an AWS emulator (run by deploy/test-stack.sh).

    test_stack.py LAMBDA_ZIP INVITEGATE_BIN XTASK_BIN

Needs AWS_ENDPOINT_URL, credentials and AWS_DEFAULT_REGION in the environment and the
pinned `aws` CLI first on PATH (test-stack.sh sees to both). Steps:

 1. upload the zip to S3 under a content-hash key, verify the SES sender, CreateStack
    (fresh stack name and NamePrefix) and wait for CREATE_COMPLETE;
 2. deploy/env-from-stack.sh STACK --init-code-key, evaluated by sh, then again without
    the flag (must print the same: a valid code key is never replaced);
 3. compare the stack's pool, client, table and trigger with what
    `xtask provision` creates (crates/xtask/src/provision.rs);
 4. an uninvited direct Cognito SignUp (correct SECRET_HASH) must be refused by the trigger;
 5. the service binary on the stack's environment: invite create, the code from the
    emulator's SES outbox, serve, POST /sign_up, POST /sign_in, GET /me.

Creates resources and deletes none (the emulator is thrown away by its caller).
Prints no secret. Exits 1 with the failing step and what differed.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "template.yaml"
ENV_FROM_STACK = ROOT / "deploy" / "env-from-stack.sh"
BUCKET = "invitegate-stack-test"
PASSWORD = "Corr3ct-Horse!"
STACK_TIMEOUT_S = 90
SERVER_START_TIMEOUT_S = 30
HTTP_TIMEOUT_S = 20
# The variables env-from-stack.sh must export.
SERVICE_ENV = (
    "INVITEGATE_BACKEND",
    "AWS_REGION",
    "AWS_COGNITO_USER_POOL_ID",
    "AWS_COGNITO_APP_CLIENT_ID",
    "AWS_COGNITO_APP_CLIENT_SECRET",
    "INVITEGATE_TABLE",
    "INVITEGATE_POLICY",
    "INVITEGATE_CODE_KEY",
    "INVITEGATE_MAIL_FROM",
)


class Fail(Exception):
    pass


T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def client(service):
    return boto3.client(service, endpoint_url=os.environ["AWS_ENDPOINT_URL"])


def error_code(e):
    return e.response.get("Error", {}).get("Code", "")


# ------------------------------------------------------------------ helpers


def sh_eval(exports, env):
    """Evaluates `export` lines with sh, as `eval "$(...)"` would; returns the exported variables."""
    r = subprocess.run(
        ["sh", "-c", 'eval "$1" && exec env -0', "sh", exports],
        env=env,
        capture_output=True,
        timeout=30,
    )
    if r.returncode != 0:
        raise Fail(f"sh could not evaluate the export lines: {r.stderr.decode(errors='replace').strip()}")
    after = dict(item.split("=", 1) for item in r.stdout.decode().split("\0") if "=" in item)
    names = re.findall(r"^export ([A-Za-z_][A-Za-z0-9_]*)=", exports, re.MULTILINE)
    return {name: after[name] for name in names if name in after}


def secret_hash(secret, username, client_id):
    digest = hmac.new(secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, token=None):
    """Returns (status, parsed JSON or raw text)."""
    headers = {"content-type": "application/json"} if body is not None else {}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def flatten(value, path=""):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(flatten(v, f"{path}.{k}" if path else str(k)))
        return out or {path: {}}
    return {path: value}


def normalize(value, replacements):
    """Replaces run-specific names (prefix, pool id) so both sides can be compared."""
    if isinstance(value, dict):
        return {k: normalize(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v, replacements) for v in value]
    if isinstance(value, str):
        for old, new in replacements:
            value = value.replace(old, new)
    return value


# ------------------------------------------------------------------ settings
# What the comparison looks at, read back from the live resources and reduced to
# what the template and provision.rs decide. Left out on purpose:
#  - DynamoDB TimeToLive and point-in-time recovery: ministack ignores a
#    CloudFormation table's TimeToLiveSpecification and
#    PointInTimeRecoverySpecification (and reports PITR disabled everywhere), so
#    the stack side cannot be read back; TTL is logged for the record. Known
#    from the source, not visible here: provision.rs enables TTL but never PITR
#    (the template enables both).
#  - IAM: the trigger role's policy (provision.rs: logs actions on "*" with
#    CreateLogGroup; the template: its own log group only) and the invoke
#    permission's SourceAccount condition (template only) differ on purpose;
#    the template's is the least-privilege one. Invoke permissions are compared
#    by principal, action and source ARN.
#  - EmailConfiguration: differs by design. The stack is deployed with a
#    SenderEmail (the service needs INVITEGATE_MAIL_FROM), so Cognito mails
#    through SES (DEVELOPER); provision.rs keeps Cognito's default sender. The
#    stack's value is checked on its own instead (check_stack_email).
#  - Names, ids, ARNs, timestamps, tags and counters: per resource. Names that
#    embed the prefix are compared after replacing it with <name>.
#  - ProvisionedThroughput: ministack reports 5/5 for a PAY_PER_REQUEST table
#    made by CloudFormation and 0/0 for one made by CreateTable; BillingMode is
#    what decides.

TOKEN_UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
# Cognito's defaults when a client sets no lifetime: access and id tokens 1 hour
# (unit: hours), refresh tokens 30 days (unit: days).
TOKEN_DEFAULTS = {"AccessToken": (1, "hours"), "IdToken": (1, "hours"), "RefreshToken": (30, "days")}


def token_lifetimes(c):
    """Effective lifetimes in seconds, and which ones the client leaves to Cognito's default."""
    units = c.get("TokenValidityUnits") or {}
    effective, unset = {}, []
    for kind, (default_value, default_unit) in TOKEN_DEFAULTS.items():
        value = c.get(f"{kind}Validity")
        if value is None:
            unset.append(kind)
            value, unit = default_value, default_unit
        else:
            unit = units.get(kind, default_unit)
        effective[f"{kind}Seconds"] = value * TOKEN_UNIT_SECONDS[unit]
    return effective, unset


def key_schema(elements):
    return {e["KeyType"]: e["AttributeName"] for e in elements}


def settings(pool_id, client_id, table, function, name):
    idp, ddb, lam = client("cognito-idp"), client("dynamodb"), client("lambda")
    pool = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    app = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    t = ddb.describe_table(TableName=table)["Table"]
    fn = lam.get_function_configuration(FunctionName=function)
    lifetimes, unset_lifetimes = token_lifetimes(app)
    try:
        statements = json.loads(lam.get_policy(FunctionName=function)["Policy"])["Statement"]
    except ClientError as e:
        if error_code(e) != "ResourceNotFoundException":
            raise
        statements = []
    found = {
        "pool": {
            "PasswordPolicy": pool.get("Policies", {}).get("PasswordPolicy"),
            "UsernameAttributes": sorted(pool.get("UsernameAttributes") or []),
            "AliasAttributes": sorted(pool.get("AliasAttributes") or []),
            "AutoVerifiedAttributes": sorted(pool.get("AutoVerifiedAttributes") or []),
            "MfaConfiguration": pool.get("MfaConfiguration"),
            "AccountRecoverySetting": sorted(
                (m["Priority"], m["Name"])
                for m in (pool.get("AccountRecoverySetting") or {}).get("RecoveryMechanisms", [])
            ),
            "AllowAdminCreateUserOnly": (pool.get("AdminCreateUserConfig") or {}).get("AllowAdminCreateUserOnly"),
            "UserPoolTier": pool.get("UserPoolTier"),
            "DeletionProtection": pool.get("DeletionProtection"),
            "LambdaConfig": pool.get("LambdaConfig") or {},
        },
        "client": {
            "ExplicitAuthFlows": sorted(app.get("ExplicitAuthFlows") or []),
            "PreventUserExistenceErrors": app.get("PreventUserExistenceErrors"),
            "HasSecret": bool(app.get("ClientSecret")),
            "EnableTokenRevocation": app.get("EnableTokenRevocation"),
            "AllowedOAuthFlows": sorted(app.get("AllowedOAuthFlows") or []),
            "EffectiveTokenLifetimes": lifetimes,
        },
        "table": {
            "KeySchema": key_schema(t["KeySchema"]),
            "AttributeDefinitions": {a["AttributeName"]: a["AttributeType"] for a in t["AttributeDefinitions"]},
            "GlobalSecondaryIndexes": {
                g["IndexName"]: {
                    "KeySchema": key_schema(g["KeySchema"]),
                    "ProjectionType": g["Projection"]["ProjectionType"],
                    "NonKeyAttributes": sorted(g["Projection"].get("NonKeyAttributes") or []),
                }
                for g in t.get("GlobalSecondaryIndexes") or []
            },
            "LocalSecondaryIndexes": sorted(i["IndexName"] for i in t.get("LocalSecondaryIndexes") or []),
            "BillingMode": (t.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED"),
            "StreamEnabled": (t.get("StreamSpecification") or {}).get("StreamEnabled", False),
        },
        "trigger": {
            "Runtime": fn.get("Runtime"),
            "Handler": fn.get("Handler"),
            "Timeout": fn.get("Timeout"),
            "MemorySize": fn.get("MemorySize"),
            "Architectures": fn.get("Architectures") or ["x86_64"],
            "PackageType": fn.get("PackageType"),
            "CodeSha256": fn.get("CodeSha256"),
            "Environment": (fn.get("Environment") or {}).get("Variables", {}),
            # Who may invoke it: (principal, action, source ARN) per statement.
            "InvokePermissions": sorted(
                [
                    s.get("Principal", {}).get("Service"),
                    s.get("Action"),
                    s.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn"),
                ]
                for s in statements
                if s.get("Effect") == "Allow"
            ),
        },
    }
    ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    extra = {"unset_lifetimes": unset_lifetimes, "ttl": ttl}
    return normalize(found, [(pool_id, "<pool>"), (name, "<name>")]), extra


def compare(stack, provisioned):
    a, b = flatten(stack), flatten(provisioned)
    return [
        f"  {path}:\n      template  {a.get(path, '<absent>')!r}\n      provision {b.get(path, '<absent>')!r}"
        for path in sorted(set(a) | set(b))
        if a.get(path, "<absent>") != b.get(path, "<absent>")
    ]


# ------------------------------------------------------------------ steps


def upload_zip(zip_path):
    s3 = client("s3")
    data = zip_path.read_bytes()
    key = f"presignup-{hashlib.sha256(data).hexdigest()}.zip"
    try:
        s3.create_bucket(Bucket=BUCKET)
    except ClientError as e:
        if error_code(e) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    try:
        s3.head_object(Bucket=BUCKET, Key=key)
    except ClientError as e:
        if error_code(e) not in ("404", "NoSuchKey", "NotFound"):
            raise
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    size = s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
    if size != len(data):
        raise Fail(f"s3://{BUCKET}/{key} holds {size} bytes, the zip {len(data)}")
    return key, base64.b64encode(hashlib.sha256(data).digest()).decode()


def verify_sender(address):
    ses = client("sesv2")
    try:
        ses.create_email_identity(EmailIdentity=address)
    except ClientError as e:
        if error_code(e) != "AlreadyExistsException":
            raise
    identity = ses.get_email_identity(EmailIdentity=address)
    if not identity.get("VerifiedForSendingStatus"):
        raise Fail(f"SES identity {address} is not verified for sending")


def stack_events(cfn, stack):
    events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
    lines = [
        f"  {e.get('LogicalResourceId', '?'):28} {e.get('ResourceType', '?'):34} "
        f"{e.get('ResourceStatus', '?'):20} {e.get('ResourceStatusReason') or ''}"
        for e in reversed(events)
    ]
    return "\n".join(lines) or "  (no events)"


def create_stack(stack, parameters):
    cfn = client("cloudformation")
    cfn.create_stack(
        StackName=stack,
        TemplateBody=TEMPLATE.read_text(),
        Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        OnFailure="DO_NOTHING",
    )
    deadline = time.monotonic() + STACK_TIMEOUT_S
    while True:
        s = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        status = s["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            break
        if time.monotonic() > deadline:
            raise Fail(f"stack {stack} still {status} after {STACK_TIMEOUT_S}s; events:\n{stack_events(cfn, stack)}")
        time.sleep(0.5)
    if status != "CREATE_COMPLETE":
        raise Fail(
            f"stack {stack} is {status} ({s.get('StackStatusReason') or 'no reason given'}); "
            f"events:\n{stack_events(cfn, stack)}"
        )
    resources = cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    incomplete = [f"{r['LogicalResourceId']} {r['ResourceStatus']}" for r in resources if r["ResourceStatus"] != "CREATE_COMPLETE"]
    if incomplete:
        raise Fail(f"stack {stack} is CREATE_COMPLETE but not every resource is: {incomplete}")
    return {o["OutputKey"]: o["OutputValue"] for o in s.get("Outputs", [])}, len(resources)


def env_from_stack(stack, base_env, init):
    args = ["sh", str(ENV_FROM_STACK), stack] + (["--init-code-key"] if init else [])
    r = subprocess.run(args, env=base_env, capture_output=True, text=True, timeout=120)
    for line in r.stderr.splitlines():
        log(f"  {line}")
    if r.returncode != 0:
        raise Fail(f"{' '.join(args[1:])} exited {r.returncode}")
    return r.stdout


def check_service_env(env, outputs, sender):
    missing = [k for k in SERVICE_ENV if not env.get(k)]
    if missing:
        raise Fail(f"env-from-stack.sh did not export {missing}")
    idp = client("cognito-idp")
    actual_secret = idp.describe_user_pool_client(
        UserPoolId=outputs["UserPoolId"], ClientId=outputs["AppClientId"]
    )["UserPoolClient"]["ClientSecret"]
    expected = {
        "INVITEGATE_BACKEND": "aws",
        "AWS_REGION": os.environ["AWS_DEFAULT_REGION"],
        "AWS_COGNITO_USER_POOL_ID": outputs["UserPoolId"],
        "AWS_COGNITO_APP_CLIENT_ID": outputs["AppClientId"],
        "INVITEGATE_TABLE": outputs["InvitationTableName"],
        "INVITEGATE_POLICY": "invite_only",
        "INVITEGATE_MAIL_FROM": sender,
    }
    wrong = [f"{k}={env[k]!r} (expected {v!r})" for k, v in expected.items() if env[k] != v]
    if env["AWS_COGNITO_APP_CLIENT_SECRET"] != actual_secret:
        wrong.append("AWS_COGNITO_APP_CLIENT_SECRET is not the app client's secret")
    try:
        key = base64.b64decode(env["INVITEGATE_CODE_KEY"], validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        wrong.append("INVITEGATE_CODE_KEY is not base64 of 32 bytes")
    if wrong:
        raise Fail("env-from-stack.sh exported wrong values: " + "; ".join(wrong))


def check_stack_email(pool_id, sender):
    """The stack's pool sends through SES from SenderEmail (see the exclusions above)."""
    config = client("cognito-idp").describe_user_pool(UserPoolId=pool_id)["UserPool"].get("EmailConfiguration") or {}
    want = {
        "EmailSendingAccount": "DEVELOPER",
        "From": sender,
        "SourceArn": f"arn:aws:ses:{os.environ['AWS_DEFAULT_REGION']}:",
    }
    if (
        config.get("EmailSendingAccount") != want["EmailSendingAccount"]
        or config.get("From") != sender
        or not str(config.get("SourceArn", "")).startswith(want["SourceArn"])
        or not str(config.get("SourceArn", "")).endswith(f":identity/{sender}")
    ):
        raise Fail(f"stack pool EmailConfiguration {config!r}, expected DEVELOPER from {sender} via its SES identity")


def provision(xtask_path, name, zip_path, base_env):
    args = [str(xtask_path), "provision", "--name", name, "--lambda-zip", str(zip_path)]
    r = subprocess.run(args, env=base_env, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise Fail(f"xtask provision exited {r.returncode}:\n{r.stderr.strip()}")
    return sh_eval(r.stdout, base_env)


def uninvited_sign_up(env):
    idp = client("cognito-idp")
    pool, client_id = env["AWS_COGNITO_USER_POOL_ID"], env["AWS_COGNITO_APP_CLIENT_ID"]
    email = f"uninvited-{secrets.token_hex(4)}@example.com"
    try:
        idp.sign_up(
            ClientId=client_id,
            SecretHash=secret_hash(env["AWS_COGNITO_APP_CLIENT_SECRET"], email, client_id),
            Username=email,
            Password=PASSWORD,
            UserAttributes=[{"Name": "email", "Value": email}],
        )
    except ClientError as e:
        if error_code(e) != "UserLambdaValidationException":
            raise Fail(f"uninvited SignUp failed with {error_code(e)} ({e}), expected UserLambdaValidationException")
        log(f"  refused: {e.response['Error'].get('Message', '')}")
    else:
        raise Fail(f"an uninvited direct SignUp of {email} succeeded: the PreSignUp trigger let it through")
    try:
        idp.admin_get_user(UserPoolId=pool, Username=email)
    except ClientError as e:
        if error_code(e) != "UserNotFoundException":
            raise
    else:
        raise Fail(f"the refused SignUp still created {email} in the pool")


def access_code_for(email, timeout_s=10):
    url = os.environ["AWS_ENDPOINT_URL"].rstrip("/") + "/_ministack/ses/messages"
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = http("GET", url)
        if status != 200 or not isinstance(body, dict):
            raise Fail(f"GET {url} answered {status}: {body!r}")
        for messages in (body.get("messages") or {}).values():
            for m in reversed(messages):
                if email not in json.dumps(m.get("To")):
                    continue
                for line in str(m.get("BodyText") or "").splitlines():
                    if line.startswith("Your access code: "):
                        return line.split(": ", 1)[1].strip()
        if time.monotonic() > deadline:
            raise Fail(f"no message with 'Your access code:' to {email} in the emulator's SES outbox")
        time.sleep(0.3)


def expect(what, status, body, want, check):
    """Fails unless HTTP 200 and check(body); `want` says what check looks for. Tokens are not shown."""
    shown = {k: ("..." if k.endswith("Token") else v) for k, v in body.items()} if isinstance(body, dict) else body
    if status != 200 or not isinstance(body, dict) or not check(body):
        raise Fail(f"{what}: HTTP {status} {shown!r}, expected 200 with {want}")
    log(f"  {what}: {status} {shown}")


def run_service(bin_path, service_env, workdir):
    email = f"e2e-{secrets.token_hex(4)}@example.com"
    env = dict(service_env, INVITEGATE_DATA_DIR=str(workdir / "service-data"))
    r = subprocess.run(
        [str(bin_path), "--backend", "aws", "invite", "create", email],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if r.returncode != 0:
        raise Fail(f"invitegate invite create exited {r.returncode}:\n{r.stderr.strip()}")
    log(f"  invited {email}")
    code = access_code_for(email)
    log("  read the access code from the SES outbox")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server_log = workdir / "serve.log"
    with open(server_log, "wb") as out:
        server = subprocess.Popen(
            [str(bin_path), "--backend", "aws", "serve", "--listen", f"127.0.0.1:{port}"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                raise Fail(f"invitegate serve exited {server.returncode} at start; log:\n{tail(server_log)}")
            try:
                if http("GET", base + "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise Fail(f"invitegate serve not healthy after {SERVER_START_TIMEOUT_S}s; log:\n{tail(server_log)}")
            time.sleep(0.2)
        log(f"  serve is up on {base}")
        try:
            status, body = http("POST", base + "/sign_up", {"email": email, "password": PASSWORD, "accessCode": code})
            expect("POST /sign_up", status, body, "userConfirmed true", lambda b: b.get("userConfirmed") is True)
            status, body = http("POST", base + "/sign_in", {"email": email, "password": PASSWORD})
            expect("POST /sign_in", status, body, "an accessToken", lambda b: bool(b.get("accessToken")))
            status, me = http("GET", base + "/me", token=body["accessToken"])
            expect("GET /me", status, me, f"email {email}", lambda b: b.get("email") == email)
        except Fail as e:
            raise Fail(f"{e}\nserver log:\n{tail(server_log)}") from None
    finally:
        stop(server)
    user = client("cognito-idp").admin_get_user(UserPoolId=service_env["AWS_COGNITO_USER_POOL_ID"], Username=email)
    if user.get("UserStatus") != "CONFIRMED":
        raise Fail(f"{email} is {user.get('UserStatus')} in the stack's pool, expected CONFIRMED")


def stop(process):
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        log("  serve ignored SIGTERM for 10 s; killing it")
        process.kill()
        process.wait()


def tail(path, lines=30):
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(cannot read {path}: {e})"


# ------------------------------------------------------------------ main


def main(zip_path, bin_path, xtask_path):
    run = f"{time.strftime('%H%M%S')}-{secrets.token_hex(3)}"
    stack = f"e2e-{run}"  # also the NamePrefix
    prov_name = f"e2e-prov-{run}"
    sender = f"no-reply@{stack}.example.com"
    # Callers' INVITEGATE_* settings must not leak into the service or provision.
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("INVITEGATE_")}
    workdir = Path(tempfile.mkdtemp(prefix="invitegate-stack-test-"))
    step = "setup"
    try:
        step = "1. deploy the template"
        log(f"{step}: stack {stack} on {os.environ['AWS_ENDPOINT_URL']}")
        key, code_sha = upload_zip(zip_path)
        log(f"  uploaded s3://{BUCKET}/{key}")
        verify_sender(sender)
        outputs, count = create_stack(
            stack,
            {
                "NamePrefix": stack,
                "SignUpPolicy": "invite_only",
                "SenderEmail": sender,
                "LambdaCodeBucket": BUCKET,
                "LambdaCodeKey": key,
            },
        )
        log(f"  CREATE_COMPLETE, {count} resources")

        step = "2. deploy/env-from-stack.sh"
        log(step)
        exports = env_from_stack(stack, base_env, init=True)
        stack_vars = sh_eval(exports, base_env)
        check_service_env(stack_vars, outputs, sender)
        if env_from_stack(stack, base_env, init=False) != exports:
            raise Fail("a second run without --init-code-key printed a different environment")
        log(f"  exports {', '.join(sorted(stack_vars))}; a second run prints the same")

        step = "3. template vs xtask provision"
        log(step)
        prov_vars = provision(xtask_path, prov_name, zip_path, base_env)
        stack_settings, stack_extra = settings(
            outputs["UserPoolId"], outputs["AppClientId"], outputs["InvitationTableName"],
            outputs["PreSignUpFunctionName"], stack,
        )
        prov_settings, prov_extra = settings(
            prov_vars["AWS_COGNITO_USER_POOL_ID"], prov_vars["AWS_COGNITO_APP_CLIENT_ID"],
            prov_vars["INVITEGATE_TABLE"], f"{prov_name}-presignup", prov_name,
        )
        if stack_settings["trigger"]["CodeSha256"] != code_sha:
            raise Fail("the stack's function does not run the uploaded zip (CodeSha256 differs)")
        for side, extra in (("template", stack_extra), ("provision", prov_extra)):
            if extra["unset_lifetimes"]:
                log(f"  NOTE: {side} leaves {', '.join(extra['unset_lifetimes'])} validity to Cognito's "
                    "default; compared as effective lifetimes")
            log(f"  NOTE: {side} table TTL as read back: {extra['ttl']} (not compared: ministack "
                "ignores a stack table's TimeToLiveSpecification)")
        diffs = compare(stack_settings, prov_settings)
        if diffs:
            raise Fail("the stack and `xtask provision` differ:\n" + "\n".join(diffs))
        check_stack_email(outputs["UserPoolId"], sender)
        log(f"  {len(flatten(stack_settings))} settings identical (pool, client, table, trigger)")

        step = "4. uninvited direct SignUp"
        log(step)
        uninvited_sign_up(stack_vars)

        step = "5. invite, sign up, sign in, /me through the service"
        log(step)
        run_service(bin_path, dict(base_env, **stack_vars), workdir)
    except Fail as e:
        print(f"\ntest-stack: FAIL in step {step}:\n{e}\n(work files kept in {workdir})", file=sys.stderr)
        return 1
    except Exception:  # noqa: BLE001 - any error fails the test, with its traceback
        traceback.print_exc()
        print(f"\ntest-stack: FAIL in step {step} (unexpected error above; work files in {workdir})", file=sys.stderr)
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    log(f"test-stack: OK (stack {stack})")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: test_stack.py LAMBDA_ZIP INVITEGATE_BIN XTASK_BIN")
    for var in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        if not os.environ.get(var):
            sys.exit(f"test_stack.py: {var} is not set (run deploy/test-stack.sh)")
    sys.exit(main(*(Path(arg).resolve() for arg in sys.argv[1:4])))
