//! Errors: [`AsError`] for everything that can stop the server from starting or serving, and
//! [`OAuthError`] for protocol errors sent to a client or shown to a person.
//!
//! OAuth error codes are a closed vocabulary (RFC 6749 §4.1.2.1 and §5.2, RFC 8707 §2), so
//! [`ErrorCode`] is a newtype over `&'static str` with one constant per code; a description always
//! says precisely what was wrong and, where a catalogue requirement is at stake, names it.

use std::fmt;

/// Everything that can go wrong while configuring, starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum AsError {
    /// The configuration file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ConfigRead {
        /// The file that was read.
        path: std::path::PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The configuration is malformed or inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A TLS certificate or key could not be loaded.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The database refused an operation.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The system random generator or a key generation failed.
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    /// Signing a token failed.
    #[error("token signing failed: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    /// The client resolver could not be built from the policy and network settings.
    #[error("client resolver setup failed: {0}")]
    Resolver(#[from] crate::cimd::CimdError),
    /// Binding or serving the listener failed.
    #[error("listener error: {0}")]
    Listener(#[from] mock_kit::KitError),
    /// A socket operation failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    /// A sign-in mail could not be built or delivered.
    #[error("mail delivery failed: {0}")]
    Mail(String),
}

/// An OAuth error code (RFC 6749 §4.1.2.1, §5.2; RFC 8707 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(&'static str);

impl ErrorCode {
    /// The request is missing a parameter, repeats one, or is otherwise malformed.
    pub const INVALID_REQUEST: Self = Self("invalid_request");
    /// Client authentication failed or the client is unknown.
    pub const INVALID_CLIENT: Self = Self("invalid_client");
    /// The grant (code, refresh token, verifier) is invalid, expired, revoked or mismatched.
    pub const INVALID_GRANT: Self = Self("invalid_grant");
    /// The client may not use this grant or response type.
    pub const UNAUTHORIZED_CLIENT: Self = Self("unauthorized_client");
    /// The grant type is not supported by this server.
    pub const UNSUPPORTED_GRANT_TYPE: Self = Self("unsupported_grant_type");
    /// The response type is not supported by this server.
    pub const UNSUPPORTED_RESPONSE_TYPE: Self = Self("unsupported_response_type");
    /// The requested scope is invalid or not allowed.
    pub const INVALID_SCOPE: Self = Self("invalid_scope");
    /// The requested resource (RFC 8707) is invalid or not allowed.
    pub const INVALID_TARGET: Self = Self("invalid_target");
    /// The user or the server denied the request.
    pub const ACCESS_DENIED: Self = Self("access_denied");
    /// The server failed unexpectedly.
    pub const SERVER_ERROR: Self = Self("server_error");
    /// The server cannot handle the request right now.
    pub const TEMPORARILY_UNAVAILABLE: Self = Self("temporarily_unavailable");

    /// A code chosen elsewhere (the client resolver names its own codes).
    pub const fn other(code: &'static str) -> Self {
        Self(code)
    }

    /// The code as sent on the wire.
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A protocol error: a code plus a precise, human-readable description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The OAuth error code.
    pub code: ErrorCode,
    /// What exactly was wrong; names the requirement where one applies.
    pub description: String,
}

impl OAuthError {
    /// An error with `code` and `description`.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    /// `invalid_request` with `description`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::INVALID_REQUEST, description)
    }

    /// `invalid_grant` with `description`.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::INVALID_GRANT, description)
    }

    /// `invalid_client` with `description`.
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::INVALID_CLIENT, description)
    }

    /// `server_error` for an internal failure; the details go to the log, not to the peer.
    pub fn server_error(error: &AsError) -> Self {
        tracing::error!(%error, "internal error");
        Self::new(
            ErrorCode::SERVER_ERROR,
            "the server failed to process the request; see its log",
        )
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl std::error::Error for OAuthError {}
