//! Generated `firebase auth:export` documents, for the import benchmark
//! (`xtask firebase-export`) and the tests.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use domain::firebase::FirebaseHashParams;
use serde_json::{Value, json};

/// Firebase's published example project parameters (its scrypt tool's README).
pub const SIGNER_KEY: &str = "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==";
pub const SALT_SEPARATOR: &str = "Bw==";
pub const ROUNDS: u32 = 8;
pub const MEM_COST: u32 = 14;

pub fn reference_params() -> FirebaseHashParams {
    FirebaseHashParams::new(SIGNER_KEY, SALT_SEPARATOR, ROUNDS, MEM_COST)
        .unwrap_or_else(|e| unreachable!("the reference parameters are valid: {e}"))
}

/// The password of generated user `i`: a few distinct ones, each hashed once
/// (scrypt at mem_cost 14 takes tens of milliseconds).
pub fn password_of(i: usize) -> String {
    format!("Fireb4se-pass-{}!", i % 4)
}

/// A `firebase auth:export` JSON document of `count` users named
/// `{prefix}{i}@example.com`, hashed with the reference parameters.
pub fn firebase_export(prefix: &str, count: usize) -> Value {
    let params = reference_params();
    let hashed: Vec<(String, String)> = (0..4)
        .map(|i| {
            let salt = format!("salt-{i}-{prefix}").into_bytes();
            (STANDARD.encode(params.hash(&password_of(i), &salt)), STANDARD.encode(&salt))
        })
        .collect();
    let users: Vec<Value> = (0..count)
        .map(|i| {
            let (hash, salt) = &hashed[i % 4];
            json!({
                "localId": format!("{prefix}-uid-{i}"),
                "email": format!("{prefix}{i}@example.com"),
                "emailVerified": i % 5 != 0,
                "passwordHash": hash,
                "salt": salt,
                "createdAt": (1_600_000_000_000_i64 + i as i64 * 1000).to_string(),
                "lastSignedInAt": "1700000000000",
                "disabled": false,
                "providerUserInfo": [{"providerId": "password", "email": format!("{prefix}{i}@example.com")}],
            })
        })
        .collect();
    json!({ "users": users })
}
