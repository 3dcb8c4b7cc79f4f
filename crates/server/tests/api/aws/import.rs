//! `invite import --from-dynamodb`: the write-up's own invitation table (email
//! and access code per item) read by a paginated Scan, its codes then working
//! for sign-up. Needs DynamoDB, so it runs on the emulator.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest, ScalarAttributeType,
    WriteRequest,
};
use reqwest::StatusCode;

use crate::conformance::migration::{import_invitations, invite_import_args};
use crate::helpers::*;

#[tokio::test]
#[ignore = "needs the AWS emulator: scripts/test.sh runs it"]
async fn invitations_are_scanned_page_by_page_from_the_old_dynamodb_table() {
    assert_eq!(test_backend(), TestBackend::Aws, "this test needs the emulator: run ./scripts/test.sh");
    let app = spawn_app().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&backend_aws::sdk_config().await);
    let table = format!("old-invitations-{}", uuid::Uuid::new_v4().simple());
    dynamo
        .create_table()
        .table_name(&table)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("id").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().unwrap())
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    // More than one Scan page (500 items each), as the write-up kept them:
    // an email and an access code, here a mix of strong and six-digit codes.
    let count = 640;
    let code_of =
        |i: usize| if i.is_multiple_of(10) { format!("{:06}", 100_000 + i) } else { format!("Old-{i:04}-kQ8x-Zp3W") };
    let items: Vec<WriteRequest> = (0..count)
        .map(|i| {
            let item = HashMap::from([
                ("id".to_owned(), AttributeValue::S(format!("inv-{i}"))),
                ("email".to_owned(), AttributeValue::S(format!("scan{i}@example.com"))),
                ("accessCode".to_owned(), AttributeValue::S(code_of(i))),
            ]);
            WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(item)).build().unwrap()).build()
        })
        .collect();
    for chunk in items.chunks(25) {
        dynamo.batch_write_item().request_items(&table, chunk.to_vec()).send().await.unwrap();
    }

    let mut args = invite_import_args(std::path::PathBuf::new(), false, false);
    args.file = None;
    args.from_dynamodb = Some(table.clone());
    let dir = tempfile::tempdir().unwrap();
    args.rejects = Some(dir.path().join("rejected.csv"));
    let report = import_invitations(&app, &args).await;
    assert!(report.contains(&format!("Imported {count} invitations; replaced 0 weak codes; skipped 0")), "{report}");
    assert!(report.contains(&format!("{} of the imported codes look guessable", count / 10)), "{report}");

    for i in [0, 1, 499, 500, count - 1] {
        let response = app.sign_up(&format!("scan{i}@example.com"), PASSWORD, &code_of(i)).await;
        expect_json(response, StatusCode::OK).await;
    }
    let again = import_invitations(&app, &args).await;
    assert!(again.contains(&format!("Imported 0 invitations; replaced 0 weak codes; skipped {count}")), "{again}");
}
