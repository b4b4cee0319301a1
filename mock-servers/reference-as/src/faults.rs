//! The faults switchboard: named switches, each breaking exactly one requirement.
//!
//! Every scenario proves it can fail by running against the reference AS with one fault switched
//! on (`[negative] fault = "follow-redirects"`). A fault is never on by default, and each one names
//! the requirement it breaks so the negative run knows which check must fail.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! faults {
    ($($variant:ident = $name:literal breaks $req:literal: $doc:literal;)*) => {
        /// One deliberate deviation from a requirement.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum Fault {
            $(#[doc = $doc] $variant,)*
        }

        impl Fault {
            /// Every fault, in declaration order.
            pub const ALL: &'static [Fault] = &[$(Fault::$variant,)*];

            /// The switch's name as used in config files, flags and scenario files.
            pub fn name(self) -> &'static str {
                match self { $(Fault::$variant => $name,)* }
            }

            /// The requirement ID this fault violates.
            pub fn requirement(self) -> &'static str {
                match self { $(Fault::$variant => $req,)* }
            }

            /// What the fault does, in one sentence.
            pub fn description(self) -> &'static str {
                match self { $(Fault::$variant => $doc,)* }
            }
        }
    };
}

faults! {
    LenientClientIdUrl = "lenient-client-id-url" breaks "CIMD-URL-04":
        "Accepts client ID URLs with dot segments, fragments, userinfo or a non-https scheme.";
    AcceptAnyStatus = "accept-any-status" breaks "CIMD-FETCH-02":
        "Accepts a metadata document served with any status code, not only 200.";
    FollowRedirects = "follow-redirects" breaks "CIMD-FETCH-03":
        "Follows HTTP redirects when fetching a metadata document.";
    NoSizeLimit = "no-size-limit" breaks "CIMD-SEC-06":
        "Reads metadata documents of any size.";
    NoFetchTimeout = "no-fetch-timeout" breaks "CIMD-FETCH-04":
        "Waits for a slow metadata host without a time limit.";
    SkipSsrfGuard = "skip-ssrf-guard" breaks "CIMD-SEC-01":
        "Connects to special-use addresses (loopback, private, link-local, ...).";
    SkipClientIdEquality = "skip-client-id-equality" breaks "CIMD-DOC-03":
        "Does not require the document's client_id to equal the URL it was fetched from.";
    AllowSharedSecrets = "allow-shared-secrets" breaks "CIMD-DOC-06":
        "Accepts documents that declare shared-secret authentication or carry a client_secret.";
    AllowPrivateKeys = "allow-private-keys" breaks "CIMD-DOC-08":
        "Accepts documents whose jwks carry private or symmetric key material.";
    LooseRedirectMatch = "loose-redirect-match" breaks "CIMD-REDIR-01":
        "Accepts a redirect_uri that merely starts with a registered one.";
    RedirectErrorsToClient = "redirect-errors-to-client" breaks "OAUTH-01":
        "Redirects to the presented redirect_uri even when the client or redirect URI is invalid.";
    SkipAllowList = "skip-allow-list" breaks "CIMD-SEC-09":
        "Ignores the domain allow-list and deny-list for ephemeral clients.";
    SkipScopePolicy = "skip-scope-policy" breaks "CUR-03":
        "Grants ephemeral clients scopes outside the policy's allowed set.";
    SkipCapabilityPolicy = "skip-capability-policy" breaks "CUR-03":
        "Lets ephemeral clients use grant types the policy does not enable.";
    SkipConsent = "skip-consent" breaks "CUR-04":
        "Issues codes without asking for consent even when the policy requires it.";
    SkipPkce = "skip-pkce" breaks "PKCE-04":
        "Accepts authorization requests from public clients without an S256 code challenge.";
    ReuseCodes = "reuse-codes" breaks "OAUTH-02":
        "Lets an authorization code be redeemed more than once.";
    NoRefreshRotation = "no-refresh-rotation" breaks "MCP-SEC-03":
        "Keeps a refresh token valid after it has been used.";
    OmitIss = "omit-iss" breaks "MCP-ISS-01":
        "Leaves the RFC 9207 iss parameter out of authorization responses.";
    HideCimdSupport = "hide-cimd-support" breaks "CIMD-META-01":
        "Leaves client_id_metadata_document_supported out of the AS metadata.";
    AcceptPathlessClientId = "accept-pathless-client-id" breaks "CIMD-URL-02":
        "Accepts client ID URLs that have no path component.";
    SkipUrlSyntaxCheck = "skip-url-syntax-check" breaks "CIMD-URL-01":
        "Accepts client ID URLs whose path or query has malformed percent-escapes or characters RFC 3986 does not allow.";
    LenientJson = "lenient-json" breaks "CIMD-DOC-01":
        "Parses metadata documents leniently: the last of duplicate member names wins and bytes after the JSON value are ignored.";
    SkipClientIdPresence = "skip-client-id-presence" breaks "CIMD-DOC-02":
        "Accepts documents without a string client_id, taking the fetched URL as the client's identity.";
    AcceptAnyContentType = "accept-any-content-type" breaks "CIMD-DOC-05":
        "Accepts metadata documents served with any Content-Type, or none.";
    RefuseUnknownMembers = "refuse-unknown-members" breaks "CIMD-DOC-04":
        "Refuses metadata documents with members outside the client metadata registry.";
    CacheFetchErrors = "cache-fetch-errors" breaks "CIMD-CACHE-03":
        "Remembers a failed fetch and answers later requests for that client_id with the same error.";
    SkipPkceVerifier = "skip-pkce-verifier" breaks "PKCE-05":
        "Issues tokens for a code without comparing the code_verifier with its code_challenge.";
    AcceptPasswordGrant = "accept-password-grant" breaks "BCP-08":
        "Offers the resource owner password credentials grant to public URL clients.";
    SkipAuthMethodPolicy = "skip-auth-method-policy" breaks "CIMD-DOC-09":
        "Accepts documents whose token_endpoint_auth_method the policy does not allow.";
    OfferAllAuthenticators = "offer-all-authenticators" breaks "CUR-03":
        "Offers and accepts every sign-in method, whatever the policy's authenticators say.";
    AcceptWhenDisabled = "accept-when-disabled" breaks "CUR-01":
        "Resolves URL client IDs even when the policy switches ephemeral clients off.";
    PublishEmptyArrays = "publish-empty-arrays" breaks "AS-META-07":
        "Publishes members with empty arrays in the AS metadata instead of leaving them out.";
    LenientResource = "lenient-resource" breaks "RI-01":
        "Issues tokens for a resource other than the one the grant was authorized for.";
    AllowJwksAndJwksUri = "allow-jwks-and-jwks-uri" breaks "CIMD-DOC-10":
        "Accepts documents that carry both jwks and jwks_uri.";
    NeverRefetch = "never-refetch" breaks "CIMD-FETCH-05":
        "Keeps a fetched metadata document or key set for as long as the server runs, whatever its cache lifetime.";
    AcceptClientSecret = "accept-client-secret" breaks "CIMD-DOC-07":
        "Ignores a client_secret that a URL client sends to the token endpoint instead of refusing it.";
    SkipMemberTypes = "skip-member-types" breaks "CIMD-DOC-01":
        "Accepts registry members of the wrong JSON type in metadata documents, ignoring them.";
    AudienceIgnoresResource = "audience-ignores-resource" breaks "BCP-07":
        "Issues access tokens whose audience is the client, whatever resource was requested.";
    NoAcceptHeader = "no-accept-header" breaks "CIMD-FETCH-06":
        "Fetches metadata documents without an Accept header.";
    NeverCache = "never-cache" breaks "CIMD-CACHE-01":
        "Fetches the metadata document again for every request, even within its cache lifetime.";
    CaseSensitiveResource = "case-sensitive-resource" breaks "MCP-RES-02":
        "Refuses resource indicators whose scheme or host is not written in lower case.";
    IgnoreNoStore = "ignore-no-store" breaks "CIMD-CACHE-02":
        "Stores metadata documents served with Cache-Control: no-store as if the directive were absent.";
    IgnoreMaxAge = "ignore-max-age" breaks "CIMD-CACHE-02":
        "Ignores max-age, Expires and Age, keeping every metadata document for the default lifetime.";
    NoRevalidation = "no-revalidation" breaks "CIMD-CACHE-02":
        "Fetches a stale metadata document again without its ETag or Last-Modified, so a 304 is never used.";
    NoCoalescing = "no-coalescing" breaks "CIMD-CACHE-01":
        "Fetches the metadata document once per concurrent request instead of sharing one fetch.";
    PublicConfidentialClient = "public-confidential-client" breaks "CIMD-AUTH-02":
        "Lets a client whose document declares private_key_jwt use the token endpoint without authenticating.";
    SkipAssertionSignature = "skip-assertion-signature" breaks "CIMD-AUTH-03":
        "Accepts client assertions without verifying their signature.";
    NoJwksRefresh = "no-jwks-refresh" breaks "CIMD-AUTH-03":
        "Never fetches a client's jwks_uri again for an unknown kid, so a rotated key is refused until the cache expires.";
    LenientAssertionType = "lenient-assertion-type" breaks "PKJWT-01":
        "Accepts a client assertion whatever its client_assertion_type says.";
    IgnoreClientIdMismatch = "ignore-client-id-mismatch" breaks "PKJWT-02":
        "Authenticates the client an assertion names even when the client_id parameter names another.";
    AcceptForeignIssuer = "accept-foreign-issuer" breaks "PKJWT-03":
        "Accepts client assertions whose iss is not the client_id.";
    AcceptForeignSubject = "accept-foreign-subject" breaks "PKJWT-04":
        "Accepts client assertions whose sub is not the client_id.";
    AcceptAnyAudience = "accept-any-audience" breaks "PKJWT-05":
        "Accepts client assertions whatever their aud claim says.";
    AcceptExpiredAssertion = "accept-expired-assertion" breaks "PKJWT-07":
        "Accepts client assertions after their exp.";
    AcceptEarlyAssertion = "accept-early-assertion" breaks "PKJWT-08":
        "Accepts client assertions before their nbf, or with an iat in the future.";
    ReplayableJti = "replayable-jti" breaks "PKJWT-09":
        "Lets one client assertion (one jti) authenticate any number of token requests.";
    AcceptAlgNone = "accept-alg-none" breaks "PKJWT-10":
        "Accepts unsigned client assertions (alg none).";
    RefuseUntypedAssertion = "refuse-untyped-assertion" breaks "PKJWT-12":
        "Refuses client assertions that carry no typ header.";
    IgnoreSigningAlgPin = "ignore-signing-alg-pin" breaks "PKJWT-14":
        "Accepts assertions signed with another algorithm than the client's token_endpoint_auth_signing_alg.";
    NoSlowDown = "no-slow-down" breaks "DEV-06":
        "Answers authorization_pending to a device that polls faster than its interval, never slow_down.";
    DeviceCodeNeverExpires = "device-code-never-expires" breaks "DEV-07":
        "Keeps device codes and user codes usable after their expires_in has passed.";
    ReusableDeviceCode = "reusable-device-code" breaks "DEV-08":
        "Issues tokens for an approved device code every time it is presented.";
    UnlimitedUserCodeAttempts = "unlimited-user-code-attempts" breaks "DEV-09":
        "Lets a browser or address try any number of wrong user codes at the verification URI.";
    StrictUserCodeMatch = "strict-user-code-match" breaks "DEV-10":
        "Accepts a user code only exactly as displayed: upper case, with its dash.";
    DeviceSkipsConfirmation = "device-skips-confirmation" breaks "DEV-11":
        "Approves a device authorization without asking the user when consent to the client was remembered.";
    DeviceDenialIgnored = "device-denial-ignored" breaks "DEV-05":
        "Leaves a device authorization pending when the user denies it, so the device polls on.";
    RegistrationAcceptsForm = "registration-accepts-form" breaks "DCR-01":
        "Accepts form-encoded registration requests, reading each parameter as a metadata member.";
    RegistrationWithoutInitialToken = "registration-without-initial-token" breaks "DCR-02":
        "Registers clients without an initial access token even when registration requires one.";
    RegistrationCreatedStatus200 = "registration-created-status-200" breaks "DCR-03":
        "Answers a successful registration with 200 instead of 201 Created.";
    NoClientSecretExpiry = "no-client-secret-expiry" breaks "DCR-04":
        "Issues client secrets without client_secret_expires_at.";
    RegistrationErrorStatus200 = "registration-error-status-200" breaks "DCR-06":
        "Answers refused registrations with status 200 (the JSON error body unchanged).";
    AcceptBadRedirectUri = "accept-bad-redirect-uri" breaks "DCR-07":
        "Registers redirect URIs without checking them: plain http, fragments, relative URIs.";
    AcceptJwksAndJwksUri = "accept-jwks-and-jwks-uri" breaks "DCR-15":
        "Registers clients that send both jwks and jwks_uri.";
    AcceptClientChosenClientId = "accept-client-chosen-client-id" breaks "DCR-19":
        "Registers a client under the client_id its registration request names, even an https URL.";
    ReusableInitialAccessToken = "reusable-initial-access-token" breaks "CUR-07":
        "Lets one initial access token register any number of clients until it expires.";
    NoRegistrationAccessToken = "no-registration-access-token" breaks "DCRM-01":
        "Leaves registration_access_token and registration_client_uri out of registration responses.";
    RegistrationUnknownClient404 = "registration-unknown-client-404" breaks "DCRM-05":
        "Answers 404 instead of 401 on the configuration endpoint of an unknown or deleted client.";
    AcceptMismatchedClientIdOnUpdate = "accept-mismatched-client-id-on-update" breaks "DCRM-06":
        "Applies an update whose body names another client_id, or none.";
    NoTokenRotationOnUpdate = "no-token-rotation-on-update" breaks "DCRM-04":
        "Keeps the registration access token after an update even when rotation is configured.";
    DeleteStatus200 = "delete-status-200" breaks "DCRM-09":
        "Answers a successful DELETE on the configuration endpoint with 200 instead of 204.";
    DeletedClientStillValid = "deleted-client-still-valid" breaks "DCRM-09":
        "Keeps a deleted client's credentials and grants working; only its registration access token goes.";
    TemplateUsableDirectly = "template-usable-directly" breaks "CUR-07":
        "Serves a registration template as a client when its software_id is used as a client_id.";
    TemplateChangesNotApplied = "template-changes-not-applied" breaks "CUR-07":
        "Gives each template instance a frozen copy of its template, so later template edits do not reach it.";
    ParAcceptsEndpointAudience = "par-accepts-endpoint-audience" breaks "PKJWT-13":
        "Accepts a client assertion whose aud is the PAR endpoint URL at the PAR endpoint, even in strict mode.";
    ReusableRequestUri = "reusable-request-uri" breaks "PAR-02":
        "Lets a pushed request_uri start more than one authorization request.";
    IgnoreParClientId = "ignore-par-client-id" breaks "PAR-03":
        "Starts an authorization from a pushed request_uri whatever client_id accompanies it.";
    AcceptPushedRequestUri = "accept-pushed-request-uri" breaks "PAR-04":
        "Accepts a pushed authorization request that carries a request_uri parameter.";
    RefreshIgnoresGrantKey = "refresh-ignores-grant-key" breaks "PKJWT-15":
        "Refreshes a grant bound to a client key with an assertion signed by any other key of the client.";
    ParNotEnforced = "par-not-enforced" breaks "PAR-05":
        "Starts authorizations from requests that were not pushed while discovery still says PAR is required.";
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown fault name; the message lists the valid ones.
#[derive(Debug, thiserror::Error)]
#[error("unknown fault {0:?}; known faults: {known}", known = Fault::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", "))]
pub struct UnknownFault(pub String);

impl FromStr for Fault {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fault::ALL
            .iter()
            .copied()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFault(s.to_owned()))
    }
}

/// The set of faults switched on for one reference AS instance (empty by default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Faults(BTreeSet<Fault>);

impl Faults {
    /// No faults: the strict, correct server.
    pub fn none() -> Self {
        Self::default()
    }

    /// Exactly the given faults.
    pub fn of(faults: impl IntoIterator<Item = Fault>) -> Self {
        Self(faults.into_iter().collect())
    }

    /// Whether `fault` is switched on.
    pub fn on(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }

    /// The switched-on faults.
    pub fn iter(&self) -> impl Iterator<Item = Fault> + '_ {
        self.0.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_round_trips_through_its_name_and_names_a_requirement() {
        for fault in Fault::ALL {
            assert_eq!(fault.name().parse::<Fault>().ok(), Some(*fault));
            assert!(fault.requirement().contains('-'));
        }
        assert!("no-such-fault".parse::<Fault>().is_err());
    }
}
