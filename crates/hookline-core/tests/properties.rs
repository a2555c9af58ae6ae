//! Property tests of the parsers and rules that take input from callers: the URL and
//! address policy, the filter and type patterns, the retry policy, destination settings
//! and `Retry-After`. Each runs `PROPTEST_CASES` random cases (256 by default; the test
//! script raises it); a failing case is shrunk and its seed kept under the crate's
//! `proptest-regressions/` (commit it), and replayed first from then on.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hookline_core::destination::DestinationSettings;
use hookline_core::event::{Event, EventType, Level, StreamName};
use hookline_core::filter::{Filter, TypePattern};
use hookline_core::ids::{EventId, OrgId};
use hookline_core::retry::{
    AttemptResult, NextStep, RetryPolicy, RetrySchedule, parse_retry_after,
};
use hookline_core::url_policy::{DestinationUrl, UrlPolicy, forbidden_reason};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Any JSON value, a few levels deep, with keys and strings that filters use.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        "[a-z$.]{0,8}".prop_map(Value::String),
        prop::sample::select(vec![
            "$eq", "$in", "$gt", "$and", "$or", "$exists", "data.x"
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..5)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$and", "$or",
            "data.x", "data", "x", "type", "stream",
        ])
        .prop_map(str::to_owned),
        "[a-z$.]{0,6}",
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        (-5i32..5).prop_map(|n| json!(n)),
        "[ab]{0,2}".prop_map(Value::String),
        Just(Value::Null),
    ]
}

/// Addresses in ranges that must never be connected to.
fn forbidden_v4() -> impl Strategy<Value = Ipv4Addr> {
    (
        prop::sample::select(vec![
            [127, 0],
            [10, 0],
            [192, 168],
            [169, 254],
            [172, 16],
            [100, 64],
            [0, 0],
        ]),
        any::<[u8; 2]>(),
    )
        .prop_map(|(net, host)| Ipv4Addr::new(net[0], net[1], host[0], host[1]))
}

proptest! {
    #[test]
    fn url_parsing_never_panics_and_what_it_accepts_is_canonical(
        tail in "[a-zA-Z0-9.:/@%\\[\\]_~-]{0,40}",
        scheme in prop::sample::select(vec!["https://", "http://", "", "ftp://", "HTTPS://"]),
    ) {
        let text = format!("{scheme}{tail}");
        let policy = UrlPolicy::default();
        if let Ok(url) = DestinationUrl::parse("url", &text, &policy) {
            prop_assert!(url.as_str().starts_with("https://"), "{}", url.as_str());
            if let Some(ip) = url.host_ip() {
                prop_assert!(forbidden_reason(ip).is_none(), "{} accepted", url.as_str());
            }
            let again = DestinationUrl::parse("url", url.as_str(), &policy).unwrap();
            prop_assert_eq!(again.as_str(), url.as_str());
        }
    }

    #[test]
    fn forbidden_addresses_are_refused_in_every_spelling(ip in forbidden_v4()) {
        let policy = UrlPolicy::default();
        prop_assert!(forbidden_reason(IpAddr::V4(ip)).is_some());
        let mapped = IpAddr::V6(ip.to_ipv6_mapped());
        prop_assert!(forbidden_reason(mapped).is_some(), "{mapped}");
        for spelling in [
            format!("https://{ip}/"),
            format!("https://{}/", u32::from(ip)),
            format!("https://0x{:x}/", u32::from(ip)),
            format!("https://[::ffff:{ip}]/"),
            format!("https://user@{ip}:443/"),
        ] {
            prop_assert!(
                DestinationUrl::parse("url", &spelling, &policy).is_err(),
                "{spelling} accepted"
            );
        }
    }

    #[test]
    fn an_ipv4_address_in_ipv6_is_judged_as_itself(octets in any::<[u8; 4]>()) {
        let v4 = Ipv4Addr::from(octets);
        let v6: Ipv6Addr = v4.to_ipv6_mapped();
        prop_assert_eq!(
            forbidden_reason(IpAddr::V4(v4)).is_some(),
            forbidden_reason(IpAddr::V6(v6)).is_some()
        );
    }

    #[test]
    fn filters_parse_or_refuse_any_json_and_never_panic_matching(
        source in json_value(),
        envelope in json_value(),
    ) {
        if let Ok(filter) = Filter::parse("filter", &source) {
            filter.matches(&envelope);
        }
    }

    #[test]
    fn filter_operators_keep_their_algebra(wanted in scalar(), held in scalar()) {
        let envelope = json!({"data": {"x": held}});
        let matches = |source: Value| Filter::parse("filter", &source).unwrap().matches(&envelope);
        let eq = matches(json!({"data.x": {"$eq": wanted}}));
        prop_assert_eq!(matches(json!({"data.x": {"$ne": wanted}})), !eq);
        prop_assert_eq!(matches(json!({"data.x": {"$in": [wanted]}})), eq);
        prop_assert_eq!(matches(json!({"data.x": {"$nin": [wanted]}})), !eq);
        prop_assert_eq!(eq, wanted == held);
        let exists = json!({"data.x": {"$exists": true}});
        prop_assert_eq!(matches(json!({"$or": [{"data.x": {"$eq": wanted}}]})), eq);
        prop_assert_eq!(
            matches(json!({"$and": [{"data.x": {"$eq": wanted}}, exists]})),
            eq
        );
    }

    #[test]
    fn a_destination_sees_exactly_the_levels_up_to_its_own(
        threshold in prop::sample::select(vec!["user", "progress", "debug"]),
        level in prop::sample::select(vec!["user", "progress", "debug"]),
    ) {
        let rank = |l: &str| ["user", "progress", "debug"].iter().position(|x| *x == l);
        let mut fields = Map::new();
        fields.insert("url".into(), json!("https://example.com/h"));
        fields.insert("level".into(), json!(threshold));
        let settings = DestinationSettings::from_json(&fields, &UrlPolicy::default()).unwrap();
        let event = Event {
            id: EventId::generate(),
            org_id: OrgId::generate(),
            event_type: EventType::parse("type", "a.b").unwrap(),
            stream: StreamName::parse("stream", "s").unwrap(),
            seq: 1,
            level: Level::parse("level", level).unwrap(),
            timestamp: 0,
            data: json!({}),
            raw: None,
        };
        prop_assert_eq!(settings.wants(&event), rank(level) <= rank(threshold));
    }

    #[test]
    fn a_prefix_pattern_matches_exactly_the_types_under_it(
        prefix in "[a-z]{1,5}",
        rest in "[a-z.]{0,6}",
        other in "[a-z.]{1,8}",
    ) {
        let pattern = TypePattern::parse("types", &format!("{prefix}.*")).unwrap();
        let under = format!("{prefix}.{rest}");
        prop_assert!(pattern.matches(&under));
        prop_assert_eq!(pattern.matches(&other), other.starts_with(&format!("{prefix}.")));
        prop_assert!(!pattern.matches(&prefix), "the bare prefix is not under it");
        prop_assert_eq!(TypePattern::parse("types", &pattern.to_text()).unwrap(), pattern);
    }

    #[test]
    fn retries_follow_the_schedule_within_jitter_and_end_in_a_dead_letter(
        delays in prop::collection::vec(0i64..=86_400, 0..=20),
        attempt in 1u32..25,
        jitter in -1.0f64..=1.0,
        code in prop::sample::select(vec![408u16, 429, 500, 502, 503]),
        now in 0i64..4_000_000_000_000,
    ) {
        let policy = RetryPolicy {
            schedule: RetrySchedule::parse("retry_schedule_secs", &delays).unwrap(),
            retry_on_4xx: false,
        };
        let failed = AttemptResult::Status { code, retry_after_secs: None };
        match policy.decide(attempt, failed, jitter, now) {
            NextStep::RetryAt(at) => {
                let scheduled = delays[attempt as usize - 1] as f64 * 1000.0;
                let delay = (at - now) as f64;
                prop_assert!((delay - scheduled).abs() <= scheduled * 0.1 + 1.0, "{delay} vs {scheduled}");
            }
            NextStep::DeadLetter => prop_assert!(attempt as usize > delays.len()),
            other => prop_assert!(false, "{other:?} after a {code}"),
        }
        prop_assert_eq!(policy.decide(attempt, AttemptResult::Success, jitter, now), NextStep::Delivered);
    }

    #[test]
    fn retry_schedules_out_of_bounds_are_refused(delays in prop::collection::vec(any::<i64>(), 0..25)) {
        let valid = delays.len() <= 20 && delays.iter().all(|d| (0..=86_400).contains(d));
        prop_assert_eq!(RetrySchedule::parse("retry_schedule_secs", &delays).is_ok(), valid);
    }

    #[test]
    fn retry_after_never_panics_and_reads_seconds(text in "\\PC{0,40}", secs in any::<u64>(), now in 0i64..i64::MAX / 2) {
        parse_retry_after(&text, now);
        prop_assert_eq!(parse_retry_after(&format!(" {secs} "), now), Some(secs));
    }

    #[test]
    fn destination_settings_parse_any_fields_and_round_trip(
        fields in prop::collection::vec(
            (
                prop::sample::select(vec![
                    "name", "types", "filter", "level", "include_raw", "headers",
                    "sensitive_headers", "timeout_secs", "retry_schedule_secs", "retry_on_4xx",
                    "max_in_flight", "ordered", "rate_limit_per_sec", "tls_verify", "signature",
                    "enabled", "colour",
                ]),
                json_value(),
            ),
            0..6,
        ),
    ) {
        let mut map: Map<String, Value> =
            fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        map.insert("url".into(), json!("https://example.com/hook"));
        let policy = UrlPolicy::default();
        if let Ok(settings) = DestinationSettings::from_json(&map, &policy) {
            // Sensitive header values are shown masked, so only settings without any
            // come back whole from what they show.
            let shown = settings.to_json();
            let masked = shown["headers"].as_object().unwrap().values().any(|v| v == "********");
            if !masked {
                prop_assert_eq!(DestinationSettings::from_json(&shown, &policy).unwrap(), settings);
            }
        }
    }
}
