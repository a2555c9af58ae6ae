//! The org's own signing secret, which signs one-shot `webhook_url` deliveries.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The org's signing secret as shown: a hint only.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgSecretOut {
    pub secret_hint: String,
    /// Until when the previous secret signs too, during a rotation's grace period.
    #[schema(format = DateTime)]
    pub previous_secret_expires_at: Option<String>,
}

/// `POST /v1/org/signing-secret/rotate`; every field is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgRotateIn {
    /// How long the old secret keeps signing too, 0–604800 (default 86400).
    #[schema(minimum = 0, maximum = 604800)]
    pub grace_secs: Option<i64>,
}

/// The org's new secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgSecretRotated {
    #[serde(flatten)]
    pub shown: OrgSecretOut,
    pub secret: String,
}
