//! A bulk replay: a destination's deliveries that ended a given way (dead letters by
//! default), sent again at a set rate, by a job that is stored, so it survives a restart
//! and runs on one node at a time. A backfill is the same kind of job over events: a new
//! destination is sent the earlier events it asked for. What a job does and how far it
//! has got are kept here; the store keeps the job and the server's replay task moves it
//! on.

use serde_json::Value;

use crate::ValidationError;
use crate::clock::Millis;
use crate::delivery::{Delivery, DeliveryState};
use crate::filter::TypePattern;
use crate::ids::{DestinationId, EventId, OrgId, ReplayId};

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

/// The earlier events a new destination is sent: its stream's from `from_seq` on, or
/// (org-wide) those since `since`; only those published before `before` (the destination's
/// creation), since later ones reach it by their publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Backfill {
    pub from_seq: Option<i64>,
    pub since: Option<Millis>,
    pub before: EventId,
}

/// What a job does.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayWork {
    /// Sends a destination's deliveries again.
    Redeliver(ReplayFilter),
    /// Sends a new destination earlier events.
    Backfill(Backfill),
}

impl ReplayWork {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Redeliver(_) => "replay",
            Self::Backfill(_) => "backfill",
        }
    }

    /// As the store keeps it (beside `kind`).
    pub fn to_json(&self) -> Value {
        match self {
            Self::Redeliver(filter) => filter.to_json(),
            Self::Backfill(b) => serde_json::json!({
                "from_seq": b.from_seq,
                "since": b.since,
                "before": b.before.as_str(),
            }),
        }
    }

    pub fn from_json(kind: &str, value: &Value) -> Option<Self> {
        match kind {
            "replay" => ReplayFilter::from_json(value).ok().map(Self::Redeliver),
            "backfill" => Some(Self::Backfill(Backfill {
                from_seq: value["from_seq"].as_i64(),
                since: value["since"].as_i64(),
                before: EventId::parse(value["before"].as_str()?)?,
            })),
            _ => None,
        }
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

/// A replay (or backfill) job and how far it has got.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    pub id: ReplayId,
    pub org_id: OrgId,
    pub destination_id: DestinationId,
    pub work: ReplayWork,
    pub rate_per_sec: u32,
    /// Deliveries that matched when the replay was made (0 for a backfill: not counted).
    pub total: i64,
    /// Sent (again): queued for a fresh attempt.
    pub done: i64,
    /// Could not be sent again (their destination was deleted meanwhile).
    pub failed: i64,
    pub state: ReplayState,
    /// Where the job goes on from: the last delivery looked at (a replay goes on from
    /// the next older one), or the last event (a backfill goes on from the next).
    pub cursor: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Replay {
    /// A job that starts running now, from the beginning.
    pub fn start(
        org_id: OrgId,
        destination_id: DestinationId,
        work: ReplayWork,
        rate_per_sec: u32,
        total: i64,
        now: Millis,
    ) -> Self {
        Self {
            id: ReplayId::generate(),
            org_id,
            destination_id,
            work,
            rate_per_sec,
            total,
            done: 0,
            failed: 0,
            state: ReplayState::Running,
            cursor: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// What one step of a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayStep {
    pub cursor: Option<String>,
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
        let work = ReplayWork::Redeliver(filter);
        assert_eq!(
            ReplayWork::from_json(work.kind(), &work.to_json()),
            Some(work)
        );
        let backfill = ReplayWork::Backfill(Backfill {
            from_seq: Some(3),
            since: None,
            before: EventId::lowest_at(7),
        });
        assert_eq!(
            ReplayWork::from_json(backfill.kind(), &backfill.to_json()),
            Some(backfill)
        );
        assert_eq!(check_rate(None).unwrap(), DEFAULT_RATE_PER_SEC);
        assert_eq!(check_rate(Some(0)).unwrap_err().field, "rate_per_sec");
        assert_eq!(check_rate(Some(1_000)).unwrap(), 1_000);
    }
}
