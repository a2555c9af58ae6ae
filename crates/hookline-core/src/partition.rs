//! Day partitions of what is kept per event (its deliveries and their attempts, on
//! PostgreSQL): which days get a partition ahead of time, what each is called and where
//! it begins and ends, when a whole day may be dropped, and how far behind the cut rows
//! are removed one by one where dropping days does the bulk of retention.

use crate::clock::{Millis, rfc3339};

pub const DAY_MS: Millis = 86_400_000;

/// Days after today that get their partitions ahead: a store whose nodes could not
/// prepare them for this long still takes writes until the last one.
pub const DAYS_AHEAD: i64 = 7;

/// One UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    /// `YYYYMMDD`, for naming its partitions.
    pub name: String,
    pub start: Millis,
    pub end: Millis,
}

impl Day {
    /// The UTC day `at` falls in.
    pub fn of(at: Millis) -> Self {
        let start = at.div_euclid(DAY_MS) * DAY_MS;
        Self {
            name: rfc3339(start)[..10].replace('-', ""),
            start,
            end: start + DAY_MS,
        }
    }

    /// Today (as of `now`) and the `DAYS_AHEAD` days after it.
    pub fn ahead(now: Millis) -> impl Iterator<Item = Day> {
        (0..=DAYS_AHEAD).map(move |n| Day::of(now + n * DAY_MS))
    }
}

/// Whether an org whose retention cuts at `cut` keeps rows of events made before
/// `until` (the end of a partition): it does when it keeps everything, or when its cut
/// falls before that end. Such an org's rows hold the whole partition back.
pub fn keeps_rows_before(cut: Option<Millis>, until: Millis) -> bool {
    cut.is_none_or(|cut| cut < until)
}

/// Where rows are removed one by one when retention cuts at `cut` (at `now`): up to a
/// day behind it (never more than the window itself), so that the days dropped whole
/// at the cut are not first emptied row by row. What one-by-one removal then finds is
/// what held its day back (a delivery not yet finished, an org that keeps more), and
/// windows shorter than a day.
pub fn row_cut(now: Millis, cut: Millis) -> Millis {
    cut - (now - cut).clamp(0, DAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-06T13:20:00Z.
    const NOW: Millis = 1_796_515_200_000 + 13 * 3_600_000 + 20 * 60_000;

    #[test]
    fn a_day_is_named_by_its_utc_date_and_spans_midnight_to_midnight() {
        let day = Day::of(NOW);
        assert_eq!(day.name, "20261206");
        assert_eq!(day.start, 1_796_515_200_000);
        assert_eq!(day.end - day.start, DAY_MS);
        assert_eq!(Day::of(day.start), day);
        assert_eq!(Day::of(day.end).name, "20261207");
        assert_eq!(Day::of(day.end - 1), day);
    }

    #[test]
    fn today_and_the_days_ahead_follow_one_another() {
        let days: Vec<Day> = Day::ahead(NOW).collect();
        assert_eq!(days.len() as i64, DAYS_AHEAD + 1);
        assert_eq!(days[0], Day::of(NOW));
        assert!(days.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!(days.last().unwrap().name, "20261213");
    }

    #[test]
    fn an_org_holds_a_day_back_while_its_cut_falls_before_the_day_ends() {
        let until = Day::of(NOW).end;
        assert!(keeps_rows_before(None, until), "keeps everything");
        assert!(keeps_rows_before(Some(until - 1), until));
        assert!(!keeps_rows_before(Some(until), until));
    }

    #[test]
    fn rows_are_removed_a_day_behind_a_long_window_and_a_window_behind_a_short_one() {
        let month = 30 * DAY_MS;
        assert_eq!(row_cut(NOW, NOW - month), NOW - month - DAY_MS);
        assert_eq!(row_cut(NOW, NOW - 2_000), NOW - 4_000);
        assert_eq!(row_cut(NOW, NOW), NOW);
    }
}
