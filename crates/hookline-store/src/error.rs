//! What can go wrong in a store, in terms the API can map to an answer.

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The request conflicts with the current state (e.g. redelivering to a deleted destination).
    #[error("{0}")]
    Conflict(String),
    /// An org already holds as many of something as its limits allow.
    #[error("{0}")]
    LimitReached(String),
    /// Too much work is queued; the caller should retry shortly.
    #[error("the store is busy")]
    Busy,
    /// The database could not be reached or failed; the caller may retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored row does not parse: a bug or a hand-edited database.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// An org has as many destinations as `max_destinations_per_org` allows.
    pub fn destination_limit(max: u32) -> Self {
        Self::LimitReached(format!(
            "this org already has {max} destinations, the most allowed \
             (max_destinations_per_org); delete one first"
        ))
    }
}

#[cfg(feature = "sqlite")]
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Unavailable(e.to_string())
    }
}

#[cfg(feature = "postgres")]
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Unavailable(e.to_string())
    }
}
