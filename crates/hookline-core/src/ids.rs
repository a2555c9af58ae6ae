//! Prefixed, time-ordered identifiers (`evt_01J…`). Each kind is its own type so an
//! event id can never be passed where a destination id is expected, and a string from
//! a URL becomes an id only if it has the right prefix and a valid ULID.

use std::fmt;
use std::sync::Mutex;

/// One process-wide monotonic generator: plain `Ulid::new()` orders ids only to the
/// millisecond, and lists and cursors need ids made later to sort later.
static GENERATOR: Mutex<ulid::Generator> = Mutex::new(ulid::Generator::new());

fn next_ulid() -> ulid::Ulid {
    let mut generator = GENERATOR.lock().unwrap_or_else(|p| p.into_inner());
    // Fails only after 2^80 ids within one millisecond.
    generator.generate().unwrap_or_else(|_| ulid::Ulid::new())
}

macro_rules! prefixed_id {
    ($name:ident, $prefix:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, next_ulid()))
            }

            /// Accepts only `<prefix>_<ULID>`; anything else is not an id of this kind.
            pub fn parse(text: &str) -> Option<Self> {
                let rest = text.strip_prefix($prefix)?.strip_prefix('_')?;
                ulid::Ulid::from_string(rest).ok()?;
                Some(Self(text.to_owned()))
            }

            /// The lowest id of this kind made at `ms` (milliseconds since the epoch):
            /// every id made earlier sorts below it, every one made then or later not.
            pub fn lowest_at(ms: i64) -> Self {
                let ulid = ulid::Ulid::from_parts(ms.max(0) as u64, 0);
                Self(format!("{}_{}", $prefix, ulid))
            }

            /// When it was made (its ULID's time, milliseconds since the epoch); None for
            /// text that is not an id of this kind.
            pub fn made_at(text: &str) -> Option<i64> {
                let rest = text.strip_prefix($prefix)?.strip_prefix('_')?;
                Some(ulid::Ulid::from_string(rest).ok()?.timestamp_ms() as i64)
            }

            /// For values read back from the store, which only ever holds generated ids.
            pub fn from_trusted(text: String) -> Self {
                Self(text)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

prefixed_id!(OrgId, "org");
prefixed_id!(ApiKeyId, "key");
prefixed_id!(EventId, "evt");
prefixed_id!(DestinationId, "dst");
prefixed_id!(DeliveryId, "dlv");
prefixed_id!(AttemptId, "att");
prefixed_id!(ReplayId, "rpl");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_carry_their_prefix_and_parse_back() {
        let id = EventId::generate();
        assert!(id.as_str().starts_with("evt_"));
        assert_eq!(EventId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(DestinationId::parse(id.as_str()), None);
    }

    #[test]
    fn malformed_ids_are_refused() {
        assert_eq!(EventId::parse("evt_"), None);
        assert_eq!(EventId::parse("evt_not-a-ulid"), None);
        assert_eq!(EventId::parse("evt01J0000000000000000000000"), None);
    }

    #[test]
    fn the_lowest_id_of_a_time_bounds_the_ids_made_before_it() {
        let before = EventId::generate();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let bound = EventId::lowest_at(now + 1);
        assert!(before < bound);
        assert!(EventId::lowest_at(now - 60_000) < before);
        assert_eq!(EventId::parse(bound.as_str()), Some(bound.clone()));
        assert_eq!(EventId::made_at(bound.as_str()), Some(now + 1));
        assert_eq!(EventId::made_at("dlv_01J0000000000000000000000"), None);
    }

    #[test]
    fn ids_generated_later_sort_later_even_within_a_millisecond() {
        let ids: Vec<DeliveryId> = (0..1000).map(|_| DeliveryId::generate()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}
