//! API key bodies. A key is shown once, when it is created.

use hookline_store::ApiKeyRecord;
use serde::Serialize;
use utoipa::ToSchema;

use super::time;

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyOut {
    #[schema(example = "key_01JD3V6Q2W8T7Y4N5K9H0B1C2D")]
    pub id: String,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&ApiKeyRecord> for ApiKeyOut {
    fn from(k: &ApiKeyRecord) -> Self {
        Self {
            id: k.id.to_string(),
            prefix: k.display_prefix.clone(),
            created_at: time(k.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyCreated {
    #[serde(flatten)]
    pub shown: ApiKeyOut,
    /// Keep it: it is not shown again.
    pub key: String,
}
