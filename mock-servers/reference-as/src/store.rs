//! Storage: users, browser sessions, login codes, authorization codes, refresh tokens, consents,
//! used client-assertion `jti`s, pushed and finished authorization requests, in an embedded
//! SQLite database (sqlx); pending authorization requests travel sealed, outside it.
//!
//! Two invariants hold throughout. First, no bearer value (request id, session id,
//! login code, authorization code, refresh token) is ever stored: only its SHA-256 digest (login
//! codes, being only six digits, get a keyed HMAC instead, so a copy of the database does not give
//! them away). Second, every one-time value is consumed by a single conditional `UPDATE … WHERE
//! used = 0` (or an `INSERT OR IGNORE` of its digest), so two concurrent redemptions cannot both
//! succeed; SQLite serialises writers.
//!
//! A pending authorization request (validated by `/authorize`, waiting for login and consent) is
//! not a row: its request id *is* the request, sealed with AES-256-GCM under a key only this
//! server instance holds (see [`Store::insert_pending`]). An unauthenticated `/authorize` therefore
//! writes nothing, so a flood of them costs no storage and no database round trip; only finishing
//! a request records its digest, which keeps it one-time. A restart forgets the key, so requests
//! in flight then must be started again (they are short-lived anyway).
//!
//! Every authorization code starts a *grant*; refresh tokens belong to the grant of the code they
//! came from. Revoking the grant (on a replayed code or a replayed refresh token) kills every
//! refresh token of the family at once, including one inserted concurrently after the revocation.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::{aead, digest, hmac, pbkdf2, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::error::AsError;

/// PBKDF2-HMAC-SHA256 iterations for stored passwords. OWASP (2023) asks for 600 000; this server
/// holds demo users only and starts once per test, so it trades some of that margin for start-up
/// time (measured: about 55 ms per derivation on the 2-core CI machine).
const PBKDF2_ITERATIONS: NonZeroU32 = NonZeroU32::MIN.saturating_add(99_999);

/// Bytes of randomness in every generated bearer value (256 bits).
const SECRET_BYTES: usize = 32;

/// Schema, created at start. Plain statements so a file database survives restarts unchanged.
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS users (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        email TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_salt BLOB NOT NULL,
        password_hash BLOB NOT NULL,
        password_iterations INTEGER NOT NULL)",
    // Digests of finished pending requests, kept until the request would have expired anyway.
    "CREATE TABLE IF NOT EXISTS finished_requests (
        id_hash BLOB PRIMARY KEY,
        expires_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sessions (
        id_hash BLOB PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        expires_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS login_codes (
        request_hash BLOB NOT NULL,
        email TEXT NOT NULL COLLATE NOCASE,
        code_mac BLOB NOT NULL,
        expires_at INTEGER NOT NULL,
        attempts_left INTEGER NOT NULL,
        used INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (request_hash, email))",
    "CREATE TABLE IF NOT EXISTS grants (
        id BLOB PRIMARY KEY,
        revoked INTEGER NOT NULL DEFAULT 0,
        expires_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS authorization_codes (
        code_hash BLOB PRIMARY KEY,
        grant_id BLOB NOT NULL REFERENCES grants(id),
        client_id TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        code_challenge TEXT,
        scope TEXT NOT NULL,
        user_id INTEGER NOT NULL REFERENCES users(id),
        resource TEXT,
        expires_at INTEGER NOT NULL,
        used INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS refresh_tokens (
        token_hash BLOB PRIMARY KEY,
        grant_id BLOB NOT NULL REFERENCES grants(id),
        client_id TEXT NOT NULL,
        user_id INTEGER NOT NULL REFERENCES users(id),
        scope TEXT NOT NULL,
        resource TEXT,
        expires_at INTEGER NOT NULL,
        used INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS refresh_tokens_by_grant ON refresh_tokens (grant_id)",
    // Deleting a dynamic client revokes its grants by client_id (DCRM-09).
    "CREATE INDEX IF NOT EXISTS refresh_tokens_by_client ON refresh_tokens (client_id)",
    // The purge deletes by expiry; without these it scans whole tables while holding the
    // (single, for in-memory databases) connection, stalling every request behind it.
    "CREATE INDEX IF NOT EXISTS finished_requests_by_expiry ON finished_requests (expires_at)",
    "CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expires_at)",
    "CREATE INDEX IF NOT EXISTS login_codes_by_expiry ON login_codes (expires_at)",
    "CREATE INDEX IF NOT EXISTS grants_by_expiry ON grants (expires_at)",
    "CREATE TABLE IF NOT EXISTS consents (
        user_id INTEGER NOT NULL REFERENCES users(id),
        client_id TEXT NOT NULL,
        scope TEXT NOT NULL,
        PRIMARY KEY (user_id, client_id, scope))",
    // Client-assertion jtis seen, kept until the assertion could no longer be accepted anyway.
    "CREATE TABLE IF NOT EXISTS assertion_jtis (
        client_id TEXT NOT NULL,
        jti_hash BLOB NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (client_id, jti_hash))",
    "CREATE INDEX IF NOT EXISTS assertion_jtis_by_expiry ON assertion_jtis (expires_at)",
    // RFC 8628 device authorizations. `status` is pending, approved, denied or redeemed; rows
    // stay until `keep_until` (after expiry), so a late poll still hears expired_token.
    "CREATE TABLE IF NOT EXISTS device_authorizations (
        device_code_hash BLOB PRIMARY KEY,
        user_code_mac BLOB NOT NULL UNIQUE,
        client_id TEXT NOT NULL,
        client_name TEXT,
        scope TEXT NOT NULL,
        resource TEXT,
        expires_at INTEGER NOT NULL,
        keep_until INTEGER NOT NULL,
        interval_secs INTEGER NOT NULL,
        last_poll_ms INTEGER,
        status TEXT NOT NULL DEFAULT 'pending',
        user_id INTEGER REFERENCES users(id))",
    "CREATE INDEX IF NOT EXISTS device_authorizations_by_keep ON device_authorizations (keep_until)",
    // Wrong user codes per browser and per address in the current window (RFC 8628 §5.1).
    "CREATE TABLE IF NOT EXISTS device_entry_attempts (
        key_hash BLOB PRIMARY KEY,
        failures INTEGER NOT NULL,
        window_ends INTEGER NOT NULL)",
    // Pushed authorization requests (RFC 9126), keyed by the digest of their request_uri and
    // spent by the first authorization request that names them.
    "CREATE TABLE IF NOT EXISTS pushed_requests (
        uri_hash BLOB PRIMARY KEY,
        client_id TEXT NOT NULL,
        request TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        used INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS pushed_requests_by_expiry ON pushed_requests (expires_at)",
    // PKJWT-15: the client key (RFC 7638 thumbprint) a grant is bound to. A table of its own,
    // since `CREATE TABLE IF NOT EXISTS` never adds a column to an existing file database;
    // rows go with their grant.
    "CREATE TABLE IF NOT EXISTS grant_keys (
        grant_id BLOB PRIMARY KEY REFERENCES grants(id) ON DELETE CASCADE,
        thumbprint TEXT NOT NULL)",
];

/// Selects a live refresh token's record: unused, unexpired, its family not revoked.
const LIVE_REFRESH_TOKEN: &str = "SELECT grant_id, client_id, user_id, scope, resource
     FROM refresh_tokens
     WHERE token_hash = ? AND used = 0 AND expires_at > ?
       AND grant_id IN (SELECT id FROM grants WHERE revoked = 0)";

/// A generated bearer value (request id, session id, code, token). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// 256 random bits, base64url without padding.
    pub fn generate() -> Result<Self, AsError> {
        let mut bytes = [0u8; SECRET_BYTES];
        rand::fill(&mut bytes).map_err(|_| AsError::Crypto("system random generator failed"))?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The value itself, for sending to its holder.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// SHA-256 of a presented bearer value: the only form in which bearer values are stored.
pub fn fingerprint(value: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, value.as_bytes())
        .as_ref()
        .to_vec()
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `now + ttl`, saturating.
fn expiry(ttl: Duration) -> i64 {
    unix_now().saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX))
}

/// A salted PBKDF2-HMAC-SHA256 password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    salt: Vec<u8>,
    hash: Vec<u8>,
    iterations: NonZeroU32,
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHash")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl PasswordHash {
    /// Hashes `password` with a fresh random 128-bit salt.
    pub fn new(password: &str) -> Result<Self, AsError> {
        let mut salt = vec![0u8; 16];
        rand::fill(&mut salt).map_err(|_| AsError::Crypto("system random generator failed"))?;
        let mut hash = vec![0u8; digest::SHA256_OUTPUT_LEN];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            PBKDF2_ITERATIONS,
            &salt,
            password.as_bytes(),
            &mut hash,
        );
        Ok(Self {
            salt,
            hash,
            iterations: PBKDF2_ITERATIONS,
        })
    }

    /// The prefix of the encoded form, `pbkdf2-sha256$ITERATIONS$SALT$HASH`.
    pub const ENCODED_PREFIX: &'static str = "pbkdf2-sha256$";

    /// The encoded form (salt and hash in base64url), for config files that should not hold
    /// plaintext passwords and for starting many servers without hashing again.
    pub fn encode(&self) -> String {
        format!(
            "{}{}${}${}",
            Self::ENCODED_PREFIX,
            self.iterations,
            URL_SAFE_NO_PAD.encode(&self.salt),
            URL_SAFE_NO_PAD.encode(&self.hash)
        )
    }

    /// Parses [`PasswordHash::encode`]'s form; `None` for anything else (a plaintext password).
    pub fn decode(encoded: &str) -> Option<Self> {
        let mut parts = encoded.strip_prefix(Self::ENCODED_PREFIX)?.split('$');
        let iterations = parts.next()?.parse::<NonZeroU32>().ok()?;
        let salt = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
        let hash = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
        let well_formed =
            parts.next().is_none() && salt.len() >= 8 && hash.len() == digest::SHA256_OUTPUT_LEN;
        well_formed.then_some(Self {
            salt,
            hash,
            iterations,
        })
    }

    /// Whether `password` matches, in constant time.
    pub fn verify(&self, password: &str) -> bool {
        pbkdf2::verify(
            pbkdf2::PBKDF2_HMAC_SHA256,
            self.iterations,
            &self.salt,
            password.as_bytes(),
            &self.hash,
        )
        .is_ok()
    }
}

/// The hash for a configured password: decoded when it is already in
/// [`PasswordHash::encode`]'s form, else derived on the blocking pool.
pub async fn configured_password(password: String) -> Result<PasswordHash, AsError> {
    match PasswordHash::decode(&password) {
        Some(hash) => Ok(hash),
        None => hash_password(password).await,
    }
}

/// Hashes `password` on the blocking pool (PBKDF2 is deliberately slow).
pub async fn hash_password(password: String) -> Result<PasswordHash, AsError> {
    tokio::task::spawn_blocking(move || PasswordHash::new(&password))
        .await
        .map_err(|_| AsError::Crypto("password hashing task failed"))?
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    /// Database id; the `sub` of issued tokens is derived from the username, not from this.
    pub id: i64,
    /// Login name, also the token subject.
    pub username: String,
    /// Address login codes go to.
    pub email: String,
}

#[derive(sqlx::FromRow)]
struct UserWithPassword {
    id: i64,
    username: String,
    email: String,
    password_salt: Vec<u8>,
    password_hash: Vec<u8>,
    password_iterations: i64,
}

/// An authorization request that passed validation and waits for login and consent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingRequest {
    /// The client (a CIMD URL).
    pub client_id: String,
    /// The document's `client_name`, if any, for the consent page.
    pub client_name: Option<String>,
    /// The validated redirect URI.
    pub redirect_uri: String,
    /// The client's `state`, returned verbatim.
    pub state: Option<String>,
    /// The granted scope after policy filtering (space-separated, possibly empty).
    pub scope: String,
    /// The S256 code challenge (absent only under the `skip-pkce` fault).
    pub code_challenge: Option<String>,
    /// The RFC 8707 resource indicator, if one was sent.
    pub resource: Option<String>,
    /// Set when the request approves a device authorization (RFC 8628 §3.3) instead of
    /// redirecting to a client.
    #[serde(default)]
    pub device: Option<Box<DeviceLink>>,
}

/// The device authorization a pending request decides.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceLink {
    /// base64url SHA-256 of the device_code: the row's key (the request id is sealed, so this
    /// never shows).
    pub device_code_hash: String,
    /// The user code as displayed (`XXXX-XXXX`), for the confirmation page.
    pub user_code: String,
}

/// What a pending-request lookup found.
#[derive(Debug)]
pub enum PendingLookup {
    /// The request is live and belongs to this browser.
    Found(PendingRequest),
    /// No live request has that id (unknown, forged, expired or finished).
    Missing,
    /// The request exists but was started in another browser.
    OtherBrowser,
}

/// Outcome of checking a login code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginCodeCheck {
    /// The code was right; it is now used up.
    Accepted,
    /// The code was wrong; this many attempts remain.
    Wrong {
        /// Attempts left before the code locks.
        attempts_left: i64,
    },
    /// No usable code: never sent, expired, used, or locked after too many wrong attempts.
    Unusable,
}

/// The contents of an authorization code.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CodeGrant {
    /// The client the code was issued to.
    pub client_id: String,
    /// The redirect URI of the authorization request.
    pub redirect_uri: String,
    /// The S256 challenge, if one was sent.
    pub code_challenge: Option<String>,
    /// The granted scope.
    pub scope: String,
    /// The user who consented.
    pub user_id: i64,
    /// The RFC 8707 resource, if one was sent.
    pub resource: Option<String>,
}

/// A redeemed authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeemedCode {
    /// What the code grants.
    pub grant: CodeGrant,
    /// The grant family id, for refresh tokens issued from this code.
    pub grant_id: Vec<u8>,
    /// Whether the code had expired (it is burnt all the same).
    pub expired: bool,
}

/// Outcome of presenting an authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// First use: the code is now spent.
    Redeemed(RedeemedCode),
    /// The code was already used; its grant (every refresh token issued from it) is now revoked.
    Replayed,
    /// No such code.
    Unknown,
}

/// A refresh token's record.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefreshGrant {
    /// The grant family.
    pub grant_id: Vec<u8>,
    /// The client the token was issued to.
    pub client_id: String,
    /// The user.
    pub user_id: i64,
    /// The granted scope.
    pub scope: String,
    /// The RFC 8707 resource, if any.
    pub resource: Option<String>,
}

/// Outcome of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshUse {
    /// The token was live; unless rotation is off it is now retired.
    Valid(RefreshGrant),
    /// The token was already rotated out; its whole family is now revoked.
    Replayed,
    /// The token's family was revoked earlier.
    Revoked,
    /// The token expired.
    Expired,
    /// No such token.
    Unknown,
}

/// The database handle. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    /// Seals pending authorization requests; per instance.
    requests: std::sync::Arc<RequestSealer>,
    /// Key for login-code MACs; per instance, so codes do not outlive a restart.
    login_code_key: hmac::Key,
    /// A hash checked against for unknown usernames, so they cost as much as known ones; made on
    /// first use, so starting a server costs no extra derivation.
    decoy: std::sync::Arc<tokio::sync::OnceCell<PasswordHash>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The connection pool, for the tables other modules own (dynamic registration).
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Opens (creating if needed) the database at `url` and creates the schema.
    ///
    /// `sqlite::memory:` gives a private in-memory database per call. sqlx names it and opens it in
    /// shared-cache mode, so every pool connection sees the same data; the pool never closes its
    /// connections, because an in-memory database vanishes with its last connection.
    ///
    /// Measured with 16 tasks doing insert, select and conditional update (release build): one
    /// shared-cache connection ran 24 000 ops/s; four ran 75 000 but failed one operation in seven
    /// with `SQLITE_LOCKED`; the `memdb` VFS with four connections (real locks, busy waits) ran
    /// 19 500. Debug builds favour `memdb` (14 000 against 8 600), but the conformance runs are
    /// release builds, and one connection can never fail on a lock.
    pub async fn open(url: &str) -> Result<Self, AsError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = if in_memory {
            options
        } else {
            options.journal_mode(SqliteJournalMode::Wal)
        };
        // Shared-cache in-memory databases lock whole tables and answer SQLITE_LOCKED, which the
        // busy timeout does not cover; one connection serialises access instead (SQLite has a
        // single writer anyway). A file database in WAL mode can take readers in parallel.
        let pool = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { 4 })
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        for statement in SCHEMA {
            sqlx::query(*statement).execute(&pool).await?;
        }
        let mut key = [0u8; 32];
        rand::fill(&mut key).map_err(|_| AsError::Crypto("system random generator failed"))?;
        Ok(Self {
            pool,
            requests: std::sync::Arc::new(RequestSealer::new()?),
            login_code_key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            decoy: std::sync::Arc::default(),
        })
    }

    /// Creates or updates a user (matched by username).
    pub async fn upsert_user(
        &self,
        username: &str,
        email: &str,
        password: &PasswordHash,
    ) -> Result<(), AsError> {
        sqlx::query(
            "INSERT INTO users (username, email, password_salt, password_hash, password_iterations)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (username) DO UPDATE SET email = excluded.email,
               password_salt = excluded.password_salt, password_hash = excluded.password_hash,
               password_iterations = excluded.password_iterations",
        )
        .bind(username)
        .bind(email)
        .bind(&password.salt)
        .bind(&password.hash)
        .bind(i64::from(password.iterations.get()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The user with this e-mail address (case-insensitive), if any.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, AsError> {
        Ok(
            sqlx::query_as("SELECT id, username, email FROM users WHERE email = ?")
                .bind(email)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The user with this username if `password` matches. Spends the same PBKDF2 work for unknown
    /// users, so response time does not tell which usernames exist.
    pub async fn check_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<User>, AsError> {
        let row: Option<UserWithPassword> = sqlx::query_as(
            "SELECT id, username, email, password_salt, password_hash, password_iterations
             FROM users WHERE username = ?",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        let (stored, user) = if let Some(row) = row {
            let iterations = u32::try_from(row.password_iterations)
                .ok()
                .and_then(NonZeroU32::new)
                .ok_or(AsError::Crypto(
                    "stored password hash has an invalid iteration count",
                ))?;
            let stored = PasswordHash {
                salt: row.password_salt,
                hash: row.password_hash,
                iterations,
            };
            (
                stored,
                Some(User {
                    id: row.id,
                    username: row.username,
                    email: row.email,
                }),
            )
        } else {
            let decoy = self
                .decoy
                .get_or_try_init(|| hash_password("decoy password".to_owned()))
                .await?;
            (decoy.clone(), None)
        };
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || stored.verify(&password))
            .await
            .map_err(|_| AsError::Crypto("password verification task failed"))?;
        Ok(user.filter(|_| ok))
    }

    /// Seals a validated authorization request for `browser`, live for `ttl`; returns the
    /// request id that pages carry in their URLs and forms. Nothing is written: the id is the
    /// sealed request itself (see the module docs).
    pub fn insert_pending(
        &self,
        request: &PendingRequest,
        browser: &str,
        ttl: Duration,
    ) -> Result<Secret, AsError> {
        self.requests.seal(&Sealed {
            browser: URL_SAFE_NO_PAD.encode(fingerprint(browser)),
            expires_at: expiry(ttl),
            request: request.clone(),
        })
    }

    /// The live pending request `request_id`, checked against the browser it was started in.
    pub async fn pending(
        &self,
        request_id: &str,
        browser: Option<&str>,
    ) -> Result<PendingLookup, AsError> {
        let Some(sealed) = self.requests.open(request_id) else {
            return Ok(PendingLookup::Missing);
        };
        if sealed.expires_at <= unix_now() {
            return Ok(PendingLookup::Missing);
        }
        let finished: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM finished_requests WHERE id_hash = ?")
                .bind(fingerprint(request_id))
                .fetch_optional(&self.pool)
                .await?;
        if finished.is_some() {
            return Ok(PendingLookup::Missing);
        }
        if browser.map(|b| URL_SAFE_NO_PAD.encode(fingerprint(b))) != Some(sealed.browser) {
            return Ok(PendingLookup::OtherBrowser);
        }
        Ok(PendingLookup::Found(sealed.request))
    }

    /// Marks the pending request finished; `false` if it already was (a replayed form) or if
    /// `request_id` is not a live request of this server.
    pub async fn finish_pending(&self, request_id: &str) -> Result<bool, AsError> {
        let Some(sealed) = self.requests.open(request_id) else {
            return Ok(false);
        };
        let done = sqlx::query(
            "INSERT OR IGNORE INTO finished_requests (id_hash, expires_at) VALUES (?, ?)",
        )
        .bind(fingerprint(request_id))
        .bind(sealed.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Starts a browser session for `user_id`; returns the session id for the cookie.
    pub async fn create_session(&self, user_id: i64, ttl: Duration) -> Result<Secret, AsError> {
        let id = Secret::generate()?;
        sqlx::query("INSERT INTO sessions (id_hash, user_id, expires_at) VALUES (?, ?, ?)")
            .bind(fingerprint(id.expose()))
            .bind(user_id)
            .bind(expiry(ttl))
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    /// The user with database id `id`.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>, AsError> {
        Ok(
            sqlx::query_as("SELECT id, username, email FROM users WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The user of a live session.
    pub async fn session_user(&self, session_id: &str) -> Result<Option<User>, AsError> {
        Ok(sqlx::query_as(
            "SELECT users.id, users.username, users.email FROM sessions
             JOIN users ON users.id = sessions.user_id
             WHERE sessions.id_hash = ? AND sessions.expires_at > ?",
        )
        .bind(fingerprint(session_id))
        .bind(unix_now())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Generates and stores a six-digit login code for (`request_id`, `email`), replacing any
    /// earlier one; returns the code for the mail.
    pub async fn issue_login_code(
        &self,
        request_id: &str,
        email: &str,
        ttl: Duration,
        attempts: u32,
    ) -> Result<String, AsError> {
        let code = six_digits()?;
        sqlx::query(
            "INSERT OR REPLACE INTO login_codes
               (request_hash, email, code_mac, expires_at, attempts_left, used)
             VALUES (?, ?, ?, ?, ?, 0)",
        )
        .bind(fingerprint(request_id))
        .bind(email)
        .bind(self.login_code_mac(request_id, email, &code))
        .bind(expiry(ttl))
        .bind(i64::from(attempts))
        .execute(&self.pool)
        .await?;
        Ok(code)
    }

    /// Checks a login code. Every check spends one attempt first (atomically), so concurrent
    /// guesses cannot exceed the limit; a right code is then consumed with a one-time update.
    pub async fn check_login_code(
        &self,
        request_id: &str,
        email: &str,
        code: &str,
    ) -> Result<LoginCodeCheck, AsError> {
        let request_hash = fingerprint(request_id);
        let spent: Option<(Vec<u8>, i64)> = sqlx::query_as(
            "UPDATE login_codes SET attempts_left = attempts_left - 1
             WHERE request_hash = ? AND email = ? AND used = 0 AND attempts_left > 0
               AND expires_at > ?
             RETURNING code_mac, attempts_left",
        )
        .bind(&request_hash)
        .bind(email)
        .bind(unix_now())
        .fetch_optional(&self.pool)
        .await?;
        let Some((stored, attempts_left)) = spent else {
            return Ok(LoginCodeCheck::Unusable);
        };
        let presented = self.login_code_mac(request_id, email, code);
        if aws_lc_rs::constant_time::verify_slices_are_equal(&stored, &presented).is_err() {
            return Ok(LoginCodeCheck::Wrong { attempts_left });
        }
        let used = sqlx::query(
            "UPDATE login_codes SET used = 1 WHERE request_hash = ? AND email = ? AND used = 0",
        )
        .bind(&request_hash)
        .bind(email)
        .execute(&self.pool)
        .await?;
        Ok(if used.rows_affected() == 1 {
            LoginCodeCheck::Accepted
        } else {
            LoginCodeCheck::Unusable
        })
    }

    fn login_code_mac(&self, request_id: &str, email: &str, code: &str) -> Vec<u8> {
        let message = format!("{request_id}\n{}\n{code}", email.to_ascii_lowercase());
        hmac::sign(&self.login_code_key, message.as_bytes())
            .as_ref()
            .to_vec()
    }

    /// Whether `user_id` already consented to `client_id` for every scope in `scope`.
    pub async fn has_consent(
        &self,
        user_id: i64,
        client_id: &str,
        scope: &str,
    ) -> Result<bool, AsError> {
        let stored: Vec<(String,)> =
            sqlx::query_as("SELECT scope FROM consents WHERE user_id = ? AND client_id = ?")
                .bind(user_id)
                .bind(client_id)
                .fetch_all(&self.pool)
                .await?;
        let wanted = scope_set(scope);
        Ok(stored
            .iter()
            .any(|(granted,)| wanted.is_subset(&scope_set(granted))))
    }

    /// Remembers that `user_id` consented to `client_id` for `scope`.
    pub async fn record_consent(
        &self,
        user_id: i64,
        client_id: &str,
        scope: &str,
    ) -> Result<(), AsError> {
        let normalized = scope_set(scope).into_iter().collect::<Vec<_>>().join(" ");
        sqlx::query("INSERT OR IGNORE INTO consents (user_id, client_id, scope) VALUES (?, ?, ?)")
            .bind(user_id)
            .bind(client_id)
            .bind(normalized)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Issues an authorization code for `grant`, starting a new grant family (kept at least as
    /// long as the code, so a late replay is still recognised and revokes the family).
    pub async fn issue_code(&self, grant: &CodeGrant, ttl: Duration) -> Result<Secret, AsError> {
        let code = Secret::generate()?;
        let grant_id = fingerprint(Secret::generate()?.expose());
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO grants (id, expires_at) VALUES (?, ?)")
            .bind(&grant_id)
            .bind(expiry(ttl))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, grant_id, client_id, redirect_uri,
               code_challenge, scope, user_id, resource, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(fingerprint(code.expose()))
        .bind(&grant_id)
        .bind(&grant.client_id)
        .bind(&grant.redirect_uri)
        .bind(&grant.code_challenge)
        .bind(&grant.scope)
        .bind(grant.user_id)
        .bind(&grant.resource)
        .bind(expiry(ttl))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(code)
    }

    /// Redeems an authorization code. With `allow_reuse` (the `reuse-codes` fault) a used code
    /// stays redeemable.
    pub async fn redeem_code(
        &self,
        code: &str,
        allow_reuse: bool,
    ) -> Result<CodeRedemption, AsError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            grant_id: Vec<u8>,
            expires_at: i64,
            #[sqlx(flatten)]
            grant: CodeGrant,
        }
        let hash = fingerprint(code);
        // OAUTH-02: one conditional update decides the single winner among concurrent redemptions.
        let sql = if allow_reuse {
            "UPDATE authorization_codes SET used = 1 WHERE code_hash = ?
             RETURNING grant_id, expires_at, client_id, redirect_uri, code_challenge, scope,
               user_id, resource"
        } else {
            "UPDATE authorization_codes SET used = 1 WHERE code_hash = ? AND used = 0
             RETURNING grant_id, expires_at, client_id, redirect_uri, code_challenge, scope,
               user_id, resource"
        };
        let row: Option<Row> = sqlx::query_as(sql)
            .bind(&hash)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = row {
            return Ok(CodeRedemption::Redeemed(RedeemedCode {
                grant: row.grant,
                grant_id: row.grant_id,
                expired: row.expires_at <= unix_now(),
            }));
        }
        // OAUTH-02: a replayed code revokes the tokens issued from it.
        let revoked = sqlx::query(
            "UPDATE grants SET revoked = 1
             WHERE id = (SELECT grant_id FROM authorization_codes WHERE code_hash = ?)",
        )
        .bind(&hash)
        .execute(&self.pool)
        .await?;
        Ok(if revoked.rows_affected() == 1 {
            CodeRedemption::Replayed
        } else {
            CodeRedemption::Unknown
        })
    }

    /// Issues a refresh token in the family `grant.grant_id`.
    pub async fn issue_refresh_token(
        &self,
        grant: &RefreshGrant,
        ttl: Duration,
    ) -> Result<Secret, AsError> {
        let token = Secret::generate()?;
        let expires_at = expiry(ttl);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, scope, resource,
               expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(fingerprint(token.expose()))
        .bind(&grant.grant_id)
        .bind(&grant.client_id)
        .bind(grant.user_id)
        .bind(&grant.scope)
        .bind(&grant.resource)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        // The family lives as long as its newest token, so purging never cuts a live token off.
        sqlx::query("UPDATE grants SET expires_at = max(expires_at, ?) WHERE id = ?")
            .bind(expires_at)
            .bind(&grant.grant_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// The record of a live refresh token (unused, unexpired, family not revoked), without
    /// using it.
    pub async fn live_refresh_grant(&self, token: &str) -> Result<Option<RefreshGrant>, AsError> {
        Ok(sqlx::query_as(LIVE_REFRESH_TOKEN)
            .bind(fingerprint(token))
            .bind(unix_now())
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Uses a refresh token. With `rotate` the token is retired (one-time); a retired token
    /// presented again revokes its whole family (MCP-SEC-03). Without `rotate` (the
    /// `no-refresh-rotation` fault) it stays valid.
    pub async fn use_refresh_token(
        &self,
        token: &str,
        rotate: bool,
    ) -> Result<RefreshUse, AsError> {
        let hash = fingerprint(token);
        let now = unix_now();
        let sql = if rotate {
            "UPDATE refresh_tokens SET used = 1
             WHERE token_hash = ? AND used = 0 AND expires_at > ?
               AND grant_id IN (SELECT id FROM grants WHERE revoked = 0)
             RETURNING grant_id, client_id, user_id, scope, resource"
        } else {
            LIVE_REFRESH_TOKEN
        };
        let live: Option<RefreshGrant> = sqlx::query_as(sql)
            .bind(&hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(grant) = live {
            return Ok(RefreshUse::Valid(grant));
        }
        let found: Option<(Vec<u8>, i64, i64, i64)> = sqlx::query_as(
            "SELECT refresh_tokens.grant_id, refresh_tokens.used, grants.revoked,
               refresh_tokens.expires_at
             FROM refresh_tokens JOIN grants ON grants.id = refresh_tokens.grant_id
             WHERE refresh_tokens.token_hash = ?",
        )
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some((grant_id, used, revoked, expires_at)) = found else {
            return Ok(RefreshUse::Unknown);
        };
        if revoked != 0 {
            return Ok(RefreshUse::Revoked);
        }
        if used != 0 {
            sqlx::query("UPDATE grants SET revoked = 1 WHERE id = ?")
                .bind(&grant_id)
                .execute(&self.pool)
                .await?;
            return Ok(RefreshUse::Replayed);
        }
        debug_assert!(
            expires_at <= now,
            "a live, unused, unrevoked token must have matched"
        );
        Ok(RefreshUse::Expired)
    }

    /// Binds the grant `grant_id` to the client key with RFC 7638 thumbprint `thumbprint`
    /// (PKJWT-15). A grant is bound once, when its code is redeemed, before any refresh token
    /// of it exists.
    pub async fn bind_grant_key(&self, grant_id: &[u8], thumbprint: &str) -> Result<(), AsError> {
        sqlx::query("INSERT OR REPLACE INTO grant_keys (grant_id, thumbprint) VALUES (?, ?)")
            .bind(grant_id)
            .bind(thumbprint)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The thumbprint of the client key the grant `grant_id` is bound to, if it is bound.
    pub async fn grant_key(&self, grant_id: &[u8]) -> Result<Option<String>, AsError> {
        Ok(
            sqlx::query_scalar("SELECT thumbprint FROM grant_keys WHERE grant_id = ?")
                .bind(grant_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Records the first use of client assertion `jti` by `client_id`, remembered until
    /// `expires_at`; `false` if it was already used and is still remembered (PKJWT-09). One
    /// statement decides, so of many concurrent uses exactly one gets `true`; a remembered jti
    /// whose time has passed may be used again, since its assertion would have expired.
    pub async fn use_assertion_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, AsError> {
        let inserted = sqlx::query(
            "INSERT INTO assertion_jtis (client_id, jti_hash, expires_at) VALUES (?, ?, ?)
             ON CONFLICT (client_id, jti_hash) DO UPDATE SET expires_at = excluded.expires_at
             WHERE assertion_jtis.expires_at <= ?",
        )
        .bind(client_id)
        .bind(fingerprint(jti))
        .bind(expires_at)
        .bind(unix_now())
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Deletes expired rows (finished requests, sessions, login codes, codes, grants and their
    /// tokens, assertion jtis). Used-but-unexpired codes and tokens stay, so replays are still recognised.
    pub async fn purge_expired(&self) -> Result<(), AsError> {
        const PURGE: &[&str] = &[
            "DELETE FROM finished_requests WHERE expires_at <= ?",
            "DELETE FROM sessions WHERE expires_at <= ?",
            "DELETE FROM login_codes WHERE expires_at <= ?",
            "DELETE FROM refresh_tokens WHERE grant_id IN (SELECT id FROM grants WHERE expires_at <= ?)",
            "DELETE FROM authorization_codes WHERE grant_id IN (SELECT id FROM grants WHERE expires_at <= ?)",
            "DELETE FROM grants WHERE expires_at <= ?",
            "DELETE FROM assertion_jtis WHERE expires_at <= ?",
            "DELETE FROM device_authorizations WHERE keep_until <= ?",
            "DELETE FROM device_entry_attempts WHERE window_ends <= ?",
            "DELETE FROM pushed_requests WHERE expires_at <= ?",
        ];
        let now = unix_now();
        let mut tx = self.pool.begin().await?;
        for statement in PURGE {
            sqlx::query(*statement).bind(now).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The user-code alphabet of RFC 8628 §6.1: consonants only (no accidental words) and nothing
/// that reads as a digit.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Characters in a user code (8 of 20: about 34.5 bits, RFC 8628 §5.1's example).
pub const USER_CODE_LENGTH: usize = 8;

/// A device authorization to store, as the device authorization endpoint validated it.
#[derive(Debug, Clone, Copy)]
pub struct NewDeviceAuthorization<'a> {
    /// The client that asked.
    pub client_id: &'a str,
    /// Its display name, for the confirmation page.
    pub client_name: Option<&'a str>,
    /// The scope after policy filtering.
    pub scope: &'a str,
    /// The RFC 8707 resource, if one was sent.
    pub resource: Option<&'a str>,
    /// How long the device code and user code live.
    pub ttl: Duration,
    /// The polling interval handed to the device.
    pub interval_secs: u64,
}

/// An issued device authorization: the two codes, shown once.
#[derive(Debug)]
pub struct IssuedDeviceCodes {
    /// The device code (256 bits), for the device only.
    pub device_code: Secret,
    /// The user code, `XXXX-XXXX`, for the person.
    pub user_code: String,
}

/// A live, undecided device authorization found by its user code.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeviceRequest {
    /// SHA-256 of its device code.
    pub device_code_hash: Vec<u8>,
    /// The client that asked.
    pub client_id: String,
    /// Its display name, if any.
    pub client_name: Option<String>,
    /// The scope asked for.
    pub scope: String,
    /// The RFC 8707 resource, if any.
    pub resource: Option<String>,
}

/// How the token endpoint treats a device code (the faults bend these).
#[derive(Debug, Clone, Copy)]
pub struct PollRules {
    /// A redeemed device code may be redeemed again (the `reusable-device-code` fault).
    pub reusable: bool,
    /// Polls faster than the interval get `slow_down` (off under the `no-slow-down` fault).
    pub slow_down: bool,
    /// Expired device codes are refused (off under the `device-code-never-expires` fault).
    pub expiry: bool,
    /// Lifetime of the grant family an approved code starts (refresh tokens extend it).
    pub grant_ttl: Duration,
}

/// Outcome of a device polling the token endpoint (RFC 8628 §3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePoll {
    /// Approved and now redeemed: the grant to issue tokens for (a new family).
    Approved(RefreshGrant),
    /// The user has not decided yet.
    Pending,
    /// Polled before the interval passed; the interval is now this many seconds.
    SlowDown {
        /// The new interval.
        interval_secs: i64,
    },
    /// The user denied it.
    Denied,
    /// Its lifetime passed.
    Expired,
    /// Tokens were already issued for it.
    Redeemed,
    /// It belongs to another client.
    OtherClient,
    /// No such device code.
    Unknown,
}

impl Store {
    /// Stores a device authorization and returns its codes. Only digests are kept: SHA-256 of
    /// the device code, a keyed MAC of the user code (34.5 bits would fall to a plain hash).
    pub async fn insert_device_authorization(
        &self,
        new: &NewDeviceAuthorization<'_>,
    ) -> Result<IssuedDeviceCodes, AsError> {
        let device_code = Secret::generate()?;
        let expires_at = expiry(new.ttl);
        // Rows outlive their codes by the codes' own lifetime, so a late poll hears
        // expired_token rather than an unknown code.
        let keep_until = expires_at.saturating_add(i64::try_from(new.ttl.as_secs()).unwrap_or(0));
        // A user code may collide with a stored one (live or kept); draw again. Eight draws all
        // colliding would need a table holding most of the 20^8 codes.
        for _ in 0..8 {
            let user_code = user_code()?;
            let inserted = sqlx::query(
                "INSERT OR IGNORE INTO device_authorizations (device_code_hash, user_code_mac,
                   client_id, client_name, scope, resource, expires_at, keep_until, interval_secs)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(fingerprint(device_code.expose()))
            .bind(self.user_code_mac(&user_code))
            .bind(new.client_id)
            .bind(new.client_name)
            .bind(new.scope)
            .bind(new.resource)
            .bind(expires_at)
            .bind(keep_until)
            .bind(i64::try_from(new.interval_secs).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await?;
            if inserted.rows_affected() == 1 {
                let (head, tail) = user_code.split_at(USER_CODE_LENGTH / 2);
                return Ok(IssuedDeviceCodes {
                    device_code,
                    user_code: format!("{head}-{tail}"),
                });
            }
        }
        Err(AsError::Crypto("no unused user code after eight draws"))
    }

    /// The undecided device authorization whose user code is `normalized` (the eight
    /// characters, upper case), if it is live (or, without `expiry`, whatever its age).
    pub async fn device_request(
        &self,
        normalized: &str,
        expiry: bool,
    ) -> Result<Option<DeviceRequest>, AsError> {
        Ok(sqlx::query_as(
            "SELECT device_code_hash, client_id, client_name, scope, resource
             FROM device_authorizations
             WHERE user_code_mac = ? AND status = 'pending' AND expires_at > ?",
        )
        .bind(self.user_code_mac(normalized))
        .bind(if expiry { unix_now() } else { i64::MIN })
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Records the user's decision on a pending device authorization: approved for `user_id`,
    /// or denied when `user_id` is `None`. `false` if it was no longer pending and live.
    pub async fn decide_device(
        &self,
        device_code_hash: &[u8],
        user_id: Option<i64>,
        expiry: bool,
    ) -> Result<bool, AsError> {
        let decided = sqlx::query(
            "UPDATE device_authorizations SET status = ?, user_id = ?
             WHERE device_code_hash = ? AND status = 'pending' AND expires_at > ?",
        )
        .bind(if user_id.is_some() {
            "approved"
        } else {
            "denied"
        })
        .bind(user_id)
        .bind(device_code_hash)
        .bind(if expiry { unix_now() } else { i64::MIN })
        .execute(&self.pool)
        .await?;
        Ok(decided.rows_affected() == 1)
    }

    /// A device's token request with `device_code`, as `client_id`. Redemption is one
    /// conditional `UPDATE … WHERE status = 'approved'`, so of concurrent polls exactly one gets
    /// the tokens (DEV-08); everything else is read afterwards and only ever answers an error.
    pub async fn poll_device(
        &self,
        device_code: &str,
        client_id: &str,
        rules: PollRules,
    ) -> Result<DevicePoll, AsError> {
        #[derive(sqlx::FromRow)]
        struct Redeemed {
            client_id: String,
            scope: String,
            resource: Option<String>,
            user_id: Option<i64>,
        }
        let hash = fingerprint(device_code);
        let now = unix_now();
        let live_after = if rules.expiry { now } else { i64::MIN };
        let mut tx = self.pool.begin().await?;
        let redeemed: Option<Redeemed> = sqlx::query_as(
            "UPDATE device_authorizations SET status = 'redeemed'
             WHERE device_code_hash = ? AND client_id = ? AND status IN ('approved', ?)
               AND expires_at > ?
             RETURNING client_id, scope, resource, user_id",
        )
        .bind(&hash)
        .bind(client_id)
        .bind(if rules.reusable {
            "redeemed"
        } else {
            "approved"
        })
        .bind(live_after)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = redeemed {
            let user_id = row.user_id.ok_or(AsError::Crypto(
                "an approved device authorization has no user",
            ))?;
            let grant_id = fingerprint(Secret::generate()?.expose());
            sqlx::query("INSERT INTO grants (id, expires_at) VALUES (?, ?)")
                .bind(&grant_id)
                .bind(expiry(rules.grant_ttl))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(DevicePoll::Approved(RefreshGrant {
                grant_id,
                client_id: row.client_id,
                user_id,
                scope: row.scope,
                resource: row.resource,
            }));
        }
        tx.commit().await?;
        let found: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT client_id, status, expires_at FROM device_authorizations
             WHERE device_code_hash = ?",
        )
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some((owner, status, expires_at)) = found else {
            return Ok(DevicePoll::Unknown);
        };
        if owner != client_id {
            return Ok(DevicePoll::OtherClient);
        }
        match status.as_str() {
            "redeemed" => return Ok(DevicePoll::Redeemed),
            _ if expires_at <= live_after => return Ok(DevicePoll::Expired),
            "denied" => return Ok(DevicePoll::Denied),
            // Approved between the two statements: the next poll redeems it.
            "approved" => return Ok(DevicePoll::Pending),
            _ => {}
        }
        let now_ms = unix_now_ms();
        if rules.slow_down {
            // DEV-06: too soon after the previous poll; the interval grows for good (§3.5).
            let slowed: Option<i64> = sqlx::query_scalar(
                "UPDATE device_authorizations
                 SET interval_secs = interval_secs + 5, last_poll_ms = ?
                 WHERE device_code_hash = ? AND last_poll_ms IS NOT NULL
                   AND ? < last_poll_ms + interval_secs * 1000
                 RETURNING interval_secs",
            )
            .bind(now_ms)
            .bind(&hash)
            .bind(now_ms)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(interval_secs) = slowed {
                return Ok(DevicePoll::SlowDown { interval_secs });
            }
        }
        sqlx::query("UPDATE device_authorizations SET last_poll_ms = ? WHERE device_code_hash = ?")
            .bind(now_ms)
            .bind(&hash)
            .execute(&self.pool)
            .await?;
        Ok(DevicePoll::Pending)
    }

    /// Spends one user-code attempt for each `(key, limit)` in a window of `window`; `false`
    /// (and nothing spent) if any key has used up its limit. Spending before checking the code
    /// keeps concurrent guesses within the limit; [`Store::refund_entry_attempts`] gives a right
    /// code's attempt back.
    pub async fn spend_entry_attempt(
        &self,
        keys: &[(&str, i64)],
        window: Duration,
    ) -> Result<bool, AsError> {
        let now = unix_now();
        let mut tx = self.pool.begin().await?;
        for (key, limit) in keys {
            let spent = sqlx::query(
                "INSERT INTO device_entry_attempts (key_hash, failures, window_ends)
                 VALUES (?, 1, ?)
                 ON CONFLICT (key_hash) DO UPDATE SET
                   failures = CASE WHEN window_ends <= ? THEN 1 ELSE failures + 1 END,
                   window_ends = CASE WHEN window_ends <= ? THEN excluded.window_ends
                                      ELSE window_ends END
                 WHERE window_ends <= ? OR failures < ?",
            )
            .bind(fingerprint(key))
            .bind(expiry(window))
            .bind(now)
            .bind(now)
            .bind(now)
            .bind(limit)
            .execute(&mut *tx)
            .await?;
            if spent.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Gives back the attempt a right user code spent.
    pub async fn refund_entry_attempts(&self, keys: &[(&str, i64)]) -> Result<(), AsError> {
        for (key, _) in keys {
            sqlx::query(
                "UPDATE device_entry_attempts SET failures = failures - 1
                 WHERE key_hash = ? AND failures > 0",
            )
            .bind(fingerprint(key))
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    fn user_code_mac(&self, normalized: &str) -> Vec<u8> {
        // Domain-separated from login-code MACs, which share the key.
        let message = format!("device user code\n{normalized}");
        hmac::sign(&self.login_code_key, message.as_bytes())
            .as_ref()
            .to_vec()
    }
}

/// Milliseconds since the Unix epoch (poll intervals are compared at this resolution).
fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Eight uniformly random characters of [`USER_CODE_ALPHABET`].
fn user_code() -> Result<String, AsError> {
    let mut code = String::with_capacity(USER_CODE_LENGTH);
    while code.len() < USER_CODE_LENGTH {
        let mut bytes = [0u8; 16];
        rand::fill(&mut bytes).map_err(|_| AsError::Crypto("system random generator failed"))?;
        // Rejection sampling: 240 is the largest multiple of 20 in a byte, so no bias.
        for byte in bytes.into_iter().filter(|b| *b < 240) {
            if code.len() < USER_CODE_LENGTH {
                code.push(char::from(USER_CODE_ALPHABET[usize::from(byte % 20)]));
            }
        }
    }
    Ok(code)
}

/// What naming a pushed `request_uri` found (RFC 9126 §4).
#[derive(Debug)]
pub enum PushedLookup {
    /// The pushed request, now spent.
    Taken(PendingRequest),
    /// Another client pushed it; it stays usable by that client.
    OtherClient,
    /// No live, unused pushed request has that `request_uri`.
    Missing,
}

impl Store {
    /// Stores a pushed authorization request of `request.client_id`, live for `ttl`; returns the
    /// random part of its `request_uri` (only its digest is stored).
    pub async fn insert_pushed(
        &self,
        request: &PendingRequest,
        ttl: Duration,
    ) -> Result<Secret, AsError> {
        let reference = Secret::generate()?;
        let json = serde_json::to_string(request)
            .map_err(|_| AsError::Crypto("pushed request encoding failed"))?;
        sqlx::query(
            "INSERT INTO pushed_requests (uri_hash, client_id, request, expires_at)
             VALUES (?, ?, ?, ?)",
        )
        .bind(fingerprint(reference.expose()))
        .bind(&request.client_id)
        .bind(json)
        .bind(expiry(ttl))
        .execute(&self.pool)
        .await?;
        Ok(reference)
    }

    /// Takes the pushed request `reference` for `client_id`: spent by one conditional `UPDATE`,
    /// so of concurrent uses exactly one wins. With `reusable` (the `reusable-request-uri` fault)
    /// it is not spent; with `any_client` (the `ignore-par-client-id` fault) any client may take
    /// it.
    pub async fn take_pushed(
        &self,
        reference: &str,
        client_id: &str,
        reusable: bool,
        any_client: bool,
    ) -> Result<PushedLookup, AsError> {
        let taken: Option<String> = sqlx::query_scalar(
            "UPDATE pushed_requests SET used = ?
             WHERE uri_hash = ? AND (client_id = ? OR ?) AND used = 0 AND expires_at > ?
             RETURNING request",
        )
        .bind(!reusable)
        .bind(fingerprint(reference))
        .bind(client_id)
        .bind(any_client)
        .bind(unix_now())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(json) = taken {
            return serde_json::from_str(&json)
                .map(PushedLookup::Taken)
                .map_err(|_| AsError::Crypto("a stored pushed request does not decode"));
        }
        let other: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM pushed_requests
             WHERE uri_hash = ? AND client_id <> ? AND used = 0 AND expires_at > ?",
        )
        .bind(fingerprint(reference))
        .bind(client_id)
        .bind(unix_now())
        .fetch_optional(&self.pool)
        .await?;
        Ok(if other.is_some() {
            PushedLookup::OtherClient
        } else {
            PushedLookup::Missing
        })
    }
}

/// What a request id seals: the request, the browser it is bound to and its expiry.
#[derive(serde::Serialize, serde::Deserialize)]
struct Sealed {
    /// base64url SHA-256 of the browser-binding cookie.
    browser: String,
    /// Unix seconds.
    expires_at: i64,
    request: PendingRequest,
}

/// AES-256-GCM over [`Sealed`] requests: confidential (the id in a URL does not show `state` or
/// the scope) and unforgeable (only this instance can make an id that opens).
struct RequestSealer {
    key: aead::LessSafeKey,
    /// Nonces are a counter, never random: unique under one key for the instance's lifetime, where
    /// random 96-bit nonces would make a collision likely after some 2^32 requests.
    next_nonce: std::sync::atomic::AtomicU64,
}

impl RequestSealer {
    /// Domain separation: a sealed value made for another purpose never opens as a request.
    const AAD: &'static [u8] = b"reference-as pending authorization request v1";

    fn new() -> Result<Self, AsError> {
        let mut key = [0u8; 32];
        rand::fill(&mut key).map_err(|_| AsError::Crypto("system random generator failed"))?;
        let key = aead::UnboundKey::new(&aead::AES_256_GCM, &key)
            .map_err(|_| AsError::Crypto("AES-256-GCM key setup failed"))?;
        Ok(Self {
            key: aead::LessSafeKey::new(key),
            next_nonce: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// `nonce ‖ ciphertext ‖ tag`, base64url.
    fn seal(&self, sealed: &Sealed) -> Result<Secret, AsError> {
        let counter = self
            .next_nonce
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut nonce = [0u8; aead::NONCE_LEN];
        nonce[aead::NONCE_LEN - 8..].copy_from_slice(&counter.to_be_bytes());
        let mut buffer = nonce.to_vec();
        serde_json::to_writer(&mut buffer, sealed)
            .map_err(|_| AsError::Crypto("pending request encoding failed"))?;
        let mut body = buffer.split_off(aead::NONCE_LEN);
        self.key
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(Self::AAD),
                &mut body,
            )
            .map_err(|_| AsError::Crypto("pending request sealing failed"))?;
        buffer.extend_from_slice(&body);
        Ok(Secret(URL_SAFE_NO_PAD.encode(buffer)))
    }

    /// The request `id` seals, or `None` for anything this instance did not seal.
    fn open(&self, id: &str) -> Option<Sealed> {
        let mut bytes = URL_SAFE_NO_PAD.decode(id).ok()?;
        if bytes.len() < aead::NONCE_LEN + aead::AES_256_GCM.tag_len() {
            return None;
        }
        let mut body = bytes.split_off(aead::NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(&bytes).ok()?;
        let plain = self
            .key
            .open_in_place(nonce, aead::Aad::from(Self::AAD), &mut body)
            .ok()?;
        serde_json::from_slice(plain).ok()
    }
}

/// Six uniformly random decimal digits.
fn six_digits() -> Result<String, AsError> {
    // Rejection sampling: 4 294 000 000 is the largest multiple of 10^6 below 2^32, so taking the
    // remainder of values under it has no modulo bias.
    loop {
        let mut bytes = [0u8; 4];
        rand::fill(&mut bytes).map_err(|_| AsError::Crypto("system random generator failed"))?;
        let value = u32::from_be_bytes(bytes);
        if value < 4_294_000_000 {
            return Ok(format!("{:06}", value % 1_000_000));
        }
    }
}

/// The distinct scope tokens of a space-separated scope string, sorted.
pub fn scope_set(scope: &str) -> std::collections::BTreeSet<&str> {
    scope.split(' ').filter(|s| !s.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::PasswordHash;

    #[test]
    fn an_encoded_password_hash_round_trips_and_still_verifies() {
        let hash = PasswordHash::new("correct horse").unwrap();
        let decoded = PasswordHash::decode(&hash.encode()).unwrap();
        assert!(decoded.verify("correct horse"));
        assert!(!decoded.verify("wrong horse"));
        for bad in [
            "correct horse",
            "pbkdf2-sha256$0$AAAAAAAAAAA$AAAA",
            "pbkdf2-sha256$1$x",
            "",
        ] {
            assert!(PasswordHash::decode(bad).is_none(), "{bad}");
        }
    }
}
