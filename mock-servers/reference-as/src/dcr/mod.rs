//! Dynamic client registration: RFC 7591 registration (open, or gated by single-use initial
//! access tokens), templatized registration (CUR-07) and RFC 7592 management with registration
//! access tokens, stored in the server's database.
//!
//! [`Registry`] is the whole feature behind the HTTP handlers: it checks bearer tokens, reads
//! registration bodies, mints client IDs (never URLs, DCR-19), secrets and tokens, and turns
//! stored rows into [`RegisteredClient`]s for the client directory, so a dynamic client
//! authenticates and uses grants exactly like a configured one. An instance of a template stores
//! only its own metadata and a reference to the template; the template's method, grants,
//! redirect URIs, scope ceiling and authenticators are read at every lookup.
//!
//! Layout:
//! - [`metadata`]: [`ClientFields`], the registration-body rules and the RFC 7591 error codes.
//! - [`templates`]: [`TemplateDefinition`] and [`TemplateConfig`].
//! - [`store`]: the SQL of templates, dynamic clients and initial access tokens.

pub mod metadata;
pub mod store;
pub mod templates;

use std::fmt;

use aws_lc_rs::constant_time;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use metadata::ClientFields;
pub use templates::{TemplateConfig, TemplateDefinition};

use self::metadata::{Fixed, INVALID_CLIENT_METADATA};
use self::store::{ClientRow, DcrStore, InitialTokenState, NewClient};
use crate::client_auth::registered::ClientKeys;
use crate::client_auth::{KeySet, RegisteredClient, SecretHash, TokenAuthMethod};
use crate::config::Issuer;
use crate::error::{AsError, ErrorCode, OAuthError};
use crate::faults::{Fault, Faults};
use crate::store::{Secret, Store, fingerprint, scope_set, unix_now};

/// The `[registration]` section: whether and how clients register themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent switches an operator sets one by one in the file"
)]
pub struct RegistrationConfig {
    /// Serve `POST /register` and advertise `registration_endpoint`.
    pub enabled: bool,
    /// Who may register (DCR-02).
    pub access: RegistrationAccess,
    /// Whether registrations that name no template are accepted.
    pub plain: bool,
    /// RFC 7592 management: `registration_client_uri` and `registration_access_token`.
    pub management: bool,
    /// A new registration access token with every update (DCRM-04).
    pub rotate_access_token_on_update: bool,
    /// A new registration access token with every read (DCRM-04).
    pub rotate_access_token_on_read: bool,
    /// Whether `DELETE` is supported (otherwise 405, DCRM-10).
    pub delete: bool,
    /// Lifetime of an initial access token.
    pub initial_access_token_ttl_secs: u64,
    /// The scope a configured client asks for to get an initial access token.
    pub initial_access_token_scope: String,
    /// Lifetime of issued client secrets (0: they never expire, DCR-04).
    pub client_secret_ttl_secs: u64,
    /// Bearer token of the template admin API: plaintext, or `sha256$DIGEST`. Absent: no API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<AdminToken>,
    /// Templates seeded into the database at start.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<TemplateConfig>,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            // Off unless asked for: an AS without DCR is the common case for CIMD.
            enabled: false,
            // RFC 7591 allows open registration; gated is the safer default (CUR-07).
            access: RegistrationAccess::InitialAccessToken,
            plain: true,
            management: true,
            rotate_access_token_on_update: true,
            rotate_access_token_on_read: false,
            delete: true,
            // Long enough to register by hand, short enough to be useless when leaked later.
            initial_access_token_ttl_secs: 300,
            initial_access_token_scope: "dcr".to_owned(),
            client_secret_ttl_secs: 0,
            admin_token: None,
            templates: Vec::new(),
        }
    }
}

impl RegistrationConfig {
    /// Checks the templates and the scope name.
    pub fn validate(&self) -> Result<(), String> {
        metadata::check_scope_syntax(&self.initial_access_token_scope)
            .map_err(|e| format!("registration.initial_access_token_scope: {e}"))?;
        if self.initial_access_token_scope.contains(' ') {
            return Err("registration.initial_access_token_scope must be one scope".to_owned());
        }
        let mut names = std::collections::BTreeSet::new();
        for template in &self.templates {
            template.check().map_err(|e| format!("registration: {e}"))?;
            if !names.insert(template.software_id.as_str()) {
                return Err(format!(
                    "registration: template {:?} is configured twice",
                    template.software_id
                ));
            }
        }
        Ok(())
    }
}

/// Who may call the registration endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegistrationAccess {
    /// Anyone.
    Open,
    /// Holders of a single-use initial access token.
    InitialAccessToken,
}

/// The admin API's bearer token from the configuration. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AdminToken(pub String);

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Why a registration request failed, by the status it answers with.
#[derive(Debug, thiserror::Error)]
pub enum DcrError {
    /// 400 with an RFC 7591 §3.2.2 (or RFC 6749 `invalid_request`) error.
    #[error("{0}")]
    Invalid(OAuthError),
    /// 401 with `WWW-Authenticate: Bearer error="invalid_token"` (DCR-02, DCRM-05).
    #[error("invalid_token: {0}")]
    Token(String),
    /// 404, only under the `registration-unknown-client-404` fault.
    #[error("not found: {0}")]
    NotFound(String),
    /// 405: deletion is switched off (DCRM-10).
    #[error("this server does not delete registrations (DCRM-10)")]
    DeleteNotSupported,
    /// 500.
    #[error(transparent)]
    Internal(#[from] AsError),
}

/// Leave to register one client: the digest of the initial access token to spend, if any.
#[derive(Debug)]
pub struct Admission(Option<Vec<u8>>);

/// An initial access token just issued.
#[derive(Debug)]
pub struct InitialAccessToken {
    /// The token.
    pub token: Secret,
    /// Its lifetime in seconds.
    pub expires_in: u64,
    /// Its scope.
    pub scope: String,
}

/// The registration access token's verdict for every `/register/{client_id}` request.
const BAD_ACCESS_TOKEN: &str = "the registration access token is not valid for this client: the \
     client is unknown or deleted, or the token was rotated or belongs to another client (DCRM-05)";

/// Dynamic registration: configuration, storage and every operation.
#[derive(Debug)]
pub struct Registry {
    config: RegistrationConfig,
    issuer: Issuer,
    store: DcrStore,
    faults: Faults,
    admin: Option<SecretHash>,
}

impl Registry {
    /// Creates the tables and seeds the configured templates. Upsert rule: a template named in
    /// the configuration is replaced by the configured one at every start (the file is the
    /// operator's source of truth); templates created through the admin API and not named in
    /// the file are kept.
    pub async fn open(
        config: RegistrationConfig,
        issuer: Issuer,
        store: &Store,
        faults: Faults,
    ) -> Result<Self, AsError> {
        config.validate().map_err(AsError::Config)?;
        let dcr = DcrStore::open(store.pool().clone()).await?;
        for template in &config.templates {
            dcr.put_template(&template.software_id, &encode(&template.definition())?)
                .await?;
        }
        let admin = config.admin_token.as_ref().map(|token| {
            SecretHash::decode(&token.0)
                .filter(|hash| matches!(hash, SecretHash::Sha256(_)))
                .unwrap_or_else(|| SecretHash::sha256_of(&token.0))
        });
        Ok(Self {
            config,
            issuer,
            store: dcr,
            faults,
            admin,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RegistrationConfig {
        &self.config
    }

    /// Whether a client registered here may use `method`, for discovery: any method with plain
    /// registration, else a configured template's (templates created through the admin API are
    /// not advertised).
    pub fn offers_method(&self, method: TokenAuthMethod) -> bool {
        self.config.enabled
            && (self.config.plain
                || self
                    .config
                    .templates
                    .iter()
                    .any(|t| t.token_endpoint_auth_method == method))
    }

    /// Whether a client registered here may use `grant_type`, for discovery (as
    /// [`Registry::offers_method`]).
    pub fn offers_grant(&self, grant_type: &str) -> bool {
        self.config.enabled
            && (self.config.plain && metadata::GRANT_TYPES.contains(&grant_type)
                || self
                    .config
                    .templates
                    .iter()
                    .any(|t| t.grant_types.iter().any(|g| g == grant_type)))
    }

    /// Whether `fault` is switched on.
    fn fault(&self, fault: Fault) -> bool {
        self.faults.on(fault)
    }

    /// An initial access token for `client_id` when `requested` asks for the initial access
    /// token scope: `None` when it does not (an ordinary client_credentials grant follows).
    /// `configured` says whether the client is one of the operator's `[[clients]]`, the only
    /// ones that may obtain these tokens; `allowed` is the client's registered scope list.
    pub async fn initial_access_token(
        &self,
        client_id: &str,
        configured: bool,
        allowed: Option<&[String]>,
        requested: &str,
    ) -> Result<Option<InitialAccessToken>, OAuthError> {
        let scope = self.config.initial_access_token_scope.as_str();
        let wanted = scope_set(requested);
        let gated =
            self.config.enabled && self.config.access == RegistrationAccess::InitialAccessToken;
        if !gated || !wanted.contains(scope) {
            return Ok(None);
        }
        if wanted.len() > 1 {
            return Err(OAuthError::new(
                ErrorCode::INVALID_SCOPE,
                format!(
                    "scope {scope:?} asks for an initial access token and cannot be combined with \
                     other scopes; request it alone (DCR-02)"
                ),
            ));
        }
        let permitted = configured && allowed.is_some_and(|list| list.iter().any(|s| s == scope));
        if !permitted {
            return Err(OAuthError::new(
                ErrorCode::INVALID_SCOPE,
                format!(
                    "client {client_id:?} may not obtain initial access tokens: only configured \
                     clients whose scope lists {scope:?} may (CUR-07)"
                ),
            ));
        }
        let token = Secret::generate().map_err(|e| OAuthError::server_error(&e))?;
        let ttl = self.config.initial_access_token_ttl_secs;
        let expires_at = unix_now().saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
        self.store
            .insert_initial_token(&fingerprint(token.expose()), client_id, scope, expires_at)
            .await
            .map_err(|e| OAuthError::server_error(&e))?;
        tracing::info!(client_id, "initial access token issued");
        Ok(Some(InitialAccessToken {
            token,
            expires_in: ttl,
            scope: scope.to_owned(),
        }))
    }

    /// `POST /register`: registers a client from `body` (read after the admission, so an
    /// unauthorised caller learns nothing about its body); returns the client information
    /// response.
    pub async fn register(
        &self,
        admission: Admission,
        body: &Map<String, Value>,
    ) -> Result<Value, DcrError> {
        let spend = admission.0;
        let template = self.template_for(body).await?;
        let fixed = template.as_ref().map(|(id, t)| Fixed {
            software_id: id,
            template: t,
        });
        let fields = metadata::parse(body, fixed, &self.faults).map_err(DcrError::Invalid)?;
        // DCR-19: the server mints the client_id; the `accept-client-chosen-client-id` fault
        // takes the client's.
        let chosen = body
            .get("client_id")
            .and_then(Value::as_str)
            .filter(|_| self.fault(Fault::AcceptClientChosenClientId));
        let client_id = match chosen {
            Some(chosen) => chosen.to_owned(),
            None => format!("dcr-{}", &Secret::generate()?.expose()[..22]),
        };
        let issued_at = unix_now();
        let secret = if uses_secret(&fields) {
            Some(Secret::generate()?)
        } else {
            None
        };
        let secret_hash = secret
            .as_ref()
            .map(|s| SecretHash::sha256_of(s.expose()).encode());
        let secret_expires_at = self.secret_expiry(issued_at);
        let access_token = if self.config.management {
            Some(Secret::generate()?)
        } else {
            None
        };
        let access_token_hash = access_token.as_ref().map(|t| fingerprint(t.expose()));
        let frozen = match &template {
            Some((_, t)) if self.fault(Fault::TemplateChangesNotApplied) => Some(encode(t)?),
            _ => None,
        };
        let fields_json = encode(&fields)?;
        let new = NewClient {
            client_id: &client_id,
            template: template.as_ref().map(|(id, _)| id.as_str()),
            frozen_template: frozen.as_deref(),
            fields: &fields_json,
            secret_hash: secret_hash.as_deref(),
            secret_expires_at,
            issued_at,
            access_token_hash: access_token_hash.as_deref(),
        };
        let scope = self.config.initial_access_token_scope.as_str();
        let spend = spend.as_ref().map(|hash| (hash.as_slice(), scope));
        let reusable = self.fault(Fault::ReusableInitialAccessToken);
        if !self.store.insert_client(&new, spend, reusable).await? {
            return Err(DcrError::Token(
                "the initial access token was just used by another registration; each token \
                 registers one client (DCR-02)"
                    .to_owned(),
            ));
        }
        tracing::info!(client_id, template = ?new.template, "client registered");
        let effective = effective(fields, template.as_ref().map(|(_, t)| t));
        Ok(self.information(
            &client_id,
            issued_at,
            &effective,
            secret.as_ref().map(Secret::expose),
            secret_expires_at,
            access_token.as_ref().map(Secret::expose),
        ))
    }

    /// `GET /register/{client_id}` (DCRM-03), rotating the token when configured (DCRM-04).
    pub async fn read(&self, client_id: &str, bearer: Option<&str>) -> Result<Value, DcrError> {
        let (row, current) = self.authorized(client_id, bearer).await?;
        let rotated = if self.config.rotate_access_token_on_read {
            Some(self.rotate(client_id, &current).await?)
        } else {
            None
        };
        let (fields, template) = decode_row(&row)?;
        let effective = effective(fields, template.as_ref());
        Ok(self.information(
            client_id,
            row.issued_at,
            &effective,
            None,
            row.secret_expires_at,
            rotated.as_ref().map(Secret::expose),
        ))
    }

    /// `PUT /register/{client_id}`: replaces the registration (DCRM-06/07/08).
    pub async fn update(
        &self,
        client_id: &str,
        bearer: Option<&str>,
        body: &Map<String, Value>,
    ) -> Result<Value, DcrError> {
        let (row, current) = self.authorized(client_id, bearer).await?;
        self.check_update(client_id, &row, body).await?;
        let (_, template) = decode_row(&row)?;
        let fixed =
            row.template
                .as_deref()
                .zip(template.as_ref())
                .map(|(software_id, template)| Fixed {
                    software_id,
                    template,
                });
        // DCRM-08: the registration rules and error codes apply to updates too.
        let fields = metadata::parse(body, fixed, &self.faults).map_err(DcrError::Invalid)?;
        // The secret stays; a client that switches to a secret method gets a new one.
        let (new_secret, secret_hash, secret_expires_at) =
            match (&row.secret_hash, uses_secret(&fields)) {
                (Some(hash), true) => (None, Some(hash.clone()), row.secret_expires_at),
                (None, true) => {
                    let secret = Secret::generate()?;
                    let hash = SecretHash::sha256_of(secret.expose()).encode();
                    (Some(secret), Some(hash), self.secret_expiry(unix_now()))
                }
                (_, false) => (None, None, 0),
            };
        // DCRM-04: the `no-token-rotation-on-update` fault keeps the old token.
        let rotated = if self.config.rotate_access_token_on_update
            && !self.fault(Fault::NoTokenRotationOnUpdate)
        {
            Some(Secret::generate()?)
        } else {
            None
        };
        let rotated_hash = rotated.as_ref().map(|t| fingerprint(t.expose()));
        let updated = self
            .store
            .update_client(
                client_id,
                &current,
                &encode(&fields)?,
                (secret_hash.as_deref(), secret_expires_at),
                rotated_hash.as_deref(),
            )
            .await?;
        if !updated {
            return Err(DcrError::Token(BAD_ACCESS_TOKEN.to_owned()));
        }
        tracing::info!(client_id, "client registration updated");
        let effective = effective(fields, template.as_ref());
        Ok(self.information(
            client_id,
            row.issued_at,
            &effective,
            new_secret.as_ref().map(Secret::expose),
            secret_expires_at,
            rotated.as_ref().map(Secret::expose),
        ))
    }

    /// DCRM-06: an update names its client, leaves the server's members alone and repeats the
    /// secret only unchanged; an instance stays an instance of its template.
    async fn check_update(
        &self,
        client_id: &str,
        row: &ClientRow,
        body: &Map<String, Value>,
    ) -> Result<(), DcrError> {
        let invalid =
            |description: String| DcrError::Invalid(OAuthError::invalid_request(description));
        // The `accept-mismatched-client-id-on-update` fault takes any client_id, or none.
        match body.get("client_id") {
            Some(Value::String(id)) if id == client_id => {}
            _ if self.fault(Fault::AcceptMismatchedClientIdOnUpdate) => {}
            Some(other) => {
                return Err(invalid(format!(
                    "client_id {other} in the body is not {client_id:?}, the client this URI \
                     manages (DCRM-06)"
                )));
            }
            None => {
                return Err(invalid(format!(
                    "the body must carry client_id {client_id:?}, the client being updated \
                     (DCRM-06)"
                )));
            }
        }
        for member in [
            "registration_access_token",
            "registration_client_uri",
            "client_secret_expires_at",
            "client_id_issued_at",
        ] {
            if body.contains_key(member) {
                return Err(invalid(format!(
                    "{member} must not be sent in an update: the server sets it (DCRM-06)"
                )));
            }
        }
        if let Some(presented) = body.get("client_secret") {
            let stored = row.secret_hash.as_deref().and_then(SecretHash::decode);
            let matches = match (presented.as_str(), &stored) {
                (Some(presented), Some(hash)) => hash.verify(presented).await?,
                _ => false,
            };
            if !matches {
                return Err(invalid(
                    "client_secret is not the client's current secret; a client cannot choose \
                     its secret (DCRM-06)"
                        .to_owned(),
                ));
            }
        }
        if let (Some(id), Some(sent)) = (&row.template, body.get("software_id"))
            && sent.as_str() != Some(id.as_str())
        {
            return Err(DcrError::Invalid(OAuthError::new(
                INVALID_CLIENT_METADATA,
                format!(
                    "software_id cannot change: this client is an instance of template {id:?} \
                     (CUR-07)"
                ),
            )));
        }
        Ok(())
    }

    /// `DELETE /register/{client_id}` (DCRM-09/10).
    pub async fn delete(&self, client_id: &str, bearer: Option<&str>) -> Result<(), DcrError> {
        if !self.config.delete {
            return Err(DcrError::DeleteNotSupported);
        }
        self.authorized(client_id, bearer).await?;
        self.store
            .delete_client(client_id, self.fault(Fault::DeletedClientStillValid))
            .await?;
        tracing::info!(client_id, "client registration deleted");
        Ok(())
    }

    /// The dynamic client `client_id` as the directory serves it, reading its template now.
    /// A template's own `software_id` is refused (CUR-07).
    pub async fn find(&self, client_id: &str) -> Result<Option<RegisteredClient>, OAuthError> {
        let row = self
            .store
            .client(client_id)
            .await
            .map_err(|e| OAuthError::server_error(&e))?;
        if let Some(row) = row {
            return client_of(&row).map(Some);
        }
        let template = self
            .stored_template(client_id)
            .await
            .map_err(|e| OAuthError::server_error(&e))?;
        let Some(template) = template else {
            return Ok(None);
        };
        // CUR-07: the `template-usable-directly` fault serves the template as a client.
        if self.fault(Fault::TemplateUsableDirectly) {
            let fields = effective(
                metadata::parse(
                    &Map::new(),
                    Some(Fixed {
                        software_id: client_id,
                        template: &template,
                    }),
                    &self.faults,
                )
                .map_err(|e| OAuthError::invalid_client(e.description))?,
                Some(&template),
            );
            return Ok(Some(registered(client_id, &fields, None)?));
        }
        Err(OAuthError::invalid_client(format!(
            "{client_id:?} names a registration template, not a client: a template cannot be used \
             directly; register an instance of it with software_id {client_id:?} (CUR-07)"
        )))
    }

    /// The sign-in methods an instance's template allows (`None`: not an instance, the
    /// ephemeral policy's authenticators apply).
    pub async fn authenticators(&self, client_id: &str) -> Result<Option<Vec<String>>, AsError> {
        // DCR-19: dynamic client IDs are never URLs, so an ephemeral client costs no query.
        if crate::cimd::looks_like_url(client_id) {
            return Ok(None);
        }
        let Some(row) = self.store.client(client_id).await? else {
            return Ok(None);
        };
        Ok(decode_row(&row)?.1.map(|t| t.authenticators))
    }

    /// Whether `bearer` is the admin API's token (constant time).
    pub async fn admin_allows(&self, bearer: Option<&str>) -> Result<bool, AsError> {
        match (&self.admin, bearer) {
            (Some(hash), Some(bearer)) => hash.verify(bearer).await,
            _ => Ok(false),
        }
    }

    /// Whether the admin API is served.
    pub fn admin_enabled(&self) -> bool {
        self.admin.is_some()
    }

    /// Template `software_id`, as stored now.
    pub async fn stored_template(
        &self,
        software_id: &str,
    ) -> Result<Option<TemplateDefinition>, AsError> {
        self.store
            .template(software_id)
            .await?
            .map(|json| decode(&json))
            .transpose()
    }

    /// Creates or replaces template `software_id`; every instance follows at once (CUR-07).
    pub async fn put_template(
        &self,
        software_id: &str,
        definition: TemplateDefinition,
    ) -> Result<(), DcrError> {
        templates::check_software_id(software_id)
            .and_then(|()| definition.check())
            .map_err(|e| DcrError::Invalid(OAuthError::invalid_request(e)))?;
        self.store
            .put_template(software_id, &encode(&definition)?)
            .await?;
        tracing::info!(software_id, "template changed");
        Ok(())
    }

    /// DCRM-05: whether `bearer` is the registration access token of `client_id`.
    pub async fn check_access(
        &self,
        client_id: &str,
        bearer: Option<&str>,
    ) -> Result<(), DcrError> {
        self.authorized(client_id, bearer).await.map(drop)
    }

    /// DCR-02: whether `bearer` may register a client: a live initial access token (spent only
    /// when the registration is stored), or anything when registration is open.
    pub async fn admit(&self, bearer: Option<&str>) -> Result<Admission, DcrError> {
        self.initial_token(bearer).await.map(Admission)
    }

    /// The digest of a live initial access token, `None` for open registration.
    async fn initial_token(&self, bearer: Option<&str>) -> Result<Option<Vec<u8>>, DcrError> {
        // The `registration-without-initial-token` fault registers anyone.
        if self.config.access == RegistrationAccess::Open
            || self.fault(Fault::RegistrationWithoutInitialToken)
        {
            return Ok(None);
        }
        let Some(bearer) = bearer else {
            return Err(DcrError::Token(
                "registration needs an initial access token, sent as Authorization: Bearer \
                 (DCR-02)"
                    .to_owned(),
            ));
        };
        let hash = fingerprint(bearer);
        let scope = &self.config.initial_access_token_scope;
        let state = self.store.initial_token_state(&hash, scope).await?;
        let why = match state {
            InitialTokenState::Live => return Ok(Some(hash)),
            InitialTokenState::Used if self.fault(Fault::ReusableInitialAccessToken) => {
                return Ok(Some(hash));
            }
            InitialTokenState::Unknown => "is not an initial access token of this server",
            InitialTokenState::Expired => "has expired",
            InitialTokenState::Used => "was already used; each token registers one client",
            InitialTokenState::WrongScope => "was not issued for the registration scope",
        };
        Err(DcrError::Token(format!(
            "the initial access token {why} (DCR-02)"
        )))
    }

    /// The template a registration body names, by the unknown-`software_id` rule: refused
    /// unless plain registration is allowed, where `software_id` is then informative (DCR-17).
    async fn template_for(
        &self,
        body: &Map<String, Value>,
    ) -> Result<Option<(String, TemplateDefinition)>, DcrError> {
        let named = body.get("software_id").and_then(Value::as_str);
        if let Some(id) = named
            && let Some(template) = self.stored_template(id).await?
        {
            return Ok(Some((id.to_owned(), template)));
        }
        if self.config.plain {
            return Ok(None);
        }
        let description = match named {
            Some(id) => format!(
                "software_id {id:?} names no template here, and this server registers only \
                 instances of its templates (CUR-07)"
            ),
            None => "this server registers only instances of its templates: name one in \
                     software_id (CUR-07)"
                .to_owned(),
        };
        Err(DcrError::Invalid(OAuthError::new(
            INVALID_CLIENT_METADATA,
            description,
        )))
    }

    /// DCRM-05: the client's row if `bearer` is its registration access token; the digest of
    /// the token too.
    async fn authorized(
        &self,
        client_id: &str,
        bearer: Option<&str>,
    ) -> Result<(ClientRow, Vec<u8>), DcrError> {
        let Some(bearer) = bearer else {
            return Err(DcrError::Token(
                "the registration access token is missing; send it as Authorization: Bearer \
                 (DCRM-05)"
                    .to_owned(),
            ));
        };
        let Some(row) = self.store.client(client_id).await? else {
            // The `registration-unknown-client-404` fault tells strangers which clients exist.
            if self.fault(Fault::RegistrationUnknownClient404) {
                return Err(DcrError::NotFound(format!(
                    "no client {client_id:?} is registered here"
                )));
            }
            return Err(DcrError::Token(BAD_ACCESS_TOKEN.to_owned()));
        };
        let presented = fingerprint(bearer);
        let valid = row.access_token_hash.as_deref().is_some_and(|stored| {
            constant_time::verify_slices_are_equal(stored, &presented).is_ok()
        });
        if !valid {
            return Err(DcrError::Token(BAD_ACCESS_TOKEN.to_owned()));
        }
        Ok((row, presented))
    }

    /// A new registration access token in place of `current` (DCRM-04).
    async fn rotate(&self, client_id: &str, current: &[u8]) -> Result<Secret, DcrError> {
        let token = Secret::generate()?;
        if !self
            .store
            .rotate_access_token(client_id, current, &fingerprint(token.expose()))
            .await?
        {
            return Err(DcrError::Token(BAD_ACCESS_TOKEN.to_owned()));
        }
        Ok(token)
    }

    fn secret_expiry(&self, issued_at: i64) -> i64 {
        match self.config.client_secret_ttl_secs {
            0 => 0,
            ttl => issued_at.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
        }
    }

    /// The client information response (RFC 7591 §3.2.1, RFC 7592 §3).
    fn information(
        &self,
        client_id: &str,
        issued_at: i64,
        fields: &ClientFields,
        secret: Option<&str>,
        secret_expires_at: i64,
        access_token: Option<&str>,
    ) -> Value {
        let mut members = fields.members();
        members.insert("client_id".to_owned(), client_id.into());
        members.insert("client_id_issued_at".to_owned(), issued_at.into());
        if let Some(secret) = secret {
            members.insert("client_secret".to_owned(), secret.into());
        }
        // DCR-04: every client with a secret learns when it expires (the
        // `no-client-secret-expiry` fault leaves it out).
        if uses_secret(fields) && !self.fault(Fault::NoClientSecretExpiry) {
            members.insert(
                "client_secret_expires_at".to_owned(),
                secret_expires_at.into(),
            );
        }
        // DCRM-01: the `no-registration-access-token` fault leaves management out.
        if self.config.management && !self.fault(Fault::NoRegistrationAccessToken) {
            members.insert(
                "registration_client_uri".to_owned(),
                self.client_uri(client_id).into(),
            );
            if let Some(token) = access_token {
                members.insert("registration_access_token".to_owned(), token.into());
            }
        }
        Value::Object(members)
    }

    /// `{issuer}/register/{client_id}`, the client_id as one path segment.
    pub fn client_uri(&self, client_id: &str) -> String {
        // The issuer was validated as a URL at start.
        let Ok(mut url) = url::Url::parse(self.issuer.as_str()) else {
            return self.issuer.url(&format!("/register/{client_id}"));
        };
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("register").push(client_id);
        }
        url.to_string()
    }
}

/// Whether the client's method uses a client secret.
fn uses_secret(fields: &ClientFields) -> bool {
    matches!(
        fields.token_endpoint_auth_method,
        TokenAuthMethod::ClientSecretBasic | TokenAuthMethod::ClientSecretPost
    )
}

/// An instance's metadata with its template's fixed members as they are now: method, grants,
/// redirect URIs, and a scope within the ceiling (CUR-07). Plain clients pass through.
fn effective(mut fields: ClientFields, template: Option<&TemplateDefinition>) -> ClientFields {
    let Some(template) = template else {
        return fields;
    };
    fields.token_endpoint_auth_method = template.token_endpoint_auth_method;
    fields.grant_types.clone_from(&template.grant_types);
    fields.response_types = if fields.has_grant_type("authorization_code") {
        vec!["code".to_owned()]
    } else {
        Vec::new()
    };
    fields.redirect_uris.clone_from(&template.redirect_uris);
    fields.scope = match (template.scopes(), &fields.scope) {
        (None, own) => own.clone(),
        (Some(ceiling), None) => Some(ceiling.join(" ")),
        (Some(ceiling), Some(own)) => Some(
            own.split(' ')
                .filter(|s| ceiling.contains(s))
                .collect::<Vec<_>>()
                .join(" "),
        ),
    };
    if fields.client_name().is_none()
        && let Some(name) = &template.client_name
    {
        fields.human.insert("client_name".to_owned(), name.clone());
    }
    fields
}

/// A stored row as a directory client.
fn client_of(row: &ClientRow) -> Result<RegisteredClient, OAuthError> {
    let (fields, template) = decode_row(row).map_err(|e| OAuthError::server_error(&e))?;
    let fields = effective(fields, template.as_ref());
    let secret = row
        .secret_hash
        .as_deref()
        .and_then(SecretHash::decode)
        // DCR-04: an expired secret no longer authenticates.
        .filter(|_| row.secret_expires_at == 0 || row.secret_expires_at > unix_now());
    registered(&row.client_id, &fields, secret)
}

/// The directory's view of `fields`.
fn registered(
    client_id: &str,
    fields: &ClientFields,
    secret: Option<SecretHash>,
) -> Result<RegisteredClient, OAuthError> {
    let keys = match (&fields.jwks, &fields.jwks_uri) {
        (Some(jwks), _) => Some(ClientKeys::Inline(
            KeySet::parse(jwks).map_err(OAuthError::invalid_client)?,
        )),
        (None, Some(uri)) => Some(ClientKeys::Uri(uri.clone())),
        (None, None) => None,
    };
    Ok(RegisteredClient {
        client_id: client_id.to_owned(),
        client_name: fields.client_name().map(str::to_owned),
        auth_method: fields.token_endpoint_auth_method,
        secret,
        keys,
        signing_alg: fields.token_endpoint_auth_signing_alg.clone(),
        redirect_uris: fields.redirect_uris.clone(),
        grant_types: fields.grant_types.clone(),
        scope: fields.scope.as_ref().map(|s| {
            s.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        }),
    })
}

fn decode_row(row: &ClientRow) -> Result<(ClientFields, Option<TemplateDefinition>), AsError> {
    let fields = decode(&row.fields)?;
    let template = row.template_definition.as_deref().map(decode).transpose()?;
    Ok((fields, template))
}

fn encode<T: Serialize>(value: &T) -> Result<String, AsError> {
    serde_json::to_string(value).map_err(|e| AsError::Database(sqlx::Error::Encode(e.into())))
}

fn decode<T: for<'de> Deserialize<'de>>(json: &str) -> Result<T, AsError> {
    serde_json::from_str(json).map_err(|e| AsError::Database(sqlx::Error::Decode(e.into())))
}
