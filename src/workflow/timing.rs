//! When a timer fires: an anchor (state entry or a named deadline), an offset in hours,
//! calendar days or working days, and an optional local time of day.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::domain::calendar::{CalendarError, WorkingCalendar};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    Entry,
    Deadline(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    Hours(i64),
    CalendarDays(i64),
    WorkingDays(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerSpec {
    pub name: String,
    pub fire: String,
    pub anchor: Anchor,
    pub offset: Option<Offset>,
    pub time_of_day: Option<NaiveTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimingError {
    #[error("the instance has no deadline {0:?}, which a timer of this state needs")]
    MissingDeadline(String),
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    #[error("local time {0} does not exist in the office's zone")]
    NoSuchLocalTime(String),
}

pub fn parse_anchor(s: Option<&str>) -> Result<Anchor, String> {
    match s {
        None | Some("entry") => Ok(Anchor::Entry),
        Some(s) => match s.strip_prefix("deadline:") {
            Some(name) if !name.is_empty() => Ok(Anchor::Deadline(name.to_string())),
            _ => Err(format!("at = {s:?}: expected \"entry\" or \"deadline:NAME\"")),
        },
    }
}

pub fn parse_offset(s: &str) -> Result<Offset, String> {
    let bad = || format!("offset = {s:?}: expected e.g. \"3 working days\", \"-1 working day\", \"48 hours\", \"10 calendar days\"");
    let s = s.trim();
    let (num, unit) = s.split_once(char::is_whitespace).ok_or_else(bad)?;
    let n: i64 = num.trim_start_matches('+').parse().map_err(|_| bad())?;
    if n.abs() > 3650 {
        return Err(format!("offset = {s:?}: more than ten years"));
    }
    match unit.split_whitespace().collect::<Vec<_>>().join(" ").as_str() {
        "hour" | "hours" => Ok(Offset::Hours(n)),
        "calendar day" | "calendar days" => Ok(Offset::CalendarDays(n)),
        "working day" | "working days" => Ok(Offset::WorkingDays(n)),
        _ => Err(bad()),
    }
}

pub fn parse_time_of_day(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s, "%H:%M").map_err(|_| format!("time = {s:?}: expected HH:MM"))
}

impl TimerSpec {
    /// Whether this timer's due time, counted from its anchor, relies on a provisional year
    /// of the calendar (and will be recomputed once the official notice is on file).
    pub fn is_provisional(
        &self,
        entered: DateTime<Utc>,
        deadline: impl Fn(&str) -> Option<DateTime<Utc>>,
        due: DateTime<Utc>,
        calendar: &WorkingCalendar,
        tz: Tz,
    ) -> bool {
        let counted = matches!(self.offset, Some(Offset::CalendarDays(_)) | Some(Offset::WorkingDays(_)));
        let anchor = match &self.anchor {
            Anchor::Entry => Some(entered),
            Anchor::Deadline(name) => deadline(name),
        };
        match anchor {
            Some(a) if counted => calendar.is_provisional_between(a.with_timezone(&tz).date_naive(), due.with_timezone(&tz).date_naive()),
            _ => false,
        }
    }

    /// The instant this timer is due for an instance entering its state at `entered`.
    pub fn due_at(
        &self,
        entered: DateTime<Utc>,
        deadline: impl Fn(&str) -> Option<DateTime<Utc>>,
        calendar: &WorkingCalendar,
        tz: Tz,
    ) -> Result<DateTime<Utc>, TimingError> {
        let anchor = match &self.anchor {
            Anchor::Entry => entered,
            Anchor::Deadline(name) => deadline(name).ok_or_else(|| TimingError::MissingDeadline(name.clone()))?,
        };
        let local = anchor.with_timezone(&tz);
        let date = local.date_naive();
        let day = match self.offset {
            None => None,
            Some(Offset::Hours(h)) => return Ok(anchor + Duration::hours(h)),
            Some(Offset::CalendarDays(n)) => Some(calendar.add_calendar_days(date, n)?),
            Some(Offset::WorkingDays(n)) => Some(calendar.add_working_days(date, n)?),
        };
        match (day, self.time_of_day) {
            (None, None) => Ok(anchor),
            (day, time) => {
                let (day, time) = (day.unwrap_or(date), time.unwrap_or(local.time()));
                crate::domain::calendar::local_instant(day, time, tz).ok_or_else(|| TimingError::NoSuchLocalTime(format!("{day} {time}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn offsets_parse_in_the_three_units_and_refuse_the_rest() {
        assert_eq!(parse_offset("-1 working day"), Ok(Offset::WorkingDays(-1)));
        assert_eq!(parse_offset("3 working days"), Ok(Offset::WorkingDays(3)));
        assert_eq!(parse_offset("48 hours"), Ok(Offset::Hours(48)));
        assert_eq!(parse_offset("+10 calendar days"), Ok(Offset::CalendarDays(10)));
        assert!(parse_offset("3 days").is_err());
        assert!(parse_offset("three working days").is_err());
        assert!(parse_offset("").is_err());
    }

    #[test]
    fn a_reminder_is_due_at_nine_on_the_working_day_before_the_deadline() {
        let cal = WorkingCalendar::load_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/calendars"),
        )
        .unwrap();
        let tz = chrono_tz::Asia::Shanghai;
        // Deadline Monday 2026-10-12 17:30 local; Saturday 2026-10-10 is a makeup workday.
        let deadline = tz.with_ymd_and_hms(2026, 10, 12, 17, 30, 0).unwrap().with_timezone(&Utc);
        let spec = TimerSpec {
            name: "remind".into(),
            fire: "remind".into(),
            anchor: Anchor::Deadline("materials_due".into()),
            offset: Some(Offset::WorkingDays(-1)),
            time_of_day: Some(NaiveTime::from_hms_opt(9, 0, 0).unwrap()),
        };
        let due = spec.due_at(Utc::now(), |_| Some(deadline), &cal, tz).unwrap();
        assert_eq!(due, tz.with_ymd_and_hms(2026, 10, 10, 9, 0, 0).unwrap().with_timezone(&Utc));
        let missing = spec.due_at(Utc::now(), |_| None, &cal, tz).unwrap_err();
        assert_eq!(missing, TimingError::MissingDeadline("materials_due".into()));
    }
}
