//! A destination's own request headers. Receivers often authenticate webhooks with a
//! token in a header (`authorization: Bearer …`), so values under a sensitive name (a
//! fixed list, plus any name the owner lists in `sensitive_headers`) are sealed under the
//! master key before they are stored, shown only as a mask by the API and in recorded
//! attempts, and opened only where a request is built.

use serde_json::{Map, Value};

use crate::ValidationError;
use crate::sealed::{MasterKey, SealError, SealedText};

/// What a sensitive value is shown as. Sent back unchanged in a patch, it keeps the
/// stored value, so a destination read, edited and written back loses no token.
pub const MASK: &str = "********";

/// Names whose values are credentials whatever the owner says.
const ALWAYS_SENSITIVE: &[&str] = &[
    "authorization",
    "cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
];
const MAX_HEADERS: usize = 32;

/// Header names a destination may not set: Hookline owns them, or HTTP does.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "user-agent",
    "proxy-authorization",
];
const RESERVED_HEADER_PREFIXES: &[&str] = &["webhook-", "hookline-"];

/// A header's value as kept: in the clear, or sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderText {
    Plain(String),
    Sealed(SealedText),
}

/// The headers a destination adds to every request, by lower-case name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomHeaders {
    entries: Vec<(String, HeaderText)>,
    /// Names the owner marked sensitive, beyond `ALWAYS_SENSITIVE`.
    flagged: Vec<String>,
}

impl CustomHeaders {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn is_sensitive(&self, name: &str) -> bool {
        ALWAYS_SENSITIVE.contains(&name) || self.flagged.iter().any(|f| f == name)
    }

    /// Replaces the headers with the given `(name, value)` pairs (none: no headers); a
    /// value of `MASK` keeps the value already held under that name.
    pub fn set(
        &mut self,
        field: &str,
        headers: Option<Vec<(String, String)>>,
    ) -> Result<(), ValidationError> {
        let headers = headers.unwrap_or_default();
        if headers.len() > MAX_HEADERS {
            return Err(ValidationError::new(
                field,
                format!("may hold at most {MAX_HEADERS} headers"),
            ));
        }
        let entries = headers
            .into_iter()
            .map(|(name, text)| {
                let lower = check_header_name(field, &name)?;
                if text == MASK {
                    return self.held(&lower).cloned().map(|held| (lower, held)).ok_or_else(|| {
                        ValidationError::new(
                            field,
                            format!(
                                "'{name}' holds the mask {MASK} but no value is stored under that \
                                 name; send the real value"
                            ),
                        )
                    });
                }
                if http::HeaderValue::from_str(&text).is_err() {
                    return Err(ValidationError::new(
                        field,
                        format!("the value of '{name}' is not a valid header value"),
                    ));
                }
                Ok((lower, HeaderText::Plain(text)))
            })
            .collect::<Result<_, _>>()?;
        self.entries = entries;
        Ok(())
    }

    /// Sets the owner's own sensitive names (none: only the fixed list).
    pub fn set_flagged(
        &mut self,
        field: &str,
        names: Option<Vec<String>>,
    ) -> Result<(), ValidationError> {
        let names = names.unwrap_or_default();
        if names.len() > MAX_HEADERS {
            return Err(ValidationError::new(
                field,
                format!("must be an array of at most {MAX_HEADERS} header names"),
            ));
        }
        let mut flagged = names
            .iter()
            .map(|name| check_header_name(field, name))
            .collect::<Result<Vec<_>, _>>()?;
        flagged.sort();
        flagged.dedup();
        self.flagged = flagged;
        Ok(())
    }

    fn held(&self, name: &str) -> Option<&HeaderText> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Seals every sensitive value still in the clear, for destination `owner`.
    pub fn seal(&mut self, master: &MasterKey, owner: &str) {
        let sensitive: Vec<bool> = self
            .entries
            .iter()
            .map(|(n, _)| self.is_sensitive(n))
            .collect();
        for ((name, text), sensitive) in self.entries.iter_mut().zip(sensitive) {
            if let (HeaderText::Plain(plain), true) = (&*text, sensitive) {
                *text = HeaderText::Sealed(master.seal_header(plain, owner, name));
            }
        }
    }

    /// The headers as sent: sealed values opened.
    pub fn open(
        &self,
        master: &MasterKey,
        owner: &str,
    ) -> Result<Vec<(String, String)>, SealError> {
        self.entries
            .iter()
            .map(|(name, text)| {
                let value = match text {
                    HeaderText::Plain(plain) => plain.clone(),
                    HeaderText::Sealed(sealed) => master.open_header(sealed, owner, name)?,
                };
                Ok((name.clone(), value))
            })
            .collect()
    }

    /// Whether `name`'s value is hidden wherever headers are shown.
    fn is_masked(&self, name: &str, text: &HeaderText) -> bool {
        matches!(text, HeaderText::Sealed(_)) || self.is_sensitive(name)
    }

    /// The headers as the API shows them: sensitive values masked.
    pub fn shown(&self) -> Map<String, Value> {
        self.entries
            .iter()
            .map(|(name, text)| {
                let shown = match text {
                    HeaderText::Plain(plain) if !self.is_masked(name, text) => plain.clone(),
                    _ => MASK.to_owned(),
                };
                (name.clone(), Value::String(shown))
            })
            .collect()
    }

    /// The owner's sensitive names as the API shows them.
    /// The owner's own sensitive names, beyond the fixed list.
    pub fn flagged(&self) -> &[String] {
        &self.flagged
    }

    /// Masks the sensitive values in `sent`, these headers as `open` gave them: what an
    /// attempt record keeps.
    pub fn mask_sent(&self, sent: &mut [(String, String)]) {
        for ((name, value), (_, text)) in sent.iter_mut().zip(&self.entries) {
            if self.is_masked(name, text) {
                *value = MASK.to_owned();
            }
        }
    }

    /// The headers as the store keeps them: `{name: "value"}` in the clear,
    /// `{name: {"sealed": "…"}}` sealed.
    pub fn to_stored(&self) -> Value {
        let map: Map<String, Value> = self
            .entries
            .iter()
            .map(|(name, text)| {
                let stored = match text {
                    HeaderText::Plain(plain) => Value::String(plain.clone()),
                    HeaderText::Sealed(sealed) => serde_json::json!({ "sealed": sealed.as_str() }),
                };
                (name.clone(), stored)
            })
            .collect();
        Value::Object(map)
    }

    /// Takes back headers written by `to_stored`; `None` if they are not in its shape.
    pub fn restore(&mut self, stored: &Value) -> Option<()> {
        let Value::Object(map) = stored else {
            return stored.is_null().then(|| self.entries.clear());
        };
        self.entries = map
            .iter()
            .map(|(name, value)| {
                let text = match value {
                    Value::String(plain) => HeaderText::Plain(plain.clone()),
                    Value::Object(sealed) => HeaderText::Sealed(SealedText::from_stored(
                        sealed.get("sealed")?.as_str()?.to_owned(),
                    )),
                    _ => return None,
                };
                Some((name.clone(), text))
            })
            .collect::<Option<_>>()?;
        Some(())
    }
}

/// A header name a destination may set, lower-cased: valid, and not one Hookline or
/// HTTP owns.
pub(crate) fn check_header_name(field: &str, name: &str) -> Result<String, ValidationError> {
    let lower = name.to_ascii_lowercase();
    if http::HeaderName::from_bytes(lower.as_bytes()).is_err() {
        return Err(ValidationError::new(
            field,
            format!("'{name}' is not a valid header name"),
        ));
    }
    if RESERVED_HEADERS.contains(&lower.as_str())
        || RESERVED_HEADER_PREFIXES
            .iter()
            .any(|p| lower.starts_with(p))
    {
        return Err(ValidationError::new(
            field,
            format!("'{name}' is reserved and cannot be set"),
        ));
    }
    Ok(lower)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(value: Value) -> Option<Vec<(String, String)>> {
        value.as_object().map(|map| {
            map.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect()
        })
    }

    fn names(value: Value) -> Option<Vec<String>> {
        serde_json::from_value(value).unwrap()
    }

    fn headers(value: Value) -> CustomHeaders {
        let mut headers = CustomHeaders::default();
        headers.set("headers", pairs(value)).unwrap();
        headers
    }

    #[test]
    fn reserved_and_invalid_headers_are_refused() {
        let mut h = CustomHeaders::default();
        for name in [
            "Webhook-Id",
            "host",
            "Content-Length",
            "hookline-stream",
            "bad name",
        ] {
            let err = h.set("headers", pairs(json!({ name: "x" }))).unwrap_err();
            assert_eq!(err.field, "headers", "{name}");
        }
        assert!(h.set("headers", pairs(json!({"x": "a\nb"}))).is_err());
        h.set(
            "headers",
            pairs(json!({"X-Team": "core", "Authorization": "Bearer t"})),
        )
        .unwrap();
        assert_eq!(h.len(), 2);
        assert!(
            h.set_flagged("sensitive_headers", names(json!(["host"])))
                .is_err()
        );
    }

    #[test]
    fn sensitive_values_are_sealed_shown_masked_and_opened_for_sending() {
        let master = MasterKey::generate();
        let mut h =
            headers(json!({"Authorization": "Bearer t0k~", "X-Team": "core", "X-Sig": "s~1"}));
        h.set_flagged("sensitive_headers", names(json!(["X-Sig"])))
            .unwrap();
        h.seal(&master, "dst_1");
        // The values hold a `~`, which base64 never does: a sealed value cannot spell them.
        let stored = h.to_stored().to_string();
        assert!(
            !stored.contains("t0k~") && !stored.contains("s~1"),
            "{stored}"
        );
        assert!(stored.contains("core"));
        assert_eq!(
            Value::Object(h.shown()),
            json!({"authorization": MASK, "x-team": "core", "x-sig": MASK})
        );
        let mut sent = h.open(&master, "dst_1").unwrap();
        assert!(sent.contains(&("authorization".into(), "Bearer t0k~".into())));
        assert!(sent.contains(&("x-sig".into(), "s~1".into())));
        assert!(h.open(&master, "dst_2").is_err());
        h.mask_sent(&mut sent);
        assert!(sent.contains(&("authorization".into(), MASK.into())));
        assert!(sent.contains(&("x-team".into(), "core".into())));

        let mut restored = CustomHeaders::default();
        restored.restore(&h.to_stored()).unwrap();
        restored.flagged = h.flagged.clone();
        assert_eq!(restored, h);
        assert!(CustomHeaders::default().restore(&json!({"a": 1})).is_none());
    }

    #[test]
    fn the_mask_sent_back_keeps_the_stored_value_and_is_refused_where_there_is_none() {
        let master = MasterKey::generate();
        let mut h = headers(json!({"authorization": "Bearer t0k"}));
        h.seal(&master, "dst_1");
        h.set("headers", pairs(Value::Object(h.shown()))).unwrap();
        h.set(
            "headers",
            pairs(json!({"authorization": MASK, "x-new": "1"})),
        )
        .unwrap();
        let sent = h.open(&master, "dst_1").unwrap();
        assert!(sent.contains(&("authorization".into(), "Bearer t0k".into())));
        let err = h
            .set("headers", pairs(json!({"cookie": MASK})))
            .unwrap_err();
        assert!(
            err.message.contains("send the real value"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_value_in_the_clear_under_a_sensitive_name_is_still_masked() {
        let mut h = headers(json!({"cookie": "c=1"}));
        assert_eq!(Value::Object(h.shown()), json!({"cookie": MASK}));
        let mut sent = vec![("cookie".to_owned(), "c=1".to_owned())];
        h.mask_sent(&mut sent);
        assert_eq!(sent[0].1, MASK);
        h.set("headers", None).unwrap();
        assert!(h.is_empty());
    }
}
