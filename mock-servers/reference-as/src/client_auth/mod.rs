//! Who is calling the token endpoint: client lookup across registries, and client authentication
//! (`none`, `client_secret_basic`, `client_secret_post`, `private_key_jwt`).
//!
//! A client is either *ephemeral* (a URL client_id whose metadata document the resolver fetched)
//! or *registered* (configured by the operator, or registered dynamically through
//! [`crate::dcr`]; both are [`RegisteredClient`]s, see [`ClientDirectory`]). Endpoints see one [`Client`]
//! whatever its origin, and [`ClientAuthenticator::authenticate`] turns the credentials of a token
//! request into that client or into a precise `invalid_client` refusal. The rules: exactly one
//! authentication method per request (RFC 6749 §2.3), the one the client registered; a client
//! that registered a method other than `none` authenticates on every request (CIMD-AUTH-02); a
//! URL client never presents a shared secret (CIMD-DOC-07).
//!
//! Layout:
//! - [`registered`]: [`RegisteredClient`] and hashed client secrets, built from `[[clients]]`.
//! - [`jwks`]: public key sets: parsing, key selection, and fetching `jwks_uri` through the
//!   resolver's cache with a rate-limited refresh on an unknown `kid`.
//! - [`assertion`]: RFC 7523 client assertions: parsing and every claim and signature rule.

pub mod assertion;
pub mod jwks;
pub mod registered;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

pub use assertion::{AssertionRules, JWT_BEARER};
pub use jwks::{JwksCache, KeySet, KeyThumbprint};
pub use registered::{RegisteredClient, SecretHash};

use crate::cimd::{AuthMethod, ClientMetadata, ClientResolver, EphemeralPolicy, looks_like_url};
use crate::config::{ClientAuthConfig, ClientConfig};
use crate::dcr::Registry;
use crate::error::{AsError, ErrorCode, OAuthError};
use crate::faults::{Fault, Faults};
use crate::store::Store;

/// How a client authenticates at the token endpoint (the RFC 7591 registry names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    /// A public client: no authentication.
    None,
    /// A shared secret in an HTTP Basic `Authorization` header (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// A shared secret in the request body (RFC 6749 §2.3.1).
    ClientSecretPost,
    /// A JWT assertion signed with the client's private key (RFC 7523 §2.2).
    PrivateKeyJwt,
}

impl TokenAuthMethod {
    /// The registry name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// Whether the method authenticates the client (everything but `none`).
    pub fn is_confidential(self) -> bool {
        self != Self::None
    }
}

impl From<AuthMethod> for TokenAuthMethod {
    fn from(method: AuthMethod) -> Self {
        match method {
            AuthMethod::None => Self::None,
            AuthMethod::PrivateKeyJwt => Self::PrivateKeyJwt,
        }
    }
}

impl fmt::Display for TokenAuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A client, wherever it was registered.
#[derive(Debug, Clone)]
pub enum Client {
    /// A URL client_id with a validated metadata document (CIMD).
    Ephemeral(Arc<ClientMetadata>),
    /// A client the operator configured or dynamic registration registered.
    Registered(Arc<RegisteredClient>),
}

impl Client {
    /// The client_id.
    pub fn id(&self) -> &str {
        match self {
            Self::Ephemeral(meta) => meta.client_id.as_str(),
            Self::Registered(client) => &client.client_id,
        }
    }

    /// The display name, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Ephemeral(meta) => meta.client_name(),
            Self::Registered(client) => client.client_name.as_deref(),
        }
    }

    /// How the client authenticates at the token endpoint.
    pub fn auth_method(&self) -> TokenAuthMethod {
        match self {
            Self::Ephemeral(meta) => meta.token_endpoint_auth_method.into(),
            Self::Registered(client) => client.auth_method,
        }
    }

    /// The algorithm the client pinned for its assertions (`token_endpoint_auth_signing_alg`).
    pub fn signing_alg(&self) -> Option<&str> {
        match self {
            Self::Ephemeral(meta) => meta.token_endpoint_auth_signing_alg(),
            Self::Registered(client) => client.signing_alg.as_deref(),
        }
    }

    /// Whether `redirect_uri` is one of the client's: the CIMD matching rules for ephemeral
    /// clients, exact string comparison for registered ones.
    pub fn redirect_uri_matches(&self, redirect_uri: &str, faults: &Faults) -> bool {
        match self {
            Self::Ephemeral(meta) => crate::cimd::redirect_uri_matches(meta, redirect_uri, faults),
            Self::Registered(client) => client.redirect_uris.iter().any(|u| u == redirect_uri),
        }
    }

    /// Whether the client may use the `code` response type.
    pub fn uses_code_response(&self) -> bool {
        match self {
            Self::Ephemeral(meta) => meta.response_types().any(|t| t == "code"),
            Self::Registered(client) => client.has_grant_type("authorization_code"),
        }
    }

    /// Whether the client may use `grant_type`: an ephemeral client needs it in its document and
    /// in the policy's capabilities (CUR-03), a registered client in its registration.
    pub fn grant_allowed(
        &self,
        grant_type: &str,
        policy: &EphemeralPolicy,
        faults: &Faults,
    ) -> bool {
        match self {
            Self::Ephemeral(meta) => policy.grant_allowed(meta, grant_type, faults),
            Self::Registered(client) => client.has_grant_type(grant_type),
        }
    }

    /// The scopes to grant for the space-separated `requested` scopes, or why not (a description
    /// for `invalid_scope`). Ephemeral clients meet the policy's ceiling and their document's
    /// `scope`; registered clients their registered `scope`, if they have one.
    pub fn filter_scopes(
        &self,
        requested: &str,
        policy: &EphemeralPolicy,
        faults: &Faults,
    ) -> Result<String, String> {
        match self {
            Self::Ephemeral(meta) => policy
                .filter_scopes(requested, meta, faults)
                .map_err(|f| format!("{} ({})", f.message, f.requirement)),
            Self::Registered(client) => client.filter_scopes(requested),
        }
    }
}

/// Where clients are looked up: URL client IDs through the CIMD resolver, everything else in the
/// configured clients, then in dynamic registration's database (read at every lookup, so
/// template edits and deletions apply at once). Both kinds are [`RegisteredClient`]s, so
/// endpoints and authentication treat them alike.
#[derive(Debug, Default)]
pub struct ClientDirectory {
    registered: HashMap<String, Arc<RegisteredClient>>,
    /// Dynamically registered clients and their templates.
    registry: Option<Arc<Registry>>,
}

impl ClientDirectory {
    /// The directory of the configured clients; plaintext secrets are hashed here (on the
    /// blocking pool, all at once).
    pub async fn from_config(clients: &[ClientConfig]) -> Result<Self, AsError> {
        let built = futures_util::future::try_join_all(
            clients.iter().cloned().map(RegisteredClient::from_config),
        )
        .await?;
        Ok(Self {
            registered: built
                .into_iter()
                .map(|c| (c.client_id.clone(), Arc::new(c)))
                .collect(),
            registry: None,
        })
    }

    /// The directory with dynamically registered clients looked up in `registry` too.
    #[must_use]
    pub fn with_registry(mut self, registry: Arc<Registry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Dynamic registration, if the directory has it.
    pub fn registry(&self) -> Option<&Registry> {
        self.registry.as_deref()
    }

    /// Every registered client (for discovery).
    pub fn registered(&self) -> impl Iterator<Item = &RegisteredClient> {
        self.registered.values().map(Arc::as_ref)
    }

    /// The client `client_id`: a URL goes to the resolver (its error codes kept), anything else
    /// must be registered. An unknown client is `invalid_client`.
    pub async fn find(
        &self,
        resolver: &ClientResolver,
        client_id: &str,
    ) -> Result<Client, OAuthError> {
        if looks_like_url(client_id) {
            // The resolver's descriptions already end with the requirement ID.
            return resolver
                .resolve(client_id)
                .await
                .map(Client::Ephemeral)
                .map_err(|e| OAuthError::new(ErrorCode::other(e.error), e.description));
        }
        if let Some(client) = self.registered.get(client_id) {
            return Ok(Client::Registered(client.clone()));
        }
        // Dynamic clients are read from the database each time, so a template edit or a
        // deletion applies to the very next request (CUR-07, DCRM-09).
        if let Some(registry) = &self.registry
            && let Some(client) = registry.find(client_id).await?
        {
            return Ok(Client::Registered(Arc::new(client)));
        }
        Err(OAuthError::invalid_client(format!(
            "client_id {client_id:?} is not registered here; this server accepts the https URLs \
             of client metadata documents, the clients its operator configured and clients \
             registered at its registration endpoint"
        )))
    }
}

/// Why client authentication failed: the OAuth error, and whether to challenge for HTTP Basic
/// (the client tried it, RFC 6749 §5.2).
#[derive(Debug, Clone)]
pub struct AuthFailure {
    /// The error to send.
    pub error: OAuthError,
    /// Whether the answer carries `WWW-Authenticate: Basic`.
    pub basic_challenge: bool,
}

impl From<OAuthError> for AuthFailure {
    fn from(error: OAuthError) -> Self {
        Self {
            error,
            basic_challenge: false,
        }
    }
}

impl From<AsError> for AuthFailure {
    fn from(error: AsError) -> Self {
        OAuthError::server_error(&error).into()
    }
}

impl AuthFailure {
    fn invalid_client(description: impl Into<String>) -> Self {
        OAuthError::invalid_client(description).into()
    }

    fn challenged(mut self) -> Self {
        self.basic_challenge = true;
        self
    }
}

/// The credentials a token request presents.
#[derive(Debug)]
enum Presented<'a> {
    /// No authentication: a public client names itself with `client_id`.
    Nothing { client_id: Option<&'a str> },
    /// HTTP Basic.
    Basic { client_id: String, secret: String },
    /// `client_id` and `client_secret` in the body.
    Post {
        client_id: Option<&'a str>,
        secret: &'a str,
    },
    /// `client_assertion_type` and `client_assertion`.
    Assertion {
        assertion_type: Option<&'a str>,
        assertion: Option<&'a str>,
        client_id: Option<&'a str>,
    },
}

/// Everything a token request's parameters say about client authentication.
#[derive(Debug, Clone, Copy)]
pub struct AuthParams<'a> {
    /// `client_id`.
    pub client_id: Option<&'a str>,
    /// `client_secret`.
    pub client_secret: Option<&'a str>,
    /// `client_assertion_type`.
    pub client_assertion_type: Option<&'a str>,
    /// `client_assertion`.
    pub client_assertion: Option<&'a str>,
}

/// Which endpoint a request authenticates at: it decides the audiences a client assertion may
/// name (PKJWT-13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthEndpoint {
    /// The token endpoint (and the device authorization endpoint, which follows its rules).
    Token,
    /// The pushed authorization request endpoint (RFC 9126).
    Par,
}

/// Authenticates token-endpoint clients; shared by all requests.
#[derive(Debug)]
pub struct ClientAuthenticator {
    rules: AssertionRules,
    /// The rules for assertions sent to the PAR endpoint.
    par_rules: AssertionRules,
    jwks: JwksCache,
    store: Store,
    faults: Faults,
    bind_grants_to_key: bool,
}

/// An authenticated client, and the key its assertion was verified with (`private_key_jwt`).
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The client.
    pub client: Client,
    /// The RFC 7638 thumbprint of the key that verified the client's assertion, if it sent one.
    pub key: Option<KeyThumbprint>,
}

impl ClientAuthenticator {
    /// An authenticator for the AS `issuer` whose token endpoint is `token_endpoint`; JWKS are
    /// fetched through the resolver's cache, like metadata documents.
    pub fn new(
        issuer: &str,
        token_endpoint: &str,
        config: &ClientAuthConfig,
        policy: &EphemeralPolicy,
        store: Store,
        faults: &Faults,
    ) -> Self {
        // A missing crypto feature is then a compile error, not a panic at the first verify; an
        // Err only means a provider is already installed.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let rules = AssertionRules::new(issuer, token_endpoint, config, faults);
        Self {
            // Until `with_par_endpoint` names it, assertions at PAR follow the token rules.
            par_rules: rules.clone(),
            rules,
            jwks: JwksCache::new(policy, config, faults),
            store,
            faults: faults.clone(),
            bind_grants_to_key: config.bind_grants_to_key,
        }
    }

    /// The authenticator with the URL of the pushed authorization request endpoint, for the
    /// audience rules of assertions sent there.
    #[must_use]
    pub fn with_par_endpoint(mut self, par_endpoint: &str) -> Self {
        self.par_rules = self.rules.at_par_endpoint(par_endpoint);
        self
    }

    /// The client a request to `endpoint` authenticates as, or why it does not: the token
    /// endpoint's rules everywhere, except the audiences an assertion may name. Also names the key
    /// a client assertion was verified with (to bind grants to it, PKJWT-15).
    pub async fn authenticate(
        &self,
        endpoint: AuthEndpoint,
        directory: &ClientDirectory,
        resolver: &ClientResolver,
        headers: &HeaderMap,
        params: AuthParams<'_>,
    ) -> Result<Authenticated, AuthFailure> {
        let rules = match endpoint {
            AuthEndpoint::Token => &self.rules,
            AuthEndpoint::Par => &self.par_rules,
        };
        let presented = presented(headers, params)?;
        let mut key = None;
        let client = match presented {
            Presented::Nothing { client_id } => {
                let Some(client_id) = client_id else {
                    return Err(OAuthError::invalid_request(
                        "client_id is missing; public clients must identify themselves (OAUTH-02)",
                    )
                    .into());
                };
                let client = directory
                    .find(resolver, client_id)
                    .await
                    .map_err(token_error)?;
                self.public(client)
            }
            Presented::Basic { client_id, secret } => {
                if looks_like_url(&client_id) {
                    return Err(AuthFailure::invalid_client(
                        "HTTP client authentication is not supported for URL client IDs: they \
                         have no client secret (CIMD-DOC-07); public clients send client_id in \
                         the body",
                    )
                    .challenged());
                }
                if params.client_id.is_some_and(|id| id != client_id) {
                    return Err(AuthFailure::invalid_client(
                        "client_id in the body differs from the client of the Authorization header",
                    )
                    .challenged());
                }
                let client = directory
                    .find(resolver, &client_id)
                    .await
                    .map_err(|e| AuthFailure::from(e).challenged())?;
                self.secret(client, TokenAuthMethod::ClientSecretBasic, &secret)
                    .await
                    .map_err(AuthFailure::challenged)
            }
            Presented::Post { client_id, secret } => {
                let Some(client_id) = client_id else {
                    return Err(OAuthError::invalid_request(
                        "client_secret was sent without client_id",
                    )
                    .into());
                };
                if looks_like_url(client_id) {
                    // CIMD-DOC-07: a URL client has no shared secret, so a presented one is
                    // refused (the `accept-client-secret` fault ignores it instead).
                    if self.faults.on(Fault::AcceptClientSecret) {
                        let client = directory.find(resolver, client_id).await;
                        return self
                            .public(client.map_err(token_error)?)
                            .map(|client| Authenticated { client, key: None });
                    }
                    return Err(AuthFailure::invalid_client(
                        "client_secret is not accepted: URL client IDs cannot hold a shared secret \
                         (CIMD-DOC-07)",
                    ));
                }
                let client = directory
                    .find(resolver, client_id)
                    .await
                    .map_err(token_error)?;
                self.secret(client, TokenAuthMethod::ClientSecretPost, secret)
                    .await
            }
            Presented::Assertion {
                assertion_type,
                assertion,
                client_id,
            } => {
                let assertion = rules.parse(assertion_type, assertion)?;
                let identity = rules.identity(&assertion, client_id)?;
                let client = directory
                    .find(resolver, identity)
                    .await
                    .map_err(token_error)?;
                let method = client.auth_method();
                if method != TokenAuthMethod::PrivateKeyJwt {
                    return Err(AuthFailure::invalid_client(format!(
                        "client {:?} authenticates with {method}, not private_key_jwt, so it may \
                         not send a client assertion",
                        client.id()
                    )));
                }
                key = rules
                    .verify(&client, &assertion, resolver, &self.jwks, &self.store)
                    .await?;
                Ok(client)
            }
        }?;
        Ok(Authenticated { client, key })
    }

    /// Whether grants are bound to the key that opened them (`bind_grants_to_key`, PKJWT-15).
    pub fn binds_grants_to_key(&self) -> bool {
        self.bind_grants_to_key
    }

    /// A request without credentials: only a client that registered `none` may send one.
    fn public(&self, client: Client) -> Result<Client, AuthFailure> {
        match (client.auth_method(), &client) {
            (TokenAuthMethod::None, _) => Ok(client),
            // CIMD-AUTH-02: the `public-confidential-client` fault lets it through unauthenticated.
            (TokenAuthMethod::PrivateKeyJwt, Client::Ephemeral(_))
                if self.faults.on(Fault::PublicConfidentialClient) =>
            {
                Ok(client)
            }
            (TokenAuthMethod::PrivateKeyJwt, Client::Ephemeral(meta)) => {
                Err(AuthFailure::invalid_client(format!(
                    "client {:?} declares token_endpoint_auth_method \"private_key_jwt\" in its \
                     metadata document, so every token request must carry a client assertion \
                     (client_assertion_type and client_assertion) (CIMD-AUTH-02)",
                    meta.client_id.as_str()
                )))
            }
            (method, _) => Err(AuthFailure::invalid_client(format!(
                "client {:?} must authenticate with {method} on every token request",
                client.id()
            ))
            .with_challenge_if(method == TokenAuthMethod::ClientSecretBasic)),
        }
    }

    /// A shared secret presented with `used`: it must be the client's method and secret.
    async fn secret(
        &self,
        client: Client,
        used: TokenAuthMethod,
        secret: &str,
    ) -> Result<Client, AuthFailure> {
        let Client::Registered(registered) = &client else {
            return Err(AuthFailure::invalid_client(
                "URL client IDs cannot hold a shared secret (CIMD-DOC-07)",
            ));
        };
        if registered.auth_method != used {
            return Err(AuthFailure::invalid_client(format!(
                "client {:?} is registered with {}, not {used}",
                registered.client_id, registered.auth_method
            )));
        }
        let Some(hash) = &registered.secret else {
            return Err(AuthFailure::invalid_client(format!(
                "client {:?} has no valid secret: none was issued, or it expired (DCR-04)",
                registered.client_id
            )));
        };
        if hash.verify(secret).await? {
            Ok(client)
        } else {
            Err(AuthFailure::invalid_client(format!(
                "the client secret presented for client {:?} is wrong",
                registered.client_id
            )))
        }
    }
}

impl AuthFailure {
    fn with_challenge_if(self, challenge: bool) -> Self {
        if challenge { self.challenged() } else { self }
    }
}

/// A lookup error as the token endpoint reports it: a policy refusal stays `unauthorized_client`
/// and every other failure to establish the client is `invalid_client` (`access_denied` is no
/// token-endpoint code).
fn token_error(error: OAuthError) -> AuthFailure {
    let code = if error.code == ErrorCode::UNAUTHORIZED_CLIENT {
        ErrorCode::UNAUTHORIZED_CLIENT
    } else {
        ErrorCode::INVALID_CLIENT
    };
    OAuthError::new(code, error.description).into()
}

/// Which credentials the request presents; more than one method is `invalid_request`
/// (RFC 6749 §2.3: a client uses one authentication method per request).
fn presented<'a>(
    headers: &HeaderMap,
    params: AuthParams<'a>,
) -> Result<Presented<'a>, AuthFailure> {
    let basic = basic_credentials(headers)?;
    let assertion = params.client_assertion.is_some() || params.client_assertion_type.is_some();
    let used = [basic.is_some(), params.client_secret.is_some(), assertion];
    if used.iter().filter(|u| **u).count() > 1 {
        return Err(OAuthError::invalid_request(
            "the request uses more than one client authentication method (HTTP Basic, \
             client_secret, client_assertion); use exactly one (RFC 6749 §2.3)",
        )
        .into());
    }
    Ok(if let Some((client_id, secret)) = basic {
        Presented::Basic { client_id, secret }
    } else if let Some(secret) = params.client_secret {
        Presented::Post {
            client_id: params.client_id,
            secret,
        }
    } else if assertion {
        Presented::Assertion {
            assertion_type: params.client_assertion_type,
            assertion: params.client_assertion,
            client_id: params.client_id,
        }
    } else {
        Presented::Nothing {
            client_id: params.client_id,
        }
    })
}

/// The client_id and secret of an `Authorization: Basic` header, each form-urlencoded before
/// encoding (RFC 6749 §2.3.1). Any other scheme, or a malformed value, is `invalid_client`.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, AuthFailure> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let malformed = |why: &str| {
        AuthFailure::invalid_client(format!("the Authorization header {why}")).challenged()
    };
    if values.next().is_some() {
        return Err(malformed("is repeated"));
    }
    let value = value.to_str().map_err(|_| malformed("is not ASCII"))?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(malformed("has no credentials"));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed(&format!(
            "uses the {scheme:?} scheme; this token endpoint accepts HTTP Basic client \
             authentication only"
        )));
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| malformed("is not base64 of UTF-8 text"))?;
    let Some((id, secret)) = decoded.split_once(':') else {
        return Err(malformed("does not hold client_id:client_secret"));
    };
    let unescape = |part: &str| -> String {
        url::form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (id, secret) = (unescape(id), unescape(secret));
    if id.is_empty() {
        return Err(malformed("has an empty client_id"));
    }
    Ok(Some((id, secret)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::http::HeaderValue;

    use super::*;

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn basic_credentials_are_form_urlencoded_before_base64() {
        let encoded = STANDARD.encode("my%20app:s3%3Acret+x");
        let (id, secret) = basic_credentials(&with_auth(&format!("Basic {encoded}")))
            .unwrap()
            .unwrap();
        assert_eq!((id.as_str(), secret.as_str()), ("my app", "s3:cret x"));
    }

    #[test]
    fn other_schemes_and_malformed_basic_values_are_invalid_client_with_a_challenge() {
        for value in [
            "Bearer abc",
            "Basic !!!",
            "Basic",
            &format!("Basic {}", STANDARD.encode("nocolon")),
        ] {
            let failure = basic_credentials(&with_auth(value)).unwrap_err();
            assert_eq!(failure.error.code, ErrorCode::INVALID_CLIENT, "{value}");
            assert!(failure.basic_challenge, "{value}");
        }
    }

    #[test]
    fn two_authentication_methods_in_one_request_are_invalid_request() {
        let params = AuthParams {
            client_id: Some("a"),
            client_secret: Some("s"),
            client_assertion_type: Some(JWT_BEARER),
            client_assertion: Some("x.y.z"),
        };
        let failure = presented(&HeaderMap::new(), params).unwrap_err();
        assert_eq!(failure.error.code, ErrorCode::INVALID_REQUEST);
        assert!(failure.error.description.contains("more than one"));
    }
}
