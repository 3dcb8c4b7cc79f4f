//! Firebase passwords of imported users, in SQLite beside the accounts (see
//! `domain::firebase`): the project's hash parameters once per set, each
//! user's hash and salt until their first sign-in, then only a retired mark.

use async_trait::async_trait;
use domain::firebase::{FirebaseHashParams, FirebasePassword, ImportedUser, LegacyPassword, LegacyState};
use domain::{Email, Error, LegacyPasswords};
use rusqlite::{Transaction, params};

use crate::db::{Db, db_err, optional_row};

#[derive(Clone)]
pub struct SqliteLegacyPasswords {
    db: Db,
}

impl SqliteLegacyPasswords {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// The id of this parameter set, stored the first time it is seen.
fn params_id(tx: &Transaction<'_>, params: &FirebaseHashParams) -> Result<i64, Error> {
    tx.execute(
        "INSERT INTO firebase_hash_params (signer_key, salt_separator, rounds, mem_cost) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT DO NOTHING",
        params![params.signer_key(), params.salt_separator(), params.rounds(), params.mem_cost()],
    )
    .map_err(db_err)?;
    tx.query_row(
        "SELECT id FROM firebase_hash_params \
         WHERE signer_key = ?1 AND salt_separator = ?2 AND rounds = ?3 AND mem_cost = ?4",
        params![params.signer_key(), params.salt_separator(), params.rounds(), params.mem_cost()],
        |row| row.get(0),
    )
    .map_err(db_err)
}

#[async_trait]
impl LegacyPasswords for SqliteLegacyPasswords {
    async fn legacy_states(&self, emails: &[Email]) -> Result<Vec<(Email, LegacyState)>, Error> {
        let emails = emails.to_vec();
        self.db
            .read(move |conn| {
                let mut statement =
                    conn.prepare_cached("SELECT state FROM legacy_passwords WHERE email = ?1").map_err(db_err)?;
                let mut found = Vec::new();
                for email in emails {
                    let state: Option<String> =
                        rusqlite::OptionalExtension::optional(statement.query_row([email.as_str()], |row| row.get(0)))
                            .map_err(db_err)?;
                    if let Some(state) = state {
                        let state =
                            LegacyState::parse(&state).ok_or_else(|| Error::unexpected("stored legacy state"))?;
                        found.push((email, state));
                    }
                }
                Ok(found)
            })
            .await
    }

    async fn record_pending(&self, params: &FirebaseHashParams, users: &[ImportedUser]) -> Result<(), Error> {
        let (params, users) = (params.clone(), users.to_vec());
        self.db
            .write(move |tx| {
                let id = params_id(tx, &params)?;
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO legacy_passwords (email, state, params_id, hash, salt) \
                         VALUES (?1, 'pending', ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                    )
                    .map_err(db_err)?;
                for user in &users {
                    let (hash, salt) = match &user.password {
                        Some(password) => (Some(password.hash.as_slice()), Some(password.salt.as_slice())),
                        None => (None, None),
                    };
                    insert.execute(params![user.email.as_str(), id, hash, salt]).map_err(db_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn activate(&self, emails: &[Email]) -> Result<(), Error> {
        let emails = emails.to_vec();
        self.db
            .write(move |tx| {
                let mut update = tx
                    .prepare_cached(
                        "UPDATE legacy_passwords SET state = 'active' WHERE email = ?1 AND state = 'pending'",
                    )
                    .map_err(db_err)?;
                for email in &emails {
                    update.execute([email.as_str()]).map_err(db_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn forget_pending(&self, email: &Email) -> Result<(), Error> {
        let email = email.clone();
        self.db
            .write(move |tx| {
                tx.execute("DELETE FROM legacy_passwords WHERE email = ?1 AND state = 'pending'", [email.as_str()])
                    .map_err(db_err)?;
                Ok(())
            })
            .await
    }

    async fn active_password(&self, email: &Email) -> Result<Option<LegacyPassword>, Error> {
        let email = email.clone();
        self.db
            .read(move |conn| {
                let row = optional_row(
                    conn,
                    "SELECT l.hash, l.salt, p.signer_key, p.salt_separator, p.rounds, p.mem_cost \
                     FROM legacy_passwords l JOIN firebase_hash_params p ON p.id = l.params_id \
                     WHERE l.email = ?1 AND l.state = 'active' AND l.hash IS NOT NULL",
                    [email.as_str()],
                    |row| {
                        Ok((
                            row.get::<_, Vec<u8>>(0)?,
                            row.get::<_, Vec<u8>>(1)?,
                            row.get::<_, Vec<u8>>(2)?,
                            row.get::<_, Vec<u8>>(3)?,
                            row.get::<_, u32>(4)?,
                            row.get::<_, u32>(5)?,
                        ))
                    },
                )?;
                row.map(|(hash, salt, signer_key, separator, rounds, mem_cost)| {
                    let params = FirebaseHashParams::from_parts(signer_key, separator, rounds, mem_cost)
                        .map_err(|e| Error::unexpected(format!("stored Firebase parameters: {e}")))?;
                    Ok(LegacyPassword { params, password: FirebasePassword { hash, salt } })
                })
                .transpose()
            })
            .await
    }

    async fn retire(&self, email: &Email) -> Result<(), Error> {
        let email = email.clone();
        self.db
            .write(move |tx| {
                tx.execute(
                    "UPDATE legacy_passwords SET state = 'retired', hash = NULL, salt = NULL \
                     WHERE email = ?1 AND state = 'active'",
                    [email.as_str()],
                )
                .map_err(db_err)?;
                Ok(())
            })
            .await
    }
}
