//! The HTML pages: error, sign-in, code entry and consent, in one small shared layout.
//!
//! Pages are plain HTML5 forms with stable ids and field names, so a script can drive them as
//! easily as a person can use them; every interpolated value goes through [`escape`]. Responses
//! carry `no-store` and anti-framing headers: a consent page that could be framed could be
//! clickjacked.

use std::fmt::Write as _;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::error::OAuthError;

pub use mock_kit::html::escape;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;\
padding:0 1rem;line-height:1.5;color:#1b1b1b}h1{font-size:1.4rem}\
form{margin:1.5rem 0;padding:1rem;border:1px solid #ccc;border-radius:.5rem}\
label{display:block;margin:.5rem 0 .2rem}input{font:inherit;padding:.4rem;width:100%;\
box-sizing:border-box}button{font:inherit;padding:.5rem 1rem;margin:.8rem .5rem 0 0}\
.alert{background:#fdecea;border-left:4px solid #b00020;padding:.6rem}\
.host{font-size:1.25rem;font-weight:bold}dt{font-weight:bold}dd{margin:0 0 .6rem}\
footer{margin-top:2rem;color:#555;font-size:.85rem}";

/// Wraps `body` (already escaped HTML) in the shared layout.
fn layout(title: &str, issuer: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} – Reference authorization server</title>\n<style>{STYLE}</style>\n\
         </head>\n<body>\n<main>\n<h1>{title}</h1>\n{body}</main>\n\
         <footer>Reference authorization server at {issuer}</footer>\n</body>\n</html>\n",
        title = escape(title),
        issuer = escape(issuer),
    )
}

/// An HTML response with the headers every page carries.
pub fn html(status: StatusCode, title: &str, issuer: &str, body: &str) -> Response {
    let mut response = (status, Html(layout(title, issuer, body))).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// An error shown to the person, never sent to the client (OAUTH-01). The `error` and
/// `error_description` elements carry ids so scripts can read them.
pub fn error_page(status: StatusCode, issuer: &str, error: &OAuthError) -> Response {
    let body = format!(
        "<p class=\"alert\" role=\"alert\">The request cannot be completed, and you have not been \
         sent back to the application.</p>\n<dl>\n<dt>error</dt><dd><code id=\"error\">{code}</code>\
         </dd>\n<dt>error_description</dt><dd id=\"error_description\">{description}</dd>\n</dl>\n\
         <p>You can close this window.</p>\n",
        code = escape(error.code.as_str()),
        description = escape(&error.description),
    );
    html(status, "Request refused", issuer, &body)
}

/// The hidden fields every form of a pending request carries.
fn hidden_fields(request_id: &str, csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"request_id\" value=\"{}\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\n",
        escape(request_id),
        escape(csrf)
    )
}

/// An optional alert paragraph.
fn alert(message: Option<&str>) -> String {
    message.map_or_else(String::new, |m| {
        format!(
            "<p class=\"alert\" role=\"alert\" id=\"message\">{}</p>\n",
            escape(m)
        )
    })
}

/// What the sign-in page needs.
#[derive(Debug, Clone, Copy)]
pub struct LoginPage<'a> {
    /// The issuer, for the footer.
    pub issuer: &'a str,
    /// The issuer's path prefix for form actions.
    pub base: &'a str,
    /// The host of the client being signed in to.
    pub client_host: &'a str,
    /// The pending request.
    pub request_id: &'a str,
    /// Its CSRF token.
    pub csrf: &'a str,
    /// Offer the e-mailed code.
    pub email_code: bool,
    /// Offer username and password.
    pub password: bool,
    /// A problem with the previous attempt.
    pub message: Option<&'a str>,
    /// Prefill for the e-mail field.
    pub email: &'a str,
}

/// The sign-in page: the client's host and one form per allowed authenticator.
pub fn login_page(status: StatusCode, page: &LoginPage<'_>) -> Response {
    let hidden = hidden_fields(page.request_id, page.csrf);
    let mut body = format!(
        "<p>Sign in to continue to</p>\n<p class=\"host\" id=\"client-host\">{}</p>\n{}",
        escape(page.client_host),
        alert(page.message),
    );
    if page.email_code {
        let _ = write!(
            body,
            "<form id=\"email-form\" method=\"post\" action=\"{base}/login/email\">\n{hidden}\
             <label for=\"email\">E-mail address</label>\n\
             <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\" required \
             value=\"{email}\">\n<button type=\"submit\">Send me a sign-in code</button>\n</form>\n",
            base = escape(page.base),
            email = escape(page.email),
        );
    }
    if page.password {
        let _ = write!(
            body,
            "<form id=\"password-form\" method=\"post\" action=\"{base}/login/password\">\n{hidden}\
             <label for=\"username\">Username</label>\n\
             <input id=\"username\" name=\"username\" autocomplete=\"username\" required>\n\
             <label for=\"password\">Password</label>\n\
             <input id=\"password\" name=\"password\" type=\"password\" \
             autocomplete=\"current-password\" required>\n\
             <button type=\"submit\">Sign in</button>\n</form>\n",
            base = escape(page.base),
        );
    }
    if !page.email_code && !page.password {
        body.push_str("<p>No sign-in method is enabled for this application.</p>\n");
    }
    html(status, "Sign in", page.issuer, &body)
}

/// What the code-entry page needs.
#[derive(Debug, Clone, Copy)]
pub struct CodePage<'a> {
    /// The issuer, for the footer.
    pub issuer: &'a str,
    /// The issuer's path prefix for form actions.
    pub base: &'a str,
    /// The host of the client being signed in to.
    pub client_host: &'a str,
    /// The pending request.
    pub request_id: &'a str,
    /// Its CSRF token.
    pub csrf: &'a str,
    /// The address the code went to (if it has an account).
    pub email: &'a str,
    /// A problem with the previous attempt.
    pub message: Option<&'a str>,
}

/// The code-entry page. Its wording is the same whether or not the address has an account.
pub fn code_page(status: StatusCode, page: &CodePage<'_>) -> Response {
    let body = format!(
        "<p>Signing in to</p>\n<p class=\"host\" id=\"client-host\">{client}</p>\n{alert}\
         <p>If <strong>{email}</strong> belongs to an account, a six-digit code is on its way \
         there.</p>\n\
         <form id=\"code-form\" method=\"post\" action=\"{base}/login/code\">\n{hidden}\
         <input type=\"hidden\" name=\"email\" value=\"{email}\">\n\
         <label for=\"code\">Sign-in code</label>\n\
         <input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" \
         pattern=\"[0-9]{{6}}\" maxlength=\"6\" required>\n\
         <button type=\"submit\">Continue</button>\n</form>\n\
         <p><a href=\"{base}/login?request_id={request}\">Use another sign-in method or \
         address</a></p>\n",
        client = escape(page.client_host),
        alert = alert(page.message),
        email = escape(page.email),
        base = escape(page.base),
        hidden = hidden_fields(page.request_id, page.csrf),
        request = escape(
            &url::form_urlencoded::byte_serialize(page.request_id.as_bytes()).collect::<String>()
        ),
    );
    html(status, "Enter your code", page.issuer, &body)
}

/// What the consent page needs.
#[derive(Debug, Clone, Copy)]
pub struct ConsentPage<'a> {
    /// The issuer, for the footer.
    pub issuer: &'a str,
    /// The issuer's path prefix for form actions.
    pub base: &'a str,
    /// The client_id URL.
    pub client_id: &'a str,
    /// The client_id's host.
    pub client_host: &'a str,
    /// The document's `client_name`, if any.
    pub client_name: Option<&'a str>,
    /// The host the browser goes to afterwards.
    pub redirect_host: &'a str,
    /// The scopes asked for.
    pub scopes: &'a [&'a str],
    /// Who is signed in.
    pub username: &'a str,
    /// The pending request.
    pub request_id: &'a str,
    /// Its CSRF token.
    pub csrf: &'a str,
    /// The user code, when a device authorization is being confirmed (RFC 8628 §5.4).
    pub device_user_code: Option<&'a str>,
}

/// The consent page. CIMD-UI-02: the client_id's host is the most prominent fact on the page,
/// because the name is whatever the document's author chose (CIMD-UI-01 shows it, labelled so).
/// No logo is shown (CUR-04 `show-client-logo` defaults to off for untrusted clients).
pub fn consent_page(page: &ConsentPage<'_>) -> Response {
    let name = page.client_name.map_or_else(
        || "<dd>(the application gave no name)</dd>\n".to_owned(),
        |n| format!("<dd id=\"client-name\">{} <small>(stated by the application, not verified)</small></dd>\n", escape(n)),
    );
    let scopes = if page.scopes.is_empty() {
        "<dd>Basic access; no specific permissions requested</dd>\n".to_owned()
    } else {
        let items = page.scopes.iter().fold(String::new(), |mut items, s| {
            let _ = write!(items, "<li><code>{}</code></li>", escape(s));
            items
        });
        format!("<dd><ul id=\"scopes\">{items}</ul></dd>\n")
    };
    // DEV-11: a device confirmation says what is being connected and which code to compare;
    // there is no redirect to warn about.
    let device = page.device_user_code.map(|code| {
        format!(
            "<p class=\"alert\" id=\"device-notice\">You are connecting a <strong>device</strong> \
             to your account. Allow only if you started this yourself on a device you have with \
             you, and it shows the code <strong id=\"user-code\">{}</strong>.</p>\n",
            escape(code)
        )
    });
    let returns_to = if device.is_some() {
        String::new()
    } else {
        format!(
            "<dt>Returns to</dt><dd id=\"redirect-host\">{}</dd>\n",
            escape(page.redirect_host)
        )
    };
    let elsewhere = if let Some(device) = device {
        device
    } else if page.redirect_host.eq_ignore_ascii_case(page.client_host) {
        String::new()
    } else {
        format!(
            "<p class=\"alert\">After you decide you will be sent to <strong>{}</strong>, which is \
             not {}.</p>\n",
            escape(page.redirect_host),
            escape(page.client_host)
        )
    };
    let body = format!(
        "<p class=\"host\" id=\"client-host\">{host}</p>\n<p>wants access to your account \
         <strong>{user}</strong>.</p>\n{elsewhere}<dl>\n<dt>Application name</dt>\n{name}\
         <dt>Client ID</dt><dd><code id=\"client-id\">{client_id}</code></dd>\n\
         {returns_to}<dt>Permissions</dt>\n{scopes}</dl>\n\
         <form id=\"consent-form\" method=\"post\" action=\"{base}/consent\">\n{hidden}\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\n\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\n</form>\n",
        host = escape(page.client_host),
        user = escape(page.username),
        client_id = escape(page.client_id),
        base = escape(page.base),
        hidden = hidden_fields(page.request_id, page.csrf),
    );
    html(StatusCode::OK, "Allow access?", page.issuer, &body)
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escaping_neutralises_markup_and_both_quote_styles() {
        assert_eq!(
            escape("<a href='x' title=\"y\">&</a>"),
            "&lt;a href=&#39;x&#39; title=&quot;y&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
