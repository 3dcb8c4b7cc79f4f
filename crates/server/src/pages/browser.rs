//! What the pages keep in a browser, and what they check of its requests.
//!
//! - **Session**: the refresh token itself, in an `HttpOnly` cookie. It is an
//!   opaque reference to a session the pool keeps (a random string hashed in
//!   SQLite, or Cognito's encrypted token), so signing out revokes it
//!   server-side and a copied cookie dies with it. Every signed-in request
//!   turns it into a fresh access token, so a revoked session ends at once.
//! - **Forms**: a random secret per browser in a second `HttpOnly` cookie;
//!   each form carries the service's MAC of it. Another site can neither read
//!   the cookie nor compute the MAC, so its forms are refused. `Origin` is
//!   only checked when it names another site: with `Referrer-Policy:
//!   no-referrer` Chromium sends `Origin: null` on our own forms.
//!
//! Both cookies are `SameSite=Lax`, `Path=/`, and `Secure` with the `__Host-`
//! prefix when the public URL is https.

use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, SameSite};
use domain::{REFRESH_TOKEN_LIFETIME, SecretString};

/// How the pages name and mark their cookies, from the public URL.
#[derive(Debug, Clone)]
pub struct CookiePolicy {
    secure: bool,
    /// `scheme://host[:port]` of the public URL, as browsers send it in `Origin`.
    origin: String,
}

const SESSION: &str = "ig_session";
const FORMS: &str = "ig_forms";

impl CookiePolicy {
    pub fn for_public_url(public_url: &str) -> Self {
        let secure = public_url.starts_with("https://");
        let after_scheme = public_url.split_once("://").map_or(public_url, |(_, rest)| rest);
        let host = after_scheme.split('/').next().unwrap_or_default();
        let scheme = if secure { "https" } else { "http" };
        Self { secure, origin: format!("{scheme}://{host}").to_ascii_lowercase() }
    }

    fn name(&self, base: &'static str) -> String {
        if self.secure { format!("__Host-{base}") } else { base.to_owned() }
    }

    fn cookie(&self, base: &'static str, value: String) -> Cookie<'static> {
        Cookie::build((self.name(base), value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .build()
    }

    fn read(&self, headers: &HeaderMap, base: &'static str) -> Option<String> {
        let name = self.name(base);
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|cookie| cookie.name() == name)
            .map(|cookie| cookie.value().to_owned())
            .filter(|value| !value.is_empty())
    }

    /// The session's refresh token, if the browser has one.
    pub fn session(&self, headers: &HeaderMap) -> Option<SecretString> {
        self.read(headers, SESSION).map(SecretString::new)
    }

    /// Starts a session: the cookie lives as long as the refresh token.
    pub fn start_session(&self, refresh_token: &SecretString) -> HeaderValue {
        let mut cookie = self.cookie(SESSION, refresh_token.expose().to_owned());
        cookie.set_max_age(cookie::time::Duration::seconds(REFRESH_TOKEN_LIFETIME.whole_seconds()));
        header_value(&cookie)
    }

    /// Tells the browser to forget its session.
    pub fn end_session(&self) -> HeaderValue {
        let mut cookie = self.cookie(SESSION, String::new());
        cookie.make_removal();
        header_value(&cookie)
    }

    /// The browser's form secret, if it has one.
    pub fn form_secret(&self, headers: &HeaderMap) -> Option<String> {
        self.read(headers, FORMS)
    }

    /// A new form secret for a browser that has none (kept until the browser closes).
    pub fn new_form_secret(&self) -> (String, HeaderValue) {
        let secret = random_secret();
        let cookie = self.cookie(FORMS, secret.clone());
        (secret, header_value(&cookie))
    }

    /// Whether a form post may come from our own pages, judged by the headers
    /// browsers set themselves. `Origin: null` (sent under `no-referrer`) and
    /// no `Origin` at all pass; the form token decides those.
    pub fn same_site_request(&self, headers: &HeaderMap) -> bool {
        let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        if fetch_site == Some("cross-site") {
            return false;
        }
        match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            None | Some("null") => true,
            Some(origin) => origin.eq_ignore_ascii_case(&self.origin),
        }
    }
}

fn header_value(cookie: &Cookie<'_>) -> HeaderValue {
    // Cookie values here are base64url or the pool's token alphabet, never control characters.
    HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn random_secret() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn https_cookies_are_host_prefixed_secure_http_only_and_lax() {
        let policy = CookiePolicy::for_public_url("https://Auth.Example.com/base");
        let set = policy.start_session(&SecretString::new("tok".into()));
        let set = set.to_str().unwrap();
        assert!(set.starts_with("__Host-ig_session=tok;"), "{set}");
        for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=2592000"] {
            assert!(set.contains(attribute), "{set} lacks {attribute}");
        }
        assert!(!set.contains("Domain"), "{set}");
        let jar = headers(&[("cookie", "other=1; __Host-ig_session=tok")]);
        assert_eq!(policy.session(&jar).unwrap().expose(), "tok");
        // The unprefixed name is not ours under https: a subdomain could have set it.
        assert!(policy.session(&headers(&[("cookie", "ig_session=tok")])).is_none());
    }

    #[test]
    fn http_cookies_have_no_prefix_and_are_not_secure() {
        let policy = CookiePolicy::for_public_url("http://127.0.0.1:8080");
        let (secret, set) = policy.new_form_secret();
        let set = set.to_str().unwrap();
        assert!(set.starts_with(&format!("ig_forms={secret};")), "{set}");
        assert!(set.contains("HttpOnly") && !set.contains("Secure"), "{set}");
        let removal = policy.end_session();
        assert!(removal.to_str().unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn only_posts_naming_another_site_are_refused_by_their_headers() {
        let policy = CookiePolicy::for_public_url("http://127.0.0.1:8080/");
        assert!(policy.same_site_request(&headers(&[])));
        assert!(policy.same_site_request(&headers(&[("origin", "null"), ("sec-fetch-site", "same-origin")])));
        assert!(policy.same_site_request(&headers(&[("origin", "http://127.0.0.1:8080")])));
        assert!(!policy.same_site_request(&headers(&[("origin", "http://evil.test")])));
        assert!(!policy.same_site_request(&headers(&[("origin", "null"), ("sec-fetch-site", "cross-site")])));
        assert!(!policy.same_site_request(&headers(&[("origin", "http://127.0.0.1:9090")])));
    }
}
