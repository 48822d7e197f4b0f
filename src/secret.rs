//! Secrets Waymark is given — the SMTP relay's password, carrier accounts' API keys and OAuth
//! client secrets, the tokens carriers issue for them — kept so that no `Debug` output (a log
//! line, a panic, a test failure) can show them: each is a [`secrecy::SecretString`], shown as
//! `[redacted]`, and read only through an explicit `expose` where it is sent.
//!
//! They are not `Serialize` either: nothing Waymark writes out carries a secret, except the store,
//! which asks for the values by name ([`Credentials::expose_json`]).

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;

/// What a secret looks like in `Debug` output.
const REDACTED: &str = "[redacted]";

/// One secret text: a password, an API key, an access token.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Secret(SecretString::from(text))
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Secret(SecretString::from(text))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Compares the secrets themselves, so configurations and accounts stay comparable in tests.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

/// Read as text; a number or `true`/`false` as its text too, since a TOML file or an
/// environment variable may give an account number or a PIN unquoted. The value never appears
/// in an error.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

impl Visitor<'_> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("text, a number or true/false")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret::from(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret::from(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Secret, E> {
        Ok(Secret::from(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Secret, E> {
        Ok(Secret::from(v.to_string()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Secret, E> {
        Ok(Secret::from(v.to_string()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Secret, E> {
        Ok(Secret::from(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Secret, E> {
        Ok(Secret::from(v.to_string()))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Secret, E> {
        Ok(Secret::from(v.to_string()))
    }
}

/// A carrier account's credentials by name (`api_key`, `client_id`, `client_secret`, ...): the
/// names are shown (`waymark accounts list`, `Debug`), the values never.
///
/// Built from a JSON object in code and tests (`Credentials::from(json!({"api_key": "…"}))`),
/// read from configuration and the store as a map of text values.
#[derive(Clone, Default, PartialEq)]
pub struct Credentials(BTreeMap<String, Secret>);

impl Credentials {
    /// The value of the credential `name`, for the adapter that sends it.
    pub fn expose(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(Secret::expose)
    }

    /// Set the credential `name`.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Secret>) {
        self.0.insert(name.into(), value.into());
    }

    /// The names of the credentials, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every credential in the clear as a JSON object of text values: what the store keeps.
    pub fn expose_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.0
                .iter()
                .map(|(name, value)| (name.clone(), value.expose().into()))
                .collect(),
        )
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

/// A JSON object's text, number and boolean members, each as its text. Anything else (`null`,
/// `{}` where an object was expected, nested values) is left out: no adapter reads it.
impl From<serde_json::Value> for Credentials {
    fn from(value: serde_json::Value) -> Self {
        let serde_json::Value::Object(members) = value else {
            return Credentials::default();
        };
        let mut credentials = Credentials::default();
        for (name, value) in members {
            match value {
                serde_json::Value::String(text) => credentials.insert(name, text),
                serde_json::Value::Number(n) => credentials.insert(name, n.to_string()),
                serde_json::Value::Bool(b) => credentials.insert(name, b.to_string()),
                _ => {}
            }
        }
        credentials
    }
}

impl<N: Into<String>, V: Into<Secret>> FromIterator<(N, V)> for Credentials {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> Self {
        let mut credentials = Credentials::default();
        for (name, value) in pairs {
            credentials.insert(name, value);
        }
        credentials
    }
}

/// A map of text values (numbers and `true`/`false` read as their text); a `null` member is
/// left out, and any other value is refused, naming the credential but not its value.
impl<'de> Deserialize<'de> for Credentials {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CredentialsVisitor)
    }
}

struct CredentialsVisitor;

impl<'de> Visitor<'de> for CredentialsVisitor {
    type Value = Credentials;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("credentials by name")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Credentials, E> {
        Ok(Credentials::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Credentials, A::Error> {
        let mut credentials = Credentials::default();
        while let Some(name) = map.next_key::<String>()? {
            let value: Option<Secret> = map.next_value().map_err(|_| {
                de::Error::custom(format!(
                    "credential `{name}`: must be text, a number or true/false"
                ))
            })?;
            if let Some(value) = value {
                credentials.0.insert(name, value);
            }
        }
        Ok(credentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_names_credentials_but_never_shows_them() {
        let credentials = Credentials::from(
            serde_json::json!({"client_id": "id-4711", "client_secret": "s3cr3t"}),
        );
        let shown = format!("{credentials:?} {credentials:#?}");
        assert!(
            shown.contains("client_id") && shown.contains("client_secret"),
            "{shown}"
        );
        assert!(
            !shown.contains("id-4711") && !shown.contains("s3cr3t"),
            "{shown}"
        );
        assert!(shown.contains("[redacted]"), "{shown}");
        assert_eq!(format!("{:?}", Secret::from("hunter2")), "[redacted]");
    }

    #[test]
    fn values_are_read_by_name_and_kept_in_the_clear_for_the_store() {
        let credentials = Credentials::from(serde_json::json!({
            "api_key": "key-1", "account_number": 1234567, "sandbox": true, "nested": {"a": 1},
        }));
        assert_eq!(credentials.expose("api_key"), Some("key-1"));
        assert_eq!(credentials.expose("account_number"), Some("1234567"));
        assert_eq!(credentials.expose("sandbox"), Some("true"));
        assert_eq!(credentials.expose("nested"), None);
        assert_eq!(
            credentials.names().collect::<Vec<_>>(),
            ["account_number", "api_key", "sandbox"]
        );
        let stored = credentials.expose_json().to_string();
        let read: Credentials = serde_json::from_str(&stored).expect("readable");
        assert_eq!(read, credentials);
        assert_eq!(
            Credentials::from(serde_json::Value::Null),
            Credentials::default()
        );
    }

    #[test]
    fn a_credential_that_is_not_text_is_refused_without_showing_it() {
        let err = serde_json::from_str::<Credentials>(r#"{"api_key": ["s3cr3t"]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("credential `api_key`"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
        let read: Credentials =
            serde_json::from_str(r#"{"api_key": "k", "unset": null}"#).expect("readable");
        assert_eq!(read.names().collect::<Vec<_>>(), ["api_key"]);
    }
}
