//! Invitations, email locks and user profiles in one on-demand DynamoDB table.
//!
//! Key design (`pk`, `sk`):
//! - `INV#<id>`, `INV` — an invitation: `email`, `code_hash` (HMAC, binary),
//!   `st` (pending | reserved | redeemed | revoked), `inviter` (a sub or
//!   `operator`), `invitee_quota`, `created_at`, `expires_at`,
//!   `reserved_until`, `redeemed_by`, `redeemed_at`, and `ttl` so dead ones
//!   age out (redeemed ones keep the record of who invited whom forever).
//!   GSI `by_email` (`gsi1pk` = email, `gsi1sk` = created_at) and GSI
//!   `by_inviter` (`gsi2pk` = inviter, `gsi2sk` = created_at).
//! - `EMAIL#<email>`, `ACTIVE` — the lock that makes "one active invitation per
//!   email" a conditional write: `invitation_id`, `st`, `expires_at`,
//!   `reserved_until`. It exists while its invitation is pending or reserved and
//!   may be overwritten once that invitation has expired. The PreSignUp Lambda
//!   reads it (strongly consistent) to learn whether a sign-up holds a reservation.
//! - `USER#<sub>`, `PROFILE` — `remaining` invites (absent: the default),
//!   `invited_by`, `invitation_id`.
//! - `AREQ#<id>`, `AREQ` — a request for an invitation: `email`, `st` (open |
//!   approved | rejected), `created_at`, `decided_at`.
//! - `AREQEMAIL#<email>`, `OPEN` — exists while that email has an open
//!   request (`request_id`): one open request per email, by conditional write.
//!
//! Every state change is a conditional write, and the multi-item ones (quota +
//! invitation + lock) are one TransactWriteItems, so a lost race cancels whole.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use domain::access_request::{AccessRequest, AccessRequestStatus};
use domain::invitation::Reservable;
use domain::{
    CodeHash, Email, Error, Invitation, InvitationId, InvitationStore, Inviter, NewInvitation, Page, PresentedCode,
    QuotaCharge, Reservation, ReservationNonce, ReserveOutcome, Standing, StoredStatus, UserSub,
};
use time::{Duration, OffsetDateTime};

use crate::unexpected;

/// How long dead invitations linger before DynamoDB's TTL removes them.
const KEEP_DEAD_FOR: Duration = Duration::days(30);
pub const BY_EMAIL_INDEX: &str = "by_email";
pub const BY_INVITER_INDEX: &str = "by_inviter";

type Item = HashMap<String, AttributeValue>;

#[derive(Clone)]
pub struct DynamoInvitationStore {
    client: Client,
    table: String,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}
fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}
fn ts(t: OffsetDateTime) -> AttributeValue {
    n(t.unix_timestamp())
}

fn invitation_key(id: &InvitationId) -> Item {
    HashMap::from([("pk".into(), s(format!("INV#{id}"))), ("sk".into(), s("INV"))])
}
fn lock_key(email: &Email) -> Item {
    HashMap::from([("pk".into(), s(format!("EMAIL#{email}"))), ("sk".into(), s("ACTIVE"))])
}
fn profile_key(sub: &UserSub) -> Item {
    HashMap::from([("pk".into(), s(format!("USER#{sub}"))), ("sk".into(), s("PROFILE"))])
}
fn request_key(id: &str) -> Item {
    HashMap::from([("pk".into(), s(format!("AREQ#{id}"))), ("sk".into(), s("AREQ"))])
}
fn open_request_key(email: &Email) -> Item {
    HashMap::from([("pk".into(), s(format!("AREQEMAIL#{email}"))), ("sk".into(), s("OPEN"))])
}

fn access_request_from_item(item: &Item) -> Result<AccessRequest, Error> {
    let missing = |what: &str| Error::unexpected(format!("access request item without {what}"));
    let id = get_s(item, "pk").and_then(|pk| pk.strip_prefix("AREQ#")).ok_or_else(|| missing("pk"))?;
    let email = get_s(item, "email").ok_or_else(|| missing("email"))?;
    Ok(AccessRequest {
        id: id.to_owned(),
        email: Email::parse(email).map_err(|_| missing("a valid email"))?,
        status: get_s(item, "st").and_then(AccessRequestStatus::parse).ok_or_else(|| missing("st"))?,
        created_at: get_time(item, "created_at")?.ok_or_else(|| missing("created_at"))?,
        decided_at: get_time(item, "decided_at")?,
    })
}

fn encode_scan_cursor(pk: &str, sk: &str) -> String {
    crate::encode_cursor(&format!("{pk}\n{sk}"))
}

fn decode_scan_cursor(cursor: &str) -> Result<Item, Error> {
    let text = crate::decode_cursor(cursor)?;
    let (pk, sk) = text.split_once('\n').ok_or_else(|| Error::InvalidRequest("Invalid cursor".into()))?;
    Ok(HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))]))
}

fn inviter_value(inviter: &Inviter) -> String {
    match inviter {
        Inviter::Operator => "operator".into(),
        Inviter::User(sub) => sub.to_string(),
    }
}
fn parse_inviter(value: &str) -> Inviter {
    if value == "operator" { Inviter::Operator } else { Inviter::User(UserSub::new(value.to_owned())) }
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}
fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}
fn get_time(item: &Item, name: &str) -> Result<Option<OffsetDateTime>, Error> {
    get_n(item, name)
        .map(|secs| OffsetDateTime::from_unix_timestamp(secs).map_err(|e| unexpected(e, "stored time")))
        .transpose()
}

fn invitation_from_item(item: &Item) -> Result<Invitation, Error> {
    let missing = |field: &str| Error::unexpected(format!("invitation item without {field}"));
    let id = get_s(item, "pk").and_then(|pk| pk.strip_prefix("INV#")).ok_or_else(|| missing("pk"))?;
    let email = Email::parse(get_s(item, "email").ok_or_else(|| missing("email"))?)
        .map_err(|_| Error::unexpected("stored email invalid"))?;
    let hash = item.get("code_hash").and_then(|v| v.as_b().ok()).ok_or_else(|| missing("code_hash"))?;
    Ok(Invitation {
        id: InvitationId::new(id.to_owned()),
        email,
        code_hash: CodeHash::from_bytes(hash.as_ref()).ok_or_else(|| missing("a valid code_hash"))?,
        status: get_s(item, "st").and_then(StoredStatus::parse).ok_or_else(|| missing("st"))?,
        inviter: parse_inviter(get_s(item, "inviter").ok_or_else(|| missing("inviter"))?),
        invitee_quota: get_n(item, "invitee_quota").and_then(|q| u32::try_from(q).ok()),
        created_at: get_time(item, "created_at")?.ok_or_else(|| missing("created_at"))?,
        expires_at: get_time(item, "expires_at")?.ok_or_else(|| missing("expires_at"))?,
        reserved_until: get_time(item, "reserved_until")?,
        redeemed_by: get_s(item, "redeemed_by").map(|sub| UserSub::new(sub.to_owned())),
        redeemed_at: get_time(item, "redeemed_at")?,
    })
}

fn values<const N: usize>(pairs: [(&str, AttributeValue); N]) -> Option<Item> {
    Some(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn build<T, E: std::error::Error + Send + Sync + 'static>(built: Result<T, E>) -> Result<T, Error> {
    built.map_err(|e| unexpected(e, "building a DynamoDB request"))
}

/// The cancellation reason codes of a cancelled transaction, one per item; `None` for other errors.
fn cancellation_codes(error: &SdkError<TransactWriteItemsError>) -> Option<Vec<String>> {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            Some(e.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect())
        }
        _ => None,
    }
}

impl DynamoInvitationStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    fn put(&self, item: Item, condition: &str, values: Option<Item>) -> Result<TransactWriteItem, Error> {
        let put = build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(condition)
                .set_expression_attribute_values(values)
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn update(
        &self,
        key: Item,
        expression: &str,
        condition: Option<&str>,
        values: Option<Item>,
    ) -> Result<TransactWriteItem, Error> {
        let update = build(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .update_expression(expression)
                // `ttl` is a reserved word in expressions.
                .set_expression_attribute_names(
                    expression.contains("#ttl").then(|| HashMap::from([("#ttl".to_owned(), "ttl".to_owned())])),
                )
                .set_condition_expression(condition.map(str::to_owned))
                .set_expression_attribute_values(values)
                .build(),
        )?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn delete(&self, key: Item, condition: &str, values: Option<Item>) -> Result<TransactWriteItem, Error> {
        let delete = build(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .condition_expression(condition)
                .set_expression_attribute_values(values)
                .build(),
        )?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), SdkError<TransactWriteItemsError>> {
        self.client.transact_write_items().set_transact_items(Some(items)).send().await.map(|_| ())
    }

    async fn get_item(&self, key: Item) -> Result<Option<Item>, Error> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unexpected(e, "DynamoDB GetItem"))?;
        Ok(output.item)
    }

    async fn by_email(&self, email: &Email) -> Result<Vec<Invitation>, Error> {
        let items = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_EMAIL_INDEX)
            .key_condition_expression("gsi1pk = :email")
            .set_expression_attribute_values(values([(":email", s(email.as_str()))]))
            .scan_index_forward(false)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| unexpected(e, "DynamoDB Query by email"))?;
        items.iter().map(invitation_from_item).collect()
    }

    /// Which invitation holds the email's lock (strongly consistent).
    async fn lock_owner(&self, email: &Email) -> Result<Option<String>, Error> {
        let lock = self.get_item(lock_key(email)).await?;
        Ok(lock.as_ref().and_then(|l| get_s(l, "invitation_id")).map(str::to_owned))
    }

    /// Deletes the email's lock in the same transaction, if it still belongs to this invitation.
    async fn lock_release(&self, invitation: &Invitation) -> Result<Option<TransactWriteItem>, Error> {
        if self.lock_owner(&invitation.email).await?.as_deref() != Some(invitation.id.as_str()) {
            return Ok(None);
        }
        self.delete(lock_key(&invitation.email), "invitation_id = :id", values([(":id", s(invitation.id.as_str()))]))
            .map(Some)
    }

    /// Reserved → redeemed by `sub`, lock gone, the invitee's profile written.
    async fn redeem(
        &self,
        invitation: &Invitation,
        sub: &UserSub,
        condition: &str,
        mut cond_values: Item,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        cond_values.insert(":redeemed".into(), s("redeemed"));
        cond_values.insert(":sub".into(), s(sub.as_str()));
        cond_values.insert(":now".into(), ts(now));
        let mut items = vec![self.update(
            invitation_key(&invitation.id),
            "SET st = :redeemed, redeemed_by = :sub, redeemed_at = :now REMOVE reserved_until, #ttl",
            Some(condition),
            Some(cond_values),
        )?];
        if let Some(release) = self.lock_release(invitation).await? {
            items.push(release);
        }
        let (expression, profile_values) = match invitation.invitee_quota {
            Some(quota) => (
                "SET invited_by = :by, invitation_id = :id, remaining = :quota",
                values([
                    (":by", s(inviter_value(&invitation.inviter))),
                    (":id", s(invitation.id.as_str())),
                    (":quota", n(i64::from(quota))),
                ]),
            ),
            None => (
                "SET invited_by = :by, invitation_id = :id",
                values([(":by", s(inviter_value(&invitation.inviter))), (":id", s(invitation.id.as_str()))]),
            ),
        };
        items.push(self.update(profile_key(sub), expression, None, profile_values)?);
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(e) if cancellation_codes(&e).is_some() => Ok(false),
            Err(e) => Err(unexpected(e, "DynamoDB redeem")),
        }
    }

    /// Reserved → pending, lock back to pending.
    async fn unreserve(&self, invitation: &Invitation, condition: &str, mut cond_values: Item) -> Result<bool, Error> {
        cond_values.insert(":pending".into(), s("pending"));
        let mut items = vec![self.update(
            invitation_key(&invitation.id),
            "SET st = :pending REMOVE reserved_until",
            Some(condition),
            Some(cond_values),
        )?];
        // The lock follows only while it is still this invitation's: once the
        // invitation expired, a newer one may have taken it over.
        if self.lock_owner(&invitation.email).await?.as_deref() == Some(invitation.id.as_str()) {
            items.push(self.update(
                lock_key(&invitation.email),
                "SET st = :pending REMOVE reserved_until, nonce_digest",
                Some("invitation_id = :id"),
                values([(":pending", s("pending")), (":id", s(invitation.id.as_str()))]),
            )?);
        }
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(e) if cancellation_codes(&e).is_some() => Ok(false),
            Err(e) => Err(unexpected(e, "DynamoDB release")),
        }
    }

    async fn require(&self, id: &InvitationId) -> Result<Invitation, Error> {
        self.get(id).await?.ok_or(Error::NotFound)
    }

    /// The condition under which invitation `id` may write `email`'s lock.
    /// The domain decides whether the lock's current invitation still blocks
    /// the email; the write is then fenced on the lock exactly as read, so a
    /// change in between cancels it.
    async fn lock_takeover(
        &self,
        email: &Email,
        id: &InvitationId,
        now: OffsetDateTime,
    ) -> Result<(String, Option<Item>), Error> {
        let Some(lock) = self.get_item(lock_key(email)).await? else {
            return Ok(("attribute_not_exists(pk)".into(), None));
        };
        let missing = |field: &str| Error::unexpected(format!("email lock without {field}"));
        let owner = get_s(&lock, "invitation_id").ok_or_else(|| missing("invitation_id"))?;
        if owner == id.as_str() {
            return Ok(("invitation_id = :owner".into(), values([(":owner", s(owner))])));
        }
        let status = get_s(&lock, "st").and_then(StoredStatus::parse).ok_or_else(|| missing("st"))?;
        let expires_at = get_time(&lock, "expires_at")?.ok_or_else(|| missing("expires_at"))?;
        if domain::invitation::email_blocked(status, expires_at, get_time(&lock, "reserved_until")?, now) {
            return Err(Error::AlreadyInvited);
        }
        let mut condition = "invitation_id = :owner AND st = :owner_st AND expires_at = :owner_expires".to_owned();
        let mut fence = HashMap::from([
            (":owner".to_owned(), s(owner)),
            (":owner_st".to_owned(), s(status.as_str())),
            (":owner_expires".to_owned(), ts(expires_at)),
        ]);
        match lock.get("reserved_until") {
            Some(until) => {
                condition.push_str(" AND reserved_until = :owner_until");
                fence.insert(":owner_until".into(), until.clone());
            }
            None => condition.push_str(" AND attribute_not_exists(reserved_until)"),
        }
        Ok((condition, Some(fence)))
    }
}

/// A condition that holds while the invitation's reservation is exactly as read.
fn reservation_fence(invitation: &Invitation) -> (&'static str, Item) {
    let mut fence = HashMap::from([(":reserved".to_owned(), s("reserved"))]);
    match invitation.reserved_until {
        Some(until) => {
            fence.insert(":until".into(), ts(until));
            ("st = :reserved AND reserved_until = :until", fence)
        }
        None => ("st = :reserved AND attribute_not_exists(reserved_until)", fence),
    }
}

/// What the PreSignUp trigger asks: does *this* sign-up, which carries
/// `presented` (its reservation nonce, if any), hold this email's invitation right now?
pub async fn invitation_reserved_for(
    client: &Client,
    table: &str,
    email: &Email,
    presented: Option<&str>,
    now: OffsetDateTime,
) -> Result<bool, Error> {
    let Some(presented) = presented.filter(|p| !p.is_empty()) else { return Ok(false) };
    let output = client
        .get_item()
        .table_name(table)
        .set_key(Some(lock_key(email)))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| unexpected(e, "DynamoDB GetItem (email lock)"))?;
    let Some(lock) = output.item else { return Ok(false) };
    let until = get_time(&lock, "reserved_until")?;
    let digest = lock.get("nonce_digest").and_then(|v| v.as_b().ok());
    Ok(get_s(&lock, "st") == Some("reserved")
        && until.is_some_and(|until| domain::invitation::lease_live(until, now))
        && digest.is_some_and(|digest| domain::nonce::nonce_matches(digest.as_ref(), presented)))
}

#[async_trait]
impl InvitationStore for DynamoInvitationStore {
    async fn create(&self, new: NewInvitation, charge: QuotaCharge, now: OffsetDateTime) -> Result<Invitation, Error> {
        let inviter = inviter_value(&new.inviter);
        let mut invitation: Item = HashMap::from([
            ("email".into(), s(new.email.as_str())),
            ("code_hash".into(), AttributeValue::B(Blob::new(new.code_hash.as_bytes().to_vec()))),
            ("st".into(), s("pending")),
            ("inviter".into(), s(inviter.clone())),
            ("created_at".into(), ts(new.created_at)),
            ("expires_at".into(), ts(new.expires_at)),
            ("ttl".into(), ts(new.expires_at + KEEP_DEAD_FOR)),
            ("gsi1pk".into(), s(new.email.as_str())),
            ("gsi1sk".into(), ts(new.created_at)),
            ("gsi2pk".into(), s(inviter)),
            ("gsi2sk".into(), ts(new.created_at)),
        ]);
        invitation.extend(invitation_key(&new.id));
        if let Some(quota) = new.invitee_quota {
            invitation.insert("invitee_quota".into(), n(i64::from(quota)));
        }
        let mut lock: Item = HashMap::from([
            ("invitation_id".into(), s(new.id.as_str())),
            ("st".into(), s("pending")),
            ("expires_at".into(), ts(new.expires_at)),
            ("ttl".into(), ts(new.expires_at + KEEP_DEAD_FOR)),
        ]);
        lock.extend(lock_key(&new.email));
        let (lock_condition, lock_values) = self.lock_takeover(&new.email, &new.id, now).await?;
        let mut items = vec![
            self.put(lock, &lock_condition, lock_values)?,
            self.put(invitation, "attribute_not_exists(pk)", None)?,
        ];
        if let QuotaCharge::User { sub, initial } = &charge {
            let condition =
                if *initial > 0 { "attribute_not_exists(remaining) OR remaining > :zero" } else { "remaining > :zero" };
            items.push(self.update(
                profile_key(sub),
                "SET remaining = if_not_exists(remaining, :initial) - :one",
                Some(condition),
                values([(":initial", n(i64::from(*initial))), (":one", n(1)), (":zero", n(0))]),
            )?);
        }
        match self.transact(items).await {
            Ok(()) => {}
            Err(e) => {
                return Err(match cancellation_codes(&e) {
                    Some(codes) if codes.first().is_some_and(|c| c == "ConditionalCheckFailed") => {
                        Error::AlreadyInvited
                    }
                    Some(codes) if codes.get(2).is_some_and(|c| c == "ConditionalCheckFailed") => {
                        Error::InviteQuotaExhausted
                    }
                    _ => unexpected(e, "DynamoDB create invitation"),
                });
            }
        }
        Ok(Invitation::from(new))
    }

    async fn get(&self, id: &InvitationId) -> Result<Option<Invitation>, Error> {
        self.get_item(invitation_key(id)).await?.as_ref().map(invitation_from_item).transpose()
    }

    async fn latest_for_email(&self, email: &Email) -> Result<Option<Invitation>, Error> {
        Ok(self.by_email(email).await?.into_iter().max_by_key(|i| i.created_at))
    }

    async fn list(&self, inviter: Option<&Inviter>) -> Result<Vec<Invitation>, Error> {
        let items = match inviter {
            Some(inviter) => self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_INVITER_INDEX)
                .key_condition_expression("gsi2pk = :inviter")
                .set_expression_attribute_values(values([(":inviter", s(inviter_value(inviter)))]))
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .map_err(|e| unexpected(e, "DynamoDB Query by inviter"))?,
            None => self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("sk = :inv")
                .set_expression_attribute_values(values([(":inv", s("INV"))]))
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .map_err(|e| unexpected(e, "DynamoDB Scan"))?,
        };
        let mut invitations = items.iter().map(invitation_from_item).collect::<Result<Vec<_>, _>>()?;
        invitations.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
        Ok(invitations)
    }

    async fn revoke(&self, id: &InvitationId, now: OffsetDateTime) -> Result<Invitation, Error> {
        let invitation = self.require(id).await?;
        invitation.check_revocable()?;
        let mut items = vec![self.update(
            invitation_key(id),
            "SET st = :revoked, #ttl = :ttl",
            Some("st = :pending"),
            values([(":revoked", s("revoked")), (":pending", s("pending")), (":ttl", ts(now + KEEP_DEAD_FOR))]),
        )?];
        if let Some(release) = self.lock_release(&invitation).await? {
            items.push(release);
        }
        if let Inviter::User(sub) = &invitation.inviter {
            items.push(self.update(
                profile_key(sub),
                "SET remaining = remaining + :one",
                Some("attribute_exists(remaining)"),
                values([(":one", n(1))]),
            )?);
        }
        self.transact(items).await.map_err(|e| match cancellation_codes(&e) {
            Some(_) => Error::InvitationInUse,
            None => unexpected(e, "DynamoDB revoke"),
        })?;
        Ok(Invitation { status: StoredStatus::Revoked, ..invitation })
    }

    async fn rotate_code(
        &self,
        id: &InvitationId,
        code_hash: CodeHash,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Invitation, Error> {
        let invitation = self.require(id).await?;
        invitation.check_resendable()?;
        let mut lock: Item = HashMap::from([
            ("invitation_id".into(), s(id.as_str())),
            ("st".into(), s("pending")),
            ("expires_at".into(), ts(expires_at)),
            ("ttl".into(), ts(expires_at + KEEP_DEAD_FOR)),
        ]);
        lock.extend(lock_key(&invitation.email));
        let update = self.update(
            invitation_key(id),
            "SET code_hash = :hash, expires_at = :expires, #ttl = :ttl",
            Some("st = :pending"),
            values([
                (":hash", AttributeValue::B(Blob::new(code_hash.as_bytes().to_vec()))),
                (":expires", ts(expires_at)),
                (":ttl", ts(expires_at + KEEP_DEAD_FOR)),
                (":pending", s("pending")),
            ]),
        )?;
        let (lock_condition, lock_values) = self.lock_takeover(&invitation.email, id, now).await?;
        let items = vec![self.put(lock, &lock_condition, lock_values)?, update];
        self.transact(items).await.map_err(|e| match cancellation_codes(&e) {
            Some(codes) if codes.first().is_some_and(|c| c == "ConditionalCheckFailed") => Error::AlreadyInvited,
            Some(_) => Error::InvitationInUse,
            None => unexpected(e, "DynamoDB rotate code"),
        })?;
        Ok(Invitation { code_hash, expires_at, ..invitation })
    }

    async fn reserve(
        &self,
        email: &Email,
        presented: &PresentedCode,
        nonce: ReservationNonce,
        now: OffsetDateTime,
    ) -> Result<ReserveOutcome, Error> {
        // The live invitation is found through the lock, read consistently: the
        // email index lags, and a code sent a moment ago must work. The index
        // only adds the dead ones, so their holders learn why they fail.
        let mut candidates = Vec::new();
        let owner = self.lock_owner(email).await?;
        if let Some(owner) = &owner
            && let Some(live) = self.get(&InvitationId::new(owner.clone())).await?
        {
            candidates.push(live);
        }
        let others = self.by_email(email).await?;
        candidates.extend(others.into_iter().filter(|i| Some(i.id.as_str()) != owner.as_deref()));
        let Some(listed) = domain::invitation::matching_code(candidates, presented) else {
            return Err(Error::InvalidAccessCode);
        };
        // Decide on the item itself, read consistently.
        let invitation = self.require(&listed.id).await?;
        if !presented.matches(&invitation.code_hash) {
            return Err(Error::InvalidAccessCode);
        }
        if invitation.check_reservable(now)? == Reservable::Lapsed {
            return Ok(ReserveOutcome::Lapsed(invitation));
        }
        let nonce_digest = AttributeValue::B(Blob::new(nonce.digest().to_vec()));
        let reservation = invitation.reservation(now, nonce);
        let until = reservation.until;
        let items = vec![
            self.update(
                invitation_key(&invitation.id),
                "SET st = :reserved, reserved_until = :until",
                // The domain decided on the item as read; fenced on that state.
                Some("st = :pending AND expires_at = :expires"),
                values([
                    (":reserved", s("reserved")),
                    (":until", ts(until)),
                    (":pending", s("pending")),
                    (":expires", ts(invitation.expires_at)),
                ]),
            )?,
            // The trigger reads the lock: the nonce's digest binds it to this sign-up.
            self.update(
                lock_key(email),
                "SET st = :reserved, reserved_until = :until, nonce_digest = :nonce",
                Some("invitation_id = :id"),
                values([
                    (":reserved", s("reserved")),
                    (":until", ts(until)),
                    (":id", s(invitation.id.as_str())),
                    (":nonce", nonce_digest),
                ]),
            )?,
        ];
        self.transact(items).await.map_err(|e| match cancellation_codes(&e) {
            Some(_) => Error::InvitationInUse,
            None => unexpected(e, "DynamoDB reserve"),
        })?;
        Ok(ReserveOutcome::Reserved(reservation))
    }

    async fn release(&self, reservation: &Reservation) -> Result<(), Error> {
        let invitation = self.require(&reservation.invitation_id).await?;
        let released = self
            .unreserve(
                &invitation,
                "st = :reserved AND reserved_until = :until",
                HashMap::from([(":reserved".into(), s("reserved")), (":until".into(), ts(reservation.until))]),
            )
            .await?;
        if !released {
            tracing::warn!(invitation = %reservation.invitation_id, "reservation had already moved on at release");
        }
        Ok(())
    }

    async fn complete(&self, reservation: &Reservation, sub: &UserSub, now: OffsetDateTime) -> Result<(), Error> {
        let invitation = self.require(&reservation.invitation_id).await?;
        let condition = "st = :reserved AND reserved_until = :until";
        let cond_values =
            HashMap::from([(":reserved".into(), s("reserved")), (":until".into(), ts(reservation.until))]);
        if self.redeem(&invitation, sub, condition, cond_values, now).await? {
            return Ok(());
        }
        self.require(&reservation.invitation_id).await?.check_already_completed_by(sub)
    }

    async fn settle_lapsed(
        &self,
        id: &InvitationId,
        created: Option<&UserSub>,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let invitation = self.require(id).await?;
        if !invitation.reservation_lapsed(now) {
            tracing::warn!(invitation = %id, "lapsed reservation had already been settled");
            return Ok(());
        }
        let (condition, cond_values) = reservation_fence(&invitation);
        let settled = match created {
            Some(sub) => self.redeem(&invitation, sub, condition, cond_values, now).await?,
            None => self.unreserve(&invitation, condition, cond_values).await?,
        };
        if !settled {
            tracing::warn!(invitation = %id, "lapsed reservation had already been settled");
        }
        Ok(())
    }

    async fn invitations_page(&self, limit: usize, cursor: Option<&str>) -> Result<Page<Invitation>, Error> {
        // The cursor is the Scan's last evaluated key (any item type: the
        // filter runs after the read), its `pk` and `sk` hex-encoded.
        let start = cursor.map(decode_scan_cursor).transpose()?;
        // Scan's Limit counts items read before the filter: a page may hold
        // fewer than `limit` invitations and still have a next one.
        let output = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("sk = :inv")
            .set_expression_attribute_values(values([(":inv", s("INV"))]))
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| unexpected(e, "DynamoDB Scan page"))?;
        let items = output.items().iter().map(invitation_from_item).collect::<Result<Vec<_>, _>>()?;
        let next =
            output.last_evaluated_key().and_then(|key| Some(encode_scan_cursor(get_s(key, "pk")?, get_s(key, "sk")?)));
        Ok(Page { items, next })
    }

    async fn open_access_request(&self, id: &str, email: &Email, now: OffsetDateTime) -> Result<bool, Error> {
        let mut request: Item = HashMap::from([
            ("email".into(), s(email.as_str())),
            ("st".into(), s("open")),
            ("created_at".into(), ts(now)),
        ]);
        request.extend(request_key(id));
        let mut open: Item = HashMap::from([("request_id".into(), s(id))]);
        open.extend(open_request_key(email));
        let items = vec![
            self.put(open, "attribute_not_exists(pk)", None)?,
            self.put(request, "attribute_not_exists(pk)", None)?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(e) => match cancellation_codes(&e) {
                Some(codes) if codes.first().is_some_and(|c| c == "ConditionalCheckFailed") => Ok(false),
                _ => Err(unexpected(e, "DynamoDB open access request")),
            },
        }
    }

    async fn access_requests(&self) -> Result<Vec<AccessRequest>, Error> {
        let items = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("sk = :areq")
            .set_expression_attribute_values(values([(":areq", s("AREQ"))]))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| unexpected(e, "DynamoDB Scan access requests"))?;
        let mut requests = items.iter().map(access_request_from_item).collect::<Result<Vec<_>, _>>()?;
        requests.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
        Ok(requests)
    }

    async fn access_request(&self, id: &str) -> Result<Option<AccessRequest>, Error> {
        self.get_item(request_key(id)).await?.as_ref().map(access_request_from_item).transpose()
    }

    async fn decide_access_request(
        &self,
        id: &str,
        approved: bool,
        now: OffsetDateTime,
    ) -> Result<AccessRequest, Error> {
        let request = self.access_request(id).await?.ok_or(Error::NotFound)?;
        request.check_open()?;
        let status = if approved { AccessRequestStatus::Approved } else { AccessRequestStatus::Rejected };
        let items = vec![
            self.update(
                request_key(id),
                "SET st = :decided, decided_at = :now",
                Some("st = :open"),
                values([(":decided", s(status.as_str())), (":now", ts(now)), (":open", s("open"))]),
            )?,
            self.delete(open_request_key(&request.email), "request_id = :id", values([(":id", s(id))]))?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(AccessRequest { status, decided_at: Some(now), ..request }),
            Err(e) if cancellation_codes(&e).is_some() => Err(Error::AccessRequestDecided),
            Err(e) => Err(unexpected(e, "DynamoDB decide access request")),
        }
    }

    async fn revoke_pending_from(&self, inviter: &UserSub, now: OffsetDateTime) -> Result<u32, Error> {
        let mut revoked = 0;
        for invitation in self.list(Some(&Inviter::User(inviter.clone()))).await? {
            // Reserved ones are a sign-up in flight: its saga settles them.
            if invitation.status != StoredStatus::Pending {
                continue;
            }
            match self.revoke(&invitation.id, now).await {
                Ok(_) => revoked += 1,
                // Taken or revoked meanwhile: nothing left to do for it.
                Err(Error::InvitationRedeemed | Error::InvitationRevoked | Error::InvitationInUse) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(revoked)
    }

    async fn check_ready(&self) -> Result<(), Error> {
        let table = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| unexpected(e, "DynamoDB DescribeTable"))?;
        let status = table.table.and_then(|t| t.table_status);
        match status {
            Some(aws_sdk_dynamodb::types::TableStatus::Active | aws_sdk_dynamodb::types::TableStatus::Updating) => {
                Ok(())
            }
            other => Err(Error::unexpected(format!("table {} is {other:?}", self.table))),
        }
    }

    async fn standing(&self, sub: &UserSub, initial_quota: u32) -> Result<Standing, Error> {
        let profile = self.get_item(profile_key(sub)).await?;
        Ok(Standing {
            invites_remaining: profile
                .as_ref()
                .and_then(|p| get_n(p, "remaining"))
                .map_or(initial_quota, |remaining| u32::try_from(remaining).unwrap_or(0)),
            invited_by: profile.as_ref().and_then(|p| get_s(p, "invited_by")).map(parse_inviter),
        })
    }
}
