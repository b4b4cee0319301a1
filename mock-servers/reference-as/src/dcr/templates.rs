//! Template clients for templatized registration (CUR-07): a template fixes how its instances
//! authenticate, which grants they may use, their redirect URIs, the ceiling of their scopes and
//! the sign-in methods their users may use. A registration naming the template in `software_id`
//! creates an instance with its own client_id, secret or keys and display metadata.
//!
//! Templates live in the database (seeded from `[[registration.templates]]` at start, edited
//! through the admin API) and instances hold only a reference, so the template's fields are read
//! at every lookup and an edit reaches every instance at once.

use serde::{Deserialize, Serialize};

use super::metadata::{GRANT_TYPES, check_redirect_uri, check_scope_syntax};
use crate::client_auth::TokenAuthMethod;

/// The sign-in methods a template may allow (the names of the ephemeral policy's
/// `authenticators`).
pub const AUTHENTICATORS: &[&str] = &["email-code", "password"];

/// A template's definition: `[[registration.templates]]` without its `software_id`, and the body
/// of `PUT /admin/templates/{software_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateDefinition {
    /// The name instances show when they register none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// How every instance authenticates at the token endpoint.
    #[serde(default = "default_auth_method")]
    pub token_endpoint_auth_method: TokenAuthMethod,
    /// The grants every instance may use.
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<String>,
    /// The redirect URIs of every instance.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The scopes instances may ask for (space-separated); absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The sign-in methods users of instances may use.
    #[serde(default = "default_authenticators")]
    pub authenticators: Vec<String>,
}

/// A template in the configuration file: a [`TemplateDefinition`] with its `software_id` (the
/// keys are repeated rather than flattened, so unknown keys are still refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// The name registrations use in `software_id`; never a client_id.
    pub software_id: String,
    /// See [`TemplateDefinition::client_name`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// See [`TemplateDefinition::token_endpoint_auth_method`].
    #[serde(default = "default_auth_method")]
    pub token_endpoint_auth_method: TokenAuthMethod,
    /// See [`TemplateDefinition::grant_types`].
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<String>,
    /// See [`TemplateDefinition::redirect_uris`].
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// See [`TemplateDefinition::scope`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// See [`TemplateDefinition::authenticators`].
    #[serde(default = "default_authenticators")]
    pub authenticators: Vec<String>,
}

fn default_auth_method() -> TokenAuthMethod {
    // RFC 7591 §2's default.
    TokenAuthMethod::ClientSecretBasic
}

fn default_grant_types() -> Vec<String> {
    vec!["authorization_code".to_owned()]
}

fn default_authenticators() -> Vec<String> {
    AUTHENTICATORS.iter().map(|&a| a.to_owned()).collect()
}

impl TemplateDefinition {
    /// Checks what serde cannot: known grants, a method that fits them, usable redirect URIs,
    /// scope syntax, known authenticators.
    pub fn check(&self) -> Result<(), String> {
        for grant in &self.grant_types {
            if !GRANT_TYPES.contains(&grant.as_str()) {
                return Err(format!(
                    "grant type {grant:?} is not one of {}",
                    GRANT_TYPES.join(", ")
                ));
            }
        }
        let has = |g: &str| self.grant_types.iter().any(|x| x == g);
        if has("client_credentials") && !self.token_endpoint_auth_method.is_confidential() {
            return Err("client_credentials needs a method that authenticates".to_owned());
        }
        if has("authorization_code") && self.redirect_uris.is_empty() {
            return Err("the authorization_code grant needs redirect_uris".to_owned());
        }
        for uri in &self.redirect_uris {
            check_redirect_uri(uri)?;
        }
        if let Some(scope) = &self.scope {
            check_scope_syntax(scope)?;
        }
        for authenticator in &self.authenticators {
            if !AUTHENTICATORS.contains(&authenticator.as_str()) {
                return Err(format!(
                    "authenticator {authenticator:?} is not one of {}",
                    AUTHENTICATORS.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The scope ceiling as a list (`None`: any scope).
    pub fn scopes(&self) -> Option<Vec<&str>> {
        self.scope
            .as_deref()
            .map(|s| s.split(' ').filter(|s| !s.is_empty()).collect())
    }
}

impl TemplateConfig {
    /// The definition stored for this template.
    pub fn definition(&self) -> TemplateDefinition {
        TemplateDefinition {
            client_name: self.client_name.clone(),
            token_endpoint_auth_method: self.token_endpoint_auth_method,
            grant_types: self.grant_types.clone(),
            redirect_uris: self.redirect_uris.clone(),
            scope: self.scope.clone(),
            authenticators: self.authenticators.clone(),
        }
    }

    /// Checks the software_id and the definition.
    pub fn check(&self) -> Result<(), String> {
        check_software_id(&self.software_id)?;
        self.definition()
            .check()
            .map_err(|e| format!("template {:?}: {e}", self.software_id))
    }
}

/// A template's name: printable ASCII without spaces, and never URL-like (a template is not a
/// client metadata document).
pub fn check_software_id(id: &str) -> Result<(), String> {
    if id.is_empty() || !id.bytes().all(|b| (0x21..=0x7e).contains(&b)) || id.contains("://") {
        return Err(format!(
            "template {id:?}: software_id must be printable ASCII without spaces, not a URL"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_template_table_parses_with_defaults_and_refuses_unknown_keys() {
        let parsed: TemplateConfig =
            toml::from_str("software_id = \"cli\"\nredirect_uris = [\"http://127.0.0.1/cb\"]\n")
                .unwrap();
        assert_eq!(
            parsed.token_endpoint_auth_method,
            TokenAuthMethod::ClientSecretBasic
        );
        assert_eq!(parsed.grant_types, ["authorization_code"]);
        parsed.check().unwrap();
        assert!(
            toml::from_str::<TemplateConfig>("software_id = \"cli\"\nscopes = \"a\"\n").is_err()
        );
    }

    #[test]
    fn templates_with_unusable_settings_are_refused() {
        let mut t: TemplateConfig =
            toml::from_str("software_id = \"cli\"\nredirect_uris = [\"http://127.0.0.1/cb\"]\n")
                .unwrap();
        t.authenticators = vec!["magic-link".to_owned()];
        assert!(t.check().is_err());
        t.authenticators = default_authenticators();
        t.redirect_uris = vec!["http://app.example/cb".to_owned()];
        assert!(t.check().is_err(), "plain http off loopback");
        t.redirect_uris.clear();
        assert!(t.check().is_err(), "code grant without redirect URIs");
        t.software_id = "https://x/y".to_owned();
        assert!(t.check().is_err());
    }
}
