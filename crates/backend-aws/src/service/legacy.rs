//! Firebase passwords of imported users in the service's DynamoDB table (see
//! `domain::firebase`):
//! - `FBPARAMS#<id>`, `PARAMS` — a Firebase project's hash parameters
//!   (`signer_key`, `salt_separator` binary; `rounds`, `mem_cost`); `id` is
//!   the SHA-256 of them, so each set is stored once.
//! - `LEGACY#<email>`, `PASSWORD` — `st` (pending | active | retired),
//!   `params`, and `hash` and `salt` (binary) until the first sign-in.
//!
//! The import writes them with BatchWriteItem, resending what DynamoDB leaves
//! unprocessed (throttling) with exponential backoff.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use domain::firebase::{FirebaseHashParams, FirebasePassword, ImportedUser, LegacyPassword, LegacyState};
use domain::{Email, Error, LegacyPasswords};
use sha2::{Digest, Sha256};

use crate::unexpected;

type Item = HashMap<String, AttributeValue>;

/// BatchWriteItem takes at most 25 requests, BatchGetItem 100 keys.
const WRITE_BATCH: usize = 25;
const READ_BATCH: usize = 100;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const MAX_ROUNDS: usize = 12;

pub struct DynamoLegacyPasswords {
    client: Client,
    table: String,
    /// Parameter sets already read, by id: they never change.
    params: Mutex<HashMap<String, FirebaseHashParams>>,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn b(bytes: &[u8]) -> AttributeValue {
    AttributeValue::B(Blob::new(bytes))
}

fn legacy_key(email: &Email) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("LEGACY#{}", email.as_str().to_lowercase()))),
        ("sk".to_owned(), s("PASSWORD")),
    ])
}

fn params_key(id: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(format!("FBPARAMS#{id}"))), ("sk".to_owned(), s("PARAMS"))])
}

fn params_id(params: &FirebaseHashParams) -> String {
    let mut digest = Sha256::new();
    for part in [params.signer_key(), params.salt_separator()] {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part);
    }
    digest.update(params.rounds().to_be_bytes());
    digest.update(params.mem_cost().to_be_bytes());
    digest.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_b(item: &Item, name: &str) -> Option<Vec<u8>> {
    item.get(name).and_then(|v| v.as_b().ok()).map(|blob| blob.as_ref().to_vec())
}

fn get_n(item: &Item, name: &str) -> Option<u32> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

/// A conditional write whose condition did not hold did nothing, which is
/// what the caller wanted then (the record had moved on already).
fn unless_condition_failed<T, E>(
    result: Result<T, aws_sdk_dynamodb::error::SdkError<E>>,
    operation: &str,
) -> Result<(), Error>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException") => Ok(()),
        Err(e) => Err(unexpected(e, operation)),
    }
}

impl DynamoLegacyPasswords {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table, params: Mutex::new(HashMap::new()) }
    }

    /// Writes `items` in batches, resending what DynamoDB leaves unprocessed.
    async fn put_all(&self, items: Vec<Item>) -> Result<(), Error> {
        for chunk in items.chunks(WRITE_BATCH) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder().set_item(Some(item.clone())).build();
                    put.map(|put| WriteRequest::builder().put_request(put).build())
                        .map_err(|e| unexpected(e, "building a legacy password write"))
                })
                .collect::<Result<_, _>>()?;
            let mut backoff = FIRST_BACKOFF;
            for round in 0.. {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| unexpected(e, "DynamoDB BatchWriteItem (legacy passwords)"))?;
                requests = output.unprocessed_items.and_then(|mut left| left.remove(&self.table)).unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if round >= MAX_ROUNDS {
                    return Err(Error::Unavailable { retry_after: MAX_BACKOFF });
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        Ok(())
    }

    async fn activate_one(&self, email: &Email) -> Result<(), Error> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(legacy_key(email)))
            .update_expression("SET st = :active")
            .condition_expression("st = :pending")
            .expression_attribute_values(":active", s(LegacyState::Active.as_str()))
            .expression_attribute_values(":pending", s(LegacyState::Pending.as_str()))
            .send()
            .await;
        unless_condition_failed(result, "DynamoDB UpdateItem (activating a legacy password)")
    }

    async fn params_by_id(&self, id: &str) -> Result<FirebaseHashParams, Error> {
        if let Some(known) = self.params.lock().map_err(|_| Error::unexpected("params cache poisoned"))?.get(id) {
            return Ok(known.clone());
        }
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(params_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unexpected(e, "DynamoDB GetItem (Firebase parameters)"))?
            .item
            .ok_or_else(|| Error::unexpected("an imported password names parameters that are not stored"))?;
        let params = FirebaseHashParams::from_parts(
            get_b(&item, "signer_key").unwrap_or_default(),
            get_b(&item, "salt_separator").unwrap_or_default(),
            get_n(&item, "rounds").unwrap_or(0),
            get_n(&item, "mem_cost").unwrap_or(0),
        )
        .map_err(|e| Error::unexpected(format!("stored Firebase parameters: {e}")))?;
        self.params
            .lock()
            .map_err(|_| Error::unexpected("params cache poisoned"))?
            .insert(id.to_owned(), params.clone());
        Ok(params)
    }
}

#[async_trait]
impl LegacyPasswords for DynamoLegacyPasswords {
    async fn legacy_states(&self, emails: &[Email]) -> Result<Vec<(Email, LegacyState)>, Error> {
        let by_key: HashMap<String, &Email> =
            emails.iter().map(|email| (format!("LEGACY#{}", email.as_str().to_lowercase()), email)).collect();
        let mut found = Vec::new();
        let keys: Vec<Item> = emails.iter().map(legacy_key).collect();
        for chunk in keys.chunks(READ_BATCH) {
            let mut wanted = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(true)
                .projection_expression("pk, st")
                .build()
                .map_err(|e| unexpected(e, "building a legacy password read"))?;
            let mut backoff = FIRST_BACKOFF;
            for round in 0.. {
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, wanted)
                    .send()
                    .await
                    .map_err(|e| unexpected(e, "DynamoDB BatchGetItem (legacy passwords)"))?;
                for item in output.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default() {
                    let (Some(pk), Some(state)) = (get_s(&item, "pk"), get_s(&item, "st")) else { continue };
                    let state = LegacyState::parse(state).ok_or_else(|| Error::unexpected("stored legacy state"))?;
                    if let Some(email) = by_key.get(pk) {
                        found.push(((*email).clone(), state));
                    }
                }
                match output.unprocessed_keys.and_then(|mut left| left.remove(&self.table)) {
                    Some(left) if !left.keys().is_empty() => wanted = left,
                    _ => break,
                }
                if round >= MAX_ROUNDS {
                    return Err(Error::Unavailable { retry_after: MAX_BACKOFF });
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        Ok(found)
    }

    async fn record_pending(&self, params: &FirebaseHashParams, users: &[ImportedUser]) -> Result<(), Error> {
        let id = params_id(params);
        let mut params_item = params_key(&id);
        params_item.extend([
            ("signer_key".to_owned(), b(params.signer_key())),
            ("salt_separator".to_owned(), b(params.salt_separator())),
            ("rounds".to_owned(), AttributeValue::N(params.rounds().to_string())),
            ("mem_cost".to_owned(), AttributeValue::N(params.mem_cost().to_string())),
        ]);
        let mut items = vec![params_item];
        for user in users {
            let mut item = legacy_key(&user.email);
            item.insert("st".to_owned(), s(LegacyState::Pending.as_str()));
            item.insert("params".to_owned(), s(id.clone()));
            if let Some(password) = &user.password {
                item.insert("hash".to_owned(), b(&password.hash));
                item.insert("salt".to_owned(), b(&password.salt));
            }
            items.push(item);
        }
        self.put_all(items).await
    }

    async fn activate(&self, emails: &[Email]) -> Result<(), Error> {
        for chunk in emails.chunks(16) {
            futures::future::try_join_all(chunk.iter().map(|email| self.activate_one(email))).await?;
        }
        Ok(())
    }

    async fn forget_pending(&self, email: &Email) -> Result<(), Error> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(legacy_key(email)))
            .condition_expression("st = :pending")
            .expression_attribute_values(":pending", s(LegacyState::Pending.as_str()))
            .send()
            .await;
        unless_condition_failed(result, "DynamoDB DeleteItem (legacy password)")
    }

    async fn active_password(&self, email: &Email) -> Result<Option<LegacyPassword>, Error> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(legacy_key(email)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unexpected(e, "DynamoDB GetItem (legacy password)"))?
            .item;
        let Some(item) = item else { return Ok(None) };
        if get_s(&item, "st") != Some(LegacyState::Active.as_str()) {
            return Ok(None);
        }
        let (Some(hash), Some(salt), Some(id)) = (get_b(&item, "hash"), get_b(&item, "salt"), get_s(&item, "params"))
        else {
            return Ok(None);
        };
        let params = self.params_by_id(id).await?;
        Ok(Some(LegacyPassword { params, password: FirebasePassword { hash, salt } }))
    }

    async fn retire(&self, email: &Email) -> Result<(), Error> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(legacy_key(email)))
            .update_expression("SET st = :retired REMOVE #hash, salt")
            .condition_expression("st = :active")
            .expression_attribute_names("#hash", "hash")
            .expression_attribute_values(":retired", s(LegacyState::Retired.as_str()))
            .expression_attribute_values(":active", s(LegacyState::Active.as_str()))
            .send()
            .await;
        unless_condition_failed(result, "DynamoDB UpdateItem (retiring a legacy password)")
    }
}
