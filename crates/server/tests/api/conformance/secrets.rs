//! Passwords, codes and tokens never reach the log or an error response.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "current_thread")]
async fn secrets_stay_out_of_logs_and_error_responses() {
    let app = spawn_app_with(|c| c.service.policy = domain::SignUpPolicy::Open).await;
    app.operator_invite("kim@example.com").await;
    let code = app.access_code("kim@example.com").await;
    let mut responses = Vec::new();
    for body in [
        json!({ "email": "kim@example.com", "password": "weakpassword", "accessCode": code }),
        json!({ "email": "kim@example.com", "password": 31337421, "accessCode": code }),
        json!({ "email": "kim@example.com", "password": PASSWORD, "accessCode": "WRNG-C0DE-WRNG-C0DE" }),
    ] {
        responses.push(app.post("/sign_up", body).await.text().await.unwrap());
    }
    expect_json(app.sign_up("kim@example.com", PASSWORD, &code).await, StatusCode::OK).await;
    let tokens = app.sign_in("kim@example.com", PASSWORD).await;
    responses.push(
        app.post("/sign_in", json!({ "email": "kim@example.com", "password": "Wr0ng-password!" }))
            .await
            .text()
            .await
            .unwrap(),
    );
    app.post("/refresh", json!({ "refreshToken": tokens["refreshToken"] })).await;
    expect_json(
        app.post("/sign_up", json!({ "email": "lou@example.com", "password": PASSWORD })).await,
        StatusCode::OK,
    )
    .await;
    let confirmation = app.confirmation_code("lou@example.com").await;
    app.post("/confirm_sign_up", json!({ "email": "lou@example.com", "code": confirmation })).await;

    // The log of every test app in this binary, this one's included.
    let log = captured_log();
    assert!(log.contains("invited user signed up"), "the capture works: {log}");
    let secrets = [
        PASSWORD.to_owned(),
        "weakpassword".to_owned(),
        "31337421".to_owned(),
        "Wr0ng-password!".to_owned(),
        "WRNG-C0DE".to_owned(),
        code.clone(),
        code.replace('-', ""),
        tokens["accessToken"].as_str().unwrap().to_owned(),
        tokens["idToken"].as_str().unwrap().to_owned(),
        tokens["refreshToken"].as_str().unwrap().to_owned(),
        format!("code is {confirmation}"),
    ];
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "log leaks {secret}");
        for response in &responses {
            assert!(!response.contains(secret.as_str()), "response leaks {secret}: {response}");
        }
    }
}
