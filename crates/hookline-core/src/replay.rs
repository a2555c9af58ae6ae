//! A bulk replay: a destination's deliveries that ended a given way (dead letters by
//! default), sent again at a set rate, by a job that is stored, so it survives a restart
//! and runs on one node at a time. What is replayed and how far the job has got are
//! kept here; the store keeps the job and the server's replay task moves it on.

use serde_json::Value;

use crate::ValidationError;
use crate::clock::Millis;
use crate::delivery::{Delivery, DeliveryState};
use crate::filter::TypePattern;
use crate::ids::{DeliveryId, DestinationId, OrgId, ReplayId};

pub const DEFAULT_RATE_PER_SEC: u32 = 10;
pub const MAX_RATE_PER_SEC: u32 = 1_000;

/// Which of a destination's deliveries a replay sends again.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayFilter {
    pub status: DeliveryState,
    /// Created at or after.
    pub since: Option<Millis>,
    /// Created before.
    pub until: Option<Millis>,
    /// Event type patterns; `None`: every type.
    pub event_types: Option<Vec<TypePattern>>,
}

impl ReplayFilter {
    /// Checks what a request asks for: a status a delivery can end in, and at least one
    /// type if types are given.
    pub fn new(
        status: DeliveryState,
        since: Option<Millis>,
        until: Option<Millis>,
        event_types: Option<&[String]>,
    ) -> Result<Self, ValidationError> {
        if matches!(status, DeliveryState::Pending | DeliveryState::Delivering) {
            return Err(ValidationError::new(
                "status",
                "must be a status a delivery has ended in (or failed): its next attempt is \
                 already on its way",
            ));
        }
        if let (Some(since), Some(until)) = (since, until)
            && since >= until
        {
            return Err(ValidationError::new("until", "must be after since"));
        }
        let event_types = event_types
            .map(|types| {
                if types.is_empty() {
                    return Err(ValidationError::new(
                        "event_types",
                        "must list at least one type; leave it out for every type",
                    ));
                }
                types
                    .iter()
                    .map(|t| TypePattern::parse("event_types", t))
                    .collect()
            })
            .transpose()?;
        Ok(Self {
            status,
            since,
            until,
            event_types,
        })
    }

    /// Whether the event type of a delivery the store listed by status and time is one
    /// the replay wants.
    pub fn wants(&self, delivery: &Delivery) -> bool {
        self.event_types.as_ref().is_none_or(|types| {
            types
                .iter()
                .any(|t| t.matches(delivery.event_type.as_str()))
        })
    }

    /// As the store keeps it.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "status": self.status.as_str(),
            "since": self.since,
            "until": self.until,
            "event_types": self.event_types.as_ref().map(|t| t.iter().map(TypePattern::to_text).collect::<Vec<_>>()),
        })
    }

    pub fn from_json(value: &Value) -> Result<Self, ValidationError> {
        let status = value["status"]
            .as_str()
            .ok_or_else(|| ValidationError::new("status", "is missing"))?;
        let types: Option<Vec<String>> = value["event_types"].as_array().map(|types| {
            types
                .iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        });
        Self::new(
            DeliveryState::parse("status", status)?,
            value["since"].as_i64(),
            value["until"].as_i64(),
            types.as_deref(),
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayState {
    Running,
    Done,
    Canceled,
}

impl ReplayState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::Canceled => "canceled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "running" => Some(Self::Running),
            "done" => Some(Self::Done),
            "canceled" => Some(Self::Canceled),
            _ => None,
        }
    }
}

/// A replay job and how far it has got.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    pub id: ReplayId,
    pub org_id: OrgId,
    pub destination_id: DestinationId,
    pub filter: ReplayFilter,
    pub rate_per_sec: u32,
    /// Deliveries that matched when the replay was made.
    pub total: i64,
    /// Sent again (queued for a fresh attempt).
    pub done: i64,
    /// Could not be sent again (their destination was deleted meanwhile).
    pub failed: i64,
    pub state: ReplayState,
    /// The last delivery looked at: the job goes on from the next older one.
    pub cursor: Option<DeliveryId>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// What one step of a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayStep {
    pub cursor: Option<DeliveryId>,
    pub done: i64,
    pub failed: i64,
    /// Nothing older is left to look at.
    pub finished: bool,
}

pub fn check_rate(rate: Option<i64>) -> Result<u32, ValidationError> {
    match rate {
        None => Ok(DEFAULT_RATE_PER_SEC),
        Some(r) if (1..=i64::from(MAX_RATE_PER_SEC)).contains(&r) => Ok(r as u32),
        Some(_) => Err(ValidationError::new(
            "rate_per_sec",
            format!("must be 1–{MAX_RATE_PER_SEC}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_refuse_what_cannot_be_replayed_and_survive_storage() {
        let err = ReplayFilter::new(DeliveryState::Pending, None, None, None).unwrap_err();
        assert_eq!(err.field, "status");
        let err = ReplayFilter::new(DeliveryState::DeadLetter, Some(5), Some(5), None).unwrap_err();
        assert_eq!(err.field, "until");
        let err = ReplayFilter::new(DeliveryState::DeadLetter, None, None, Some(&[])).unwrap_err();
        assert_eq!(err.field, "event_types");
        let filter = ReplayFilter::new(
            DeliveryState::Failed,
            Some(1),
            Some(9),
            Some(&["run.*".to_owned(), "turn.completed".to_owned()]),
        )
        .unwrap();
        assert_eq!(ReplayFilter::from_json(&filter.to_json()).unwrap(), filter);
        assert_eq!(check_rate(None).unwrap(), DEFAULT_RATE_PER_SEC);
        assert_eq!(check_rate(Some(0)).unwrap_err().field, "rate_per_sec");
        assert_eq!(check_rate(Some(1_000)).unwrap(), 1_000);
    }
}
