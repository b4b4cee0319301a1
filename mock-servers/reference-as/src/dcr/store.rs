//! The SQL of dynamic registration: templates, dynamic clients and initial access tokens, in the
//! same SQLite database (and pool) as the rest of [`crate::store`].
//!
//! The invariants of [`crate::store`] hold here too: bearer values (initial access tokens,
//! registration access tokens) are stored only as SHA-256 digests, client secrets only as
//! [`crate::client_auth::SecretHash`] encodings, and every one-time value is consumed by one
//! conditional `UPDATE`, so of many concurrent uses exactly one wins. An instance stores a
//! reference to its template, never a copy, so a template edit reaches every instance at the
//! next lookup (CUR-07).

use sqlx::sqlite::SqlitePool;

use crate::error::AsError;
use crate::store::unix_now;

/// Tables of dynamic registration, created at start like the main schema (plain statements, so
/// a file database survives restarts unchanged).
const SCHEMA: &[&str] = &[
    // `definition` is the JSON of a `TemplateDefinition`.
    "CREATE TABLE IF NOT EXISTS dcr_templates (
        software_id TEXT PRIMARY KEY,
        definition TEXT NOT NULL)",
    // `fields` is the JSON of the client's own validated metadata; `frozen_template` is set only
    // under the `template-changes-not-applied` fault.
    "CREATE TABLE IF NOT EXISTS dcr_clients (
        client_id TEXT PRIMARY KEY,
        template TEXT REFERENCES dcr_templates(software_id),
        frozen_template TEXT,
        fields TEXT NOT NULL,
        secret_hash TEXT,
        secret_expires_at INTEGER NOT NULL DEFAULT 0,
        issued_at INTEGER NOT NULL,
        access_token_hash BLOB)",
    "CREATE TABLE IF NOT EXISTS dcr_initial_tokens (
        token_hash BLOB PRIMARY KEY,
        issued_to TEXT NOT NULL,
        scope TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        used INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS dcr_initial_tokens_by_expiry ON dcr_initial_tokens (expires_at)",
];

/// A dynamic client's row, with its template's definition (the live one, or the frozen copy).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientRow {
    /// The client_id.
    pub client_id: String,
    /// The template's `software_id`, for instances.
    pub template: Option<String>,
    /// The template's definition (JSON) at lookup time.
    pub template_definition: Option<String>,
    /// The client's own validated metadata (JSON of `ClientFields`).
    pub fields: String,
    /// The encoded secret hash, for the secret methods.
    pub secret_hash: Option<String>,
    /// When the secret expires (0: never).
    pub secret_expires_at: i64,
    /// When the client_id was issued.
    pub issued_at: i64,
    /// SHA-256 of the registration access token (`None`: management no longer possible).
    pub access_token_hash: Option<Vec<u8>>,
}

/// A client about to be stored.
#[derive(Debug, Clone)]
pub struct NewClient<'a> {
    /// The minted client_id.
    pub client_id: &'a str,
    /// The template reference.
    pub template: Option<&'a str>,
    /// A frozen copy of the template (fault only).
    pub frozen_template: Option<&'a str>,
    /// The client's own metadata (JSON).
    pub fields: &'a str,
    /// The encoded secret hash.
    pub secret_hash: Option<&'a str>,
    /// Secret expiry (0: never).
    pub secret_expires_at: i64,
    /// Issue time.
    pub issued_at: i64,
    /// SHA-256 of the registration access token.
    pub access_token_hash: Option<&'a [u8]>,
}

/// What an initial access token turned out to be when it could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialTokenState {
    /// No such token.
    Unknown,
    /// Its lifetime is over.
    Expired,
    /// Already spent on a registration.
    Used,
    /// Issued for another scope.
    WrongScope,
    /// Live.
    Live,
}

/// The dynamic-registration tables. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DcrStore {
    pool: SqlitePool,
}

const CLIENT_SELECT: &str = "SELECT c.client_id, c.template,
       COALESCE(c.frozen_template, t.definition) AS template_definition, c.fields,
       c.secret_hash, c.secret_expires_at, c.issued_at, c.access_token_hash
     FROM dcr_clients c LEFT JOIN dcr_templates t ON t.software_id = c.template
     WHERE c.client_id = ?";

impl DcrStore {
    /// Creates the tables in `pool`'s database if needed.
    pub async fn open(pool: SqlitePool) -> Result<Self, AsError> {
        for statement in SCHEMA {
            sqlx::query(*statement).execute(&pool).await?;
        }
        Ok(Self { pool })
    }

    /// Creates or replaces template `software_id`.
    pub async fn put_template(&self, software_id: &str, definition: &str) -> Result<(), AsError> {
        sqlx::query(
            "INSERT INTO dcr_templates (software_id, definition) VALUES (?, ?)
             ON CONFLICT (software_id) DO UPDATE SET definition = excluded.definition",
        )
        .bind(software_id)
        .bind(definition)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The definition (JSON) of template `software_id`.
    pub async fn template(&self, software_id: &str) -> Result<Option<String>, AsError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT definition FROM dcr_templates WHERE software_id = ?")
                .bind(software_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(definition,)| definition))
    }

    /// Stores an initial access token (its digest) and drops expired ones.
    pub async fn insert_initial_token(
        &self,
        token_hash: &[u8],
        issued_to: &str,
        scope: &str,
        expires_at: i64,
    ) -> Result<(), AsError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM dcr_initial_tokens WHERE expires_at <= ?")
            .bind(unix_now())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO dcr_initial_tokens (token_hash, issued_to, scope, expires_at)
             VALUES (?, ?, ?, ?)",
        )
        .bind(token_hash)
        .bind(issued_to)
        .bind(scope)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The state of initial access token `token_hash` for `scope`, without using it.
    pub async fn initial_token_state(
        &self,
        token_hash: &[u8],
        scope: &str,
    ) -> Result<InitialTokenState, AsError> {
        let row: Option<(String, i64, i64)> = sqlx::query_as(
            "SELECT scope, expires_at, used FROM dcr_initial_tokens WHERE token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            None => InitialTokenState::Unknown,
            Some((stored, _, _)) if stored != scope => InitialTokenState::WrongScope,
            Some((_, _, used)) if used != 0 => InitialTokenState::Used,
            Some((_, expires_at, _)) if expires_at <= unix_now() => InitialTokenState::Expired,
            Some(_) => InitialTokenState::Live,
        })
    }

    /// Stores `client`, spending initial access token `spend` (`(digest, scope)`) in the same
    /// transaction; `false` (and nothing stored) if the token was no longer live. With
    /// `reusable` (the `reusable-initial-access-token` fault) a used token still counts.
    pub async fn insert_client(
        &self,
        client: &NewClient<'_>,
        spend: Option<(&[u8], &str)>,
        reusable: bool,
    ) -> Result<bool, AsError> {
        let mut tx = self.pool.begin().await?;
        if let Some((token_hash, scope)) = spend {
            // DCR-02: one conditional update decides the single winner among concurrent uses.
            let sql = if reusable {
                "UPDATE dcr_initial_tokens SET used = 1
                 WHERE token_hash = ? AND scope = ? AND expires_at > ?"
            } else {
                "UPDATE dcr_initial_tokens SET used = 1
                 WHERE token_hash = ? AND scope = ? AND expires_at > ? AND used = 0"
            };
            let consumed = sqlx::query(sql)
                .bind(token_hash)
                .bind(scope)
                .bind(unix_now())
                .execute(&mut *tx)
                .await?;
            if consumed.rows_affected() != 1 {
                return Ok(false);
            }
        }
        sqlx::query(
            "INSERT INTO dcr_clients (client_id, template, frozen_template, fields, secret_hash,
               secret_expires_at, issued_at, access_token_hash)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(client.client_id)
        .bind(client.template)
        .bind(client.frozen_template)
        .bind(client.fields)
        .bind(client.secret_hash)
        .bind(client.secret_expires_at)
        .bind(client.issued_at)
        .bind(client.access_token_hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The client `client_id` with its template's definition.
    pub async fn client(&self, client_id: &str) -> Result<Option<ClientRow>, AsError> {
        Ok(sqlx::query_as(CLIENT_SELECT)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Replaces the client's metadata and secret; with `access_token_hash` also its registration
    /// access token. Only while the presented token `current_hash` is still the client's, so two
    /// concurrent updates with one token cannot both rotate it.
    pub async fn update_client(
        &self,
        client_id: &str,
        current_hash: &[u8],
        fields: &str,
        secret: (Option<&str>, i64),
        access_token_hash: Option<&[u8]>,
    ) -> Result<bool, AsError> {
        let updated = sqlx::query(
            "UPDATE dcr_clients SET fields = ?, secret_hash = ?, secret_expires_at = ?,
               access_token_hash = COALESCE(?, access_token_hash)
             WHERE client_id = ? AND access_token_hash = ?",
        )
        .bind(fields)
        .bind(secret.0)
        .bind(secret.1)
        .bind(access_token_hash)
        .bind(client_id)
        .bind(current_hash)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Replaces the registration access token `current_hash` with `new_hash`; `false` if it was
    /// no longer the client's.
    pub async fn rotate_access_token(
        &self,
        client_id: &str,
        current_hash: &[u8],
        new_hash: &[u8],
    ) -> Result<bool, AsError> {
        let rotated = sqlx::query(
            "UPDATE dcr_clients SET access_token_hash = ?
             WHERE client_id = ? AND access_token_hash = ?",
        )
        .bind(new_hash)
        .bind(client_id)
        .bind(current_hash)
        .execute(&self.pool)
        .await?;
        Ok(rotated.rows_affected() == 1)
    }

    /// Deletes the client, revokes every grant issued to it (its refresh tokens die with them)
    /// and forgets its consents (DCRM-09). With `keep_client` (the `deleted-client-still-valid`
    /// fault) only the registration access token goes.
    pub async fn delete_client(&self, client_id: &str, keep_client: bool) -> Result<(), AsError> {
        if keep_client {
            sqlx::query("UPDATE dcr_clients SET access_token_hash = NULL WHERE client_id = ?")
                .bind(client_id)
                .execute(&self.pool)
                .await?;
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE grants SET revoked = 1
             WHERE id IN (SELECT grant_id FROM refresh_tokens WHERE client_id = ?)
                OR id IN (SELECT grant_id FROM authorization_codes WHERE client_id = ?)",
        )
        .bind(client_id)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM consents WHERE client_id = ?")
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM dcr_clients WHERE client_id = ?")
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
