//! Attempt counters in the invitation table, so that every instance of the
//! service counts together: item `LIMIT#<pool>#<key>`, `WINDOW` with `started`,
//! `attempts` and a `ttl` past the window's end. Counting is an atomic
//! conditional increment (no read first, so a hot key such as one client's
//! never collides with itself); when it is refused, the domain's window rule
//! (`limiter::next_step`) says whether the window is full or a new one starts.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use domain::limiter::{Window, WindowStep, counted_in, next_step, too_many};
use domain::{AttemptCounter, AttemptKey, Error};
use time::{Duration, OffsetDateTime};

use crate::unexpected;

/// Races lost to other instances moving a window on, before giving up with 503.
const MAX_TRIES: usize = 5;

type Item = HashMap<String, AttributeValue>;

pub struct DynamoAttemptCounter {
    client: Client,
    table: String,
    /// The user pool's id: counts belong to one pool's users (tests share a table across pools).
    scope: String,
}

fn key(scope: &str, name: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(format!("LIMIT#{scope}#{name}"))),
        ("sk".to_owned(), AttributeValue::S("WINDOW".to_owned())),
    ])
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn window_of(item: &Item) -> Option<Window> {
    let number = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
    let started = OffsetDateTime::from_unix_timestamp(number("started")?).ok()?;
    Some((started, u32::try_from(number("attempts")?).ok()?))
}

impl DynamoAttemptCounter {
    pub fn new(client: Client, table: String, scope: String) -> Self {
        Self { client, table, scope }
    }

    async fn read(&self, name: &str) -> Result<Option<Window>, Error> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(&self.scope, name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unexpected(e, "DynamoDB GetItem (attempts)"))?;
        Ok(output.item.as_ref().and_then(window_of))
    }

    /// One more attempt in the current window, if it has room: an atomic
    /// conditional increment, so concurrent attempts on one key never collide.
    async fn add(&self, k: &AttemptKey, window: Duration, now: OffsetDateTime) -> Result<bool, Error> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&self.scope, &k.key)))
            .update_expression("SET attempts = attempts + :one")
            .condition_expression("started > :floor AND attempts < :max")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":floor", n((now - window).unix_timestamp()))
            .expression_attribute_values(":max", n(i64::from(k.max)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(unexpected(e, "DynamoDB UpdateItem (count an attempt)")),
        }
    }

    /// A new window holding this attempt, unless another instance started one meanwhile.
    async fn start(&self, k: &AttemptKey, window: Duration, now: OffsetDateTime) -> Result<bool, Error> {
        let mut item = key(&self.scope, &k.key);
        item.insert("started".into(), n(now.unix_timestamp()));
        item.insert("attempts".into(), n(1));
        item.insert("ttl".into(), n((now + window + Duration::hours(1)).unix_timestamp()));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR started <= :floor")
            .expression_attribute_values(":floor", n((now - window).unix_timestamp()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(unexpected(e, "DynamoDB PutItem (start an attempt window)")),
        }
    }

    /// Counts one attempt against `k`, or says how long its full window lasts.
    async fn count(
        &self,
        k: &AttemptKey,
        window: Duration,
        now: OffsetDateTime,
    ) -> Result<Result<(), Duration>, Error> {
        for _ in 0..MAX_TRIES {
            if self.add(k, window, now).await? {
                return Ok(Ok(()));
            }
            // No room, or no current window: the domain's rule says which.
            match next_step(self.read(&k.key).await?, k.max, window, now) {
                WindowStep::Full { retry_after } => return Ok(Err(retry_after)),
                WindowStep::Start if self.start(k, window, now).await? => return Ok(Ok(())),
                // Another instance moved the window on between our steps: again.
                WindowStep::Start | WindowStep::Add => continue,
            }
        }
        Err(Error::Unavailable { retry_after: std::time::Duration::from_secs(1) })
    }
}

#[async_trait]
impl AttemptCounter for DynamoAttemptCounter {
    async fn begin(&self, keys: &[AttemptKey], window: Duration, now: OffsetDateTime) -> Result<(), Error> {
        let mut counted = Vec::with_capacity(keys.len());
        for k in keys {
            match self.count(k, window, now).await {
                Ok(Ok(())) => counted.push(k.key.clone()),
                full_or_failed => {
                    // Counting none: take back what this attempt already counted.
                    self.forgive(&counted, window, now).await?;
                    return match full_or_failed {
                        Ok(Err(wait)) => Err(too_many(wait)),
                        Err(e) => Err(e),
                        Ok(Ok(())) => Ok(()),
                    };
                }
            }
        }
        Ok(())
    }

    async fn forgive(&self, keys: &[String], window: Duration, at: OffsetDateTime) -> Result<(), Error> {
        for name in keys {
            let Some(read) = self.read(name).await? else { continue };
            if !counted_in(read, window, at) {
                continue;
            }
            // Conditional on the same window still holding attempts; a lost race just leaves one counted.
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(&self.scope, name)))
                .update_expression("SET attempts = attempts - :one")
                .condition_expression("started = :started AND attempts > :zero")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":started", n(read.0.unix_timestamp()))
                .send()
                .await;
            match result {
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(unexpected(e, "DynamoDB UpdateItem (forgive an attempt)")),
            }
        }
        Ok(())
    }
}
