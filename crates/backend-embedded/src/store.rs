//! Invitations and invite quotas in SQLite. Every transition is a conditional
//! `UPDATE … WHERE status = …` inside a transaction; uniqueness is the
//! schema's job (see `db.rs`).

use async_trait::async_trait;
use domain::access_request::{AccessRequest, AccessRequestStatus};
use domain::invitation::Reservable;
use domain::{
    CodeHash, Email, Error, Invitation, InvitationId, InvitationStore, Inviter, NewInvitation, Page, PresentedCode,
    QuotaCharge, Reservation, ReservationNonce, ReserveOutcome, Standing, StoredStatus, UserSub,
};
use rusqlite::{Row, Transaction, params};
use time::OffsetDateTime;

use crate::db::{Db, db_err, decode_cursor, is_unique_violation, keyset_page, optional_row};

#[derive(Clone)]
pub struct SqliteInvitationStore {
    db: Db,
}

impl SqliteInvitationStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

pub(crate) fn ts(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

pub(crate) fn from_ts(secs: i64) -> rusqlite::Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Integer, Box::new(e)))
}

const COLUMNS: &str = "id, email, code_hash, status, inviter_sub, invitee_quota, created_at, expires_at, \
                       reserved_until, redeemed_by, redeemed_at";

fn conversion(msg: &'static str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, msg.into())
}

const REQUEST_COLUMNS: &str = "id, email, status, created_at, decided_at";

fn access_request_from_row(row: &Row<'_>) -> rusqlite::Result<AccessRequest> {
    let email: String = row.get(1)?;
    let status: String = row.get(2)?;
    Ok(AccessRequest {
        id: row.get(0)?,
        email: Email::parse(&email).map_err(|_| conversion("stored email invalid"))?,
        status: AccessRequestStatus::parse(&status).ok_or_else(|| conversion("stored status invalid"))?,
        created_at: from_ts(row.get(3)?)?,
        decided_at: row.get::<_, Option<i64>>(4)?.map(from_ts).transpose()?,
    })
}

fn invitation_from_row(row: &Row<'_>) -> rusqlite::Result<Invitation> {
    let email: String = row.get(1)?;
    let hash: Vec<u8> = row.get(2)?;
    let status: String = row.get(3)?;
    let inviter: Option<String> = row.get(4)?;
    Ok(Invitation {
        id: InvitationId::new(row.get(0)?),
        email: Email::parse(&email).map_err(|_| conversion("stored email invalid"))?,
        code_hash: CodeHash::from_bytes(&hash).ok_or_else(|| conversion("stored hash invalid"))?,
        status: StoredStatus::parse(&status).ok_or_else(|| conversion("stored status invalid"))?,
        inviter: inviter.map_or(Inviter::Operator, |s| Inviter::User(UserSub::new(s))),
        invitee_quota: row.get(5)?,
        created_at: from_ts(row.get(6)?)?,
        expires_at: from_ts(row.get(7)?)?,
        reserved_until: row.get::<_, Option<i64>>(8)?.map(from_ts).transpose()?,
        redeemed_by: row.get::<_, Option<String>>(9)?.map(UserSub::new),
        redeemed_at: row.get::<_, Option<i64>>(10)?.map(from_ts).transpose()?,
    })
}

pub(crate) fn get_in(tx: &Transaction<'_>, id: &str) -> Result<Option<Invitation>, Error> {
    optional_row(tx, &format!("SELECT {COLUMNS} FROM invitations WHERE id = ?1"), [id], invitation_from_row)
}

/// Lets a newer invitation take the email from one that no longer blocks it
/// (the domain decides: expired, and no sign-up still holding it).
fn retire_expired(tx: &Transaction<'_>, email: &str, now: OffsetDateTime) -> Result<(), Error> {
    let active = optional_row(
        tx,
        &format!("SELECT {COLUMNS} FROM invitations WHERE active_email = ?1"),
        [email],
        invitation_from_row,
    )?;
    if let Some(active) = active
        && !active.blocks_email(now)
    {
        tx.execute("UPDATE invitations SET active_email = NULL WHERE id = ?1", [active.id.as_str()]).map_err(db_err)?;
    }
    Ok(())
}

/// Reserved → redeemed, and the invitee's quota if the invitation set one.
/// Shared with the user pool, which calls it in the transaction that creates the user.
pub(crate) fn redeem_in(
    tx: &Transaction<'_>,
    reservation: &Reservation,
    sub: &UserSub,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let changed = tx
        .execute(
            "UPDATE invitations SET status = 'redeemed', redeemed_by = ?2, redeemed_at = ?3, \
             reserved_until = NULL, active_email = NULL WHERE id = ?1 AND status = 'reserved' AND reserved_until = ?4",
            params![reservation.invitation_id.as_str(), sub.as_str(), ts(now), ts(reservation.until)],
        )
        .map_err(db_err)?;
    if changed == 0 {
        let current = get_in(tx, reservation.invitation_id.as_str())?.ok_or(Error::NotFound)?;
        return current.check_already_completed_by(sub);
    }
    if let Some(quota) = reservation.invitee_quota {
        tx.execute(
            "INSERT INTO invite_quotas (sub, remaining) VALUES (?1, ?2) \
             ON CONFLICT (sub) DO UPDATE SET remaining = excluded.remaining",
            params![sub.as_str(), quota],
        )
        .map_err(db_err)?;
    }
    Ok(())
}

#[async_trait]
impl InvitationStore for SqliteInvitationStore {
    async fn create(&self, new: NewInvitation, charge: QuotaCharge, now: OffsetDateTime) -> Result<Invitation, Error> {
        self.db
            .write(move |tx| {
                if let QuotaCharge::User { sub, initial } = &charge {
                    tx.execute(
                        "INSERT INTO invite_quotas (sub, remaining) VALUES (?1, ?2) ON CONFLICT (sub) DO NOTHING",
                        params![sub.as_str(), initial],
                    )
                    .map_err(db_err)?;
                    let charged = tx
                        .execute(
                            "UPDATE invite_quotas SET remaining = remaining - 1 WHERE sub = ?1 AND remaining > 0",
                            [sub.as_str()],
                        )
                        .map_err(db_err)?;
                    if charged == 0 {
                        return Err(Error::InviteQuotaExhausted);
                    }
                }
                retire_expired(tx, new.email.as_str(), now)?;
                let inviter = match &new.inviter {
                    Inviter::Operator => None,
                    Inviter::User(sub) => Some(sub.as_str().to_owned()),
                };
                let inserted = tx.execute(
                    "INSERT INTO invitations (id, email, code_hash, status, inviter_sub, invitee_quota, \
                     created_at, expires_at, active_email) VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?2)",
                    params![
                        new.id.as_str(),
                        new.email.as_str(),
                        new.code_hash.as_bytes().as_slice(),
                        inviter,
                        new.invitee_quota,
                        ts(new.created_at),
                        ts(new.expires_at),
                    ],
                );
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => return Err(Error::AlreadyInvited),
                    Err(e) => return Err(db_err(e)),
                }
                Ok(Invitation::from(new))
            })
            .await
    }

    async fn get(&self, id: &InvitationId) -> Result<Option<Invitation>, Error> {
        let id = id.clone();
        self.db
            .read(move |conn| {
                optional_row(
                    conn,
                    &format!("SELECT {COLUMNS} FROM invitations WHERE id = ?1"),
                    [id.as_str()],
                    invitation_from_row,
                )
            })
            .await
    }

    async fn latest_for_email(&self, email: &Email) -> Result<Option<Invitation>, Error> {
        let email = email.clone();
        self.db
            .read(move |conn| {
                optional_row(conn,
                    &format!("SELECT {COLUMNS} FROM invitations WHERE email = ?1 ORDER BY created_at DESC, rowid DESC LIMIT 1"),
                    [email.as_str()],
                    invitation_from_row,
                )
            })
            .await
    }

    async fn list(&self, inviter: Option<&Inviter>) -> Result<Vec<Invitation>, Error> {
        let filter = inviter.cloned();
        self.db
            .read(move |conn| {
                let (sql, arg) = match &filter {
                    None => (format!("SELECT {COLUMNS}, rowid FROM invitations ORDER BY created_at DESC, rowid DESC"), None),
                    Some(Inviter::Operator) => (
                        format!("SELECT {COLUMNS}, rowid FROM invitations WHERE inviter_sub IS NULL ORDER BY created_at DESC, rowid DESC"),
                        None,
                    ),
                    // No ORDER BY beside a bound parameter: SQLite 3.54 then re-prepares
                    // the statement on every run (measured: a third of /invitations'
                    // CPU). A user's invitations are few, so they are sorted here.
                    Some(Inviter::User(sub)) => (
                        format!("SELECT {COLUMNS}, rowid FROM invitations WHERE inviter_sub = ?1"),
                        Some(sub.as_str().to_owned()),
                    ),
                };
                let with_rowid = |row: &Row<'_>| Ok((invitation_from_row(row)?, row.get::<_, i64>(11)?));
                let mut stmt = conn.prepare_cached(&sql).map_err(db_err)?;
                let rows = match arg {
                    Some(arg) => stmt.query_map([arg], with_rowid),
                    None => stmt.query_map([], with_rowid),
                }
                .map_err(db_err)?;
                let mut rows = rows.collect::<Result<Vec<_>, _>>().map_err(db_err)?;
                // Newest first; the rowid orders invitations made in the same second.
                rows.sort_by(|(a, a_row), (b, b_row)| (b.created_at, b_row).cmp(&(a.created_at, a_row)));
                Ok(rows.into_iter().map(|(invitation, _)| invitation).collect())
            })
            .await
    }

    async fn revoke(&self, id: &InvitationId, _now: OffsetDateTime) -> Result<Invitation, Error> {
        let id = id.clone();
        self.db
            .write(move |tx| {
                let invitation = get_in(tx, id.as_str())?.ok_or(Error::NotFound)?;
                invitation.check_revocable()?;
                let changed = tx
                    .execute(
                        "UPDATE invitations SET status = 'revoked', active_email = NULL WHERE id = ?1 AND status = 'pending'",
                        [id.as_str()],
                    )
                    .map_err(db_err)?;
                if changed == 0 {
                    return Err(Error::unexpected("invitation changed state during revoke"));
                }
                // A still-usable invite given back; an expired one was already "spent" time-wise,
                // but the inviter never got a user from it either, so refund it too.
                if let Inviter::User(sub) = &invitation.inviter {
                    tx.execute("UPDATE invite_quotas SET remaining = remaining + 1 WHERE sub = ?1", [sub.as_str()])
                        .map_err(db_err)?;
                }
                Ok(Invitation { status: StoredStatus::Revoked, ..invitation })
            })
            .await
    }

    async fn rotate_code(
        &self,
        id: &InvitationId,
        code_hash: CodeHash,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Invitation, Error> {
        let id = id.clone();
        self.db
            .write(move |tx| {
                let invitation = get_in(tx, id.as_str())?.ok_or(Error::NotFound)?;
                invitation.check_resendable()?;
                retire_expired(tx, invitation.email.as_str(), now)?;
                let updated = tx.execute(
                    "UPDATE invitations SET code_hash = ?2, expires_at = ?3, active_email = email \
                     WHERE id = ?1 AND status = 'pending'",
                    params![id.as_str(), code_hash.as_bytes().as_slice(), ts(expires_at)],
                );
                match updated {
                    Ok(1) => {}
                    Ok(_) => return Err(Error::unexpected("invitation changed state during resend")),
                    // A newer invitation for this email took over after this one expired.
                    Err(e) if is_unique_violation(&e) => return Err(Error::AlreadyInvited),
                    Err(e) => return Err(db_err(e)),
                }
                Ok(Invitation { code_hash, expires_at, ..invitation })
            })
            .await
    }

    async fn reserve(
        &self,
        email: &Email,
        presented: &PresentedCode,
        nonce: ReservationNonce,
        now: OffsetDateTime,
    ) -> Result<ReserveOutcome, Error> {
        let email = email.clone();
        let presented = presented.clone();
        self.db
            .write(move |tx| {
                let candidates = {
                    let mut stmt =
                        tx.prepare_cached(&format!("SELECT {COLUMNS} FROM invitations WHERE email = ?1")).map_err(db_err)?;
                    let rows = stmt.query_map([email.as_str()], invitation_from_row).map_err(db_err)?;
                    rows.collect::<Result<Vec<_>, _>>().map_err(db_err)?
                };
                let invitation =
                    domain::invitation::matching_code(candidates, &presented).ok_or(Error::InvalidAccessCode)?;
                if invitation.check_reservable(now)? == Reservable::Lapsed {
                    return Ok(ReserveOutcome::Lapsed(invitation));
                }
                // The domain decided on the row as read in this (write-locked) transaction.
                // The local pool is handed the reservation itself, so its nonce need not be stored here.
                let reservation = invitation.reservation(now, nonce);
                tx.execute(
                    "UPDATE invitations SET status = 'reserved', reserved_until = ?2 WHERE id = ?1 AND status = 'pending'",
                    params![invitation.id.as_str(), ts(reservation.until)],
                )
                .map_err(db_err)?;
                Ok(ReserveOutcome::Reserved(reservation))
            })
            .await
    }

    async fn release(&self, reservation: &Reservation) -> Result<(), Error> {
        let id = reservation.invitation_id.clone();
        // `until` fences the reservation: a lapsed holder cannot release a newer one.
        let until = ts(reservation.until);
        self.db
            .write(move |tx| {
                tx.execute(
                    "UPDATE invitations SET status = 'pending', reserved_until = NULL \
                     WHERE id = ?1 AND status = 'reserved' AND reserved_until = ?2",
                    params![id.as_str(), until],
                )
                .map_err(db_err)?;
                Ok(())
            })
            .await
    }

    async fn complete(&self, reservation: &Reservation, sub: &UserSub, now: OffsetDateTime) -> Result<(), Error> {
        // This pool redeems the invitation in the transaction that creates the
        // user, so the saga's last step usually finds it done: a read says so
        // without taking the write lock.
        if let Some(current) = self.get(&reservation.invitation_id).await?
            && current.check_already_completed_by(sub).is_ok()
        {
            return Ok(());
        }
        let reservation = reservation.clone();
        let sub = sub.clone();
        self.db.write(move |tx| redeem_in(tx, &reservation, &sub, now)).await
    }

    async fn settle_lapsed(
        &self,
        id: &InvitationId,
        created: Option<&UserSub>,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let id = id.clone();
        let created = created.cloned();
        self.db
            .write(move |tx| {
                let Some(invitation) = get_in(tx, id.as_str())? else { return Ok(()) };
                // Settled by someone else meanwhile: nothing left to do.
                if !invitation.reservation_lapsed(now) {
                    return Ok(());
                }
                match created {
                    Some(sub) => tx.execute(
                        "UPDATE invitations SET status = 'redeemed', redeemed_by = ?3, redeemed_at = ?2, \
                         reserved_until = NULL, active_email = NULL WHERE id = ?1 AND status = 'reserved'",
                        params![id.as_str(), ts(now), sub.as_str()],
                    ),
                    None => tx.execute(
                        "UPDATE invitations SET status = 'pending', reserved_until = NULL \
                         WHERE id = ?1 AND status = 'reserved'",
                        [id.as_str()],
                    ),
                }
                .map_err(db_err)?;
                Ok(())
            })
            .await
    }

    async fn invitations_page(&self, limit: usize, cursor: Option<&str>) -> Result<Page<Invitation>, Error> {
        let before = cursor.map(decode_cursor).transpose()?;
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        self.db
            .read(move |conn| {
                // Newest first, through invitations_by_created.
                let (created_at, rowid) = before.unwrap_or((i64::MAX, i64::MAX));
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS}, rowid FROM invitations \
                         WHERE (created_at, rowid) < (?1, ?2) \
                         ORDER BY created_at DESC, rowid DESC LIMIT ?3"
                    ))
                    .map_err(db_err)?;
                let rows = stmt
                    .query_map(params![created_at, rowid, limit + 1], |row| {
                        Ok((invitation_from_row(row)?, row.get::<_, i64>(6)?, row.get::<_, i64>(11)?))
                    })
                    .map_err(db_err)?;
                let rows = rows.collect::<Result<Vec<_>, _>>().map_err(db_err)?;
                Ok(keyset_page(rows, limit))
            })
            .await
    }

    async fn open_access_request(&self, id: &str, email: &Email, now: OffsetDateTime) -> Result<bool, Error> {
        let (id, email) = (id.to_owned(), email.clone());
        self.db
            .write(move |tx| {
                let inserted = tx.execute(
                    "INSERT INTO access_requests (id, email, status, created_at, open_email) \
                     VALUES (?1, ?2, 'open', ?3, ?2) ON CONFLICT (open_email) DO NOTHING",
                    params![id, email.as_str(), ts(now)],
                );
                inserted.map(|n| n == 1).map_err(db_err)
            })
            .await
    }

    async fn access_requests(&self) -> Result<Vec<AccessRequest>, Error> {
        self.db
            .read(|conn| {
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {REQUEST_COLUMNS} FROM access_requests ORDER BY created_at DESC, rowid DESC"
                    ))
                    .map_err(db_err)?;
                let rows = stmt.query_map([], access_request_from_row).map_err(db_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
            })
            .await
    }

    async fn access_request(&self, id: &str) -> Result<Option<AccessRequest>, Error> {
        let id = id.to_owned();
        self.db
            .read(move |conn| {
                optional_row(
                    conn,
                    &format!("SELECT {REQUEST_COLUMNS} FROM access_requests WHERE id = ?1"),
                    [id],
                    access_request_from_row,
                )
            })
            .await
    }

    async fn decide_access_request(
        &self,
        id: &str,
        approved: bool,
        now: OffsetDateTime,
    ) -> Result<AccessRequest, Error> {
        let id = id.to_owned();
        self.db
            .write(move |tx| {
                let request = optional_row(
                    tx,
                    &format!("SELECT {REQUEST_COLUMNS} FROM access_requests WHERE id = ?1"),
                    [&id],
                    access_request_from_row,
                )?
                .ok_or(Error::NotFound)?;
                request.check_open()?;
                let status = if approved { AccessRequestStatus::Approved } else { AccessRequestStatus::Rejected };
                tx.execute(
                    "UPDATE access_requests SET status = ?2, decided_at = ?3, open_email = NULL \
                     WHERE id = ?1 AND status = 'open'",
                    params![id, status.as_str(), ts(now)],
                )
                .map_err(db_err)?;
                Ok(AccessRequest { status, decided_at: Some(now), ..request })
            })
            .await
    }

    async fn revoke_pending_from(&self, inviter: &UserSub, _now: OffsetDateTime) -> Result<u32, Error> {
        let sub = inviter.clone();
        // Reserved ones are a sign-up in flight: its saga settles them.
        let revoked = self
            .db
            .write(move |tx| {
                tx.execute(
                    "UPDATE invitations SET status = 'revoked', active_email = NULL \
                     WHERE inviter_sub = ?1 AND status = 'pending'",
                    [sub.as_str()],
                )
                .map_err(db_err)
            })
            .await?;
        Ok(u32::try_from(revoked).unwrap_or(u32::MAX))
    }

    async fn check_ready(&self) -> Result<(), Error> {
        self.db.check_writable().await
    }

    async fn standing(&self, sub: &UserSub, initial_quota: u32) -> Result<Standing, Error> {
        let sub = sub.clone();
        self.db
            .read(move |conn| {
                // One statement: each subquery finds its row through an index.
                let (remaining, redeemed, inviter): (Option<u32>, bool, Option<String>) = conn
                    .prepare_cached(
                        "SELECT (SELECT remaining FROM invite_quotas WHERE sub = ?1), \
                                EXISTS (SELECT 1 FROM invitations WHERE redeemed_by = ?1), \
                                (SELECT inviter_sub FROM invitations WHERE redeemed_by = ?1)",
                    )
                    .map_err(db_err)?
                    .query_row([sub.as_str()], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                    .map_err(db_err)?;
                Ok(Standing {
                    invites_remaining: remaining.unwrap_or(initial_quota),
                    invited_by: redeemed.then(|| inviter.map_or(Inviter::Operator, |s| Inviter::User(UserSub::new(s)))),
                })
            })
            .await
    }
}
