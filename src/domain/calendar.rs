//! The official working-day calendar: public holidays and the weekend days declared working
//! days (调休), one year per table in `workflows/calendars/*.toml`, as the State Council notice
//! gives them. The year after the last one on file (the notice comes out late in the year, while
//! December cases already reach into it) is computed from the statutory holidays and marked
//! provisional; any later year is an error, never a guess.

use std::{collections::BTreeMap, collections::BTreeSet, path::Path};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("no official calendar on file for {year}: add workflows/calendars/ for that year")]
    YearNotOnFile { year: i32 },
    #[error("calendar file {file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Malformed { file: String, line: Option<usize>, message: String },
}

/// The years a calendar file may give: the lunar and solar-term tables of `tyme4rs` cover
/// 1–9999 (beyond, it panics), and the year after the last on file is computed from them.
pub const YEARS: std::ops::RangeInclusive<i32> = 1901..=9998;

/// The 1-based line of the first line holding `needle` at or after line `from`.
fn line_of(text: &str, needle: &str, from: usize) -> Option<usize> {
    text.lines().enumerate().skip(from.saturating_sub(1)).find(|(_, l)| l.contains(needle)).map(|(i, _)| i + 1)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    years: BTreeMap<String, YearFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    /// Source of the year's rules (the notice's name), for the person who checks it.
    #[allow(dead_code)]
    source: Option<String>,
    off_days: Vec<NaiveDate>,
    makeup_workdays: Vec<NaiveDate>,
}

#[derive(Debug, Clone, Default)]
struct YearRules {
    off: BTreeSet<NaiveDate>,
    makeup: BTreeSet<NaiveDate>,
    /// Computed from the statutory holidays, not read from the official notice.
    provisional: bool,
}

/// The statutory public holidays of `year` (全国年节及纪念日放假办法, as revised in 2024):
/// New Year's Day; Spring Festival eve to the third day; Qingming; 1–2 May; Dragon Boat;
/// Mid-Autumn; 1–3 October. A holiday falling on a weekend is made up on the next weekday
/// that is not already off. Lunar dates and the Qingming solar term come from `tyme4rs`.
pub fn statutory_holidays(year: i32) -> BTreeSet<NaiveDate> {
    use tyme4rs::tyme::{lunar::LunarDay, solar::SolarTerm};
    let ymd = |m: u32, d: u32| NaiveDate::from_ymd_opt(year, m, d);
    let solar = |s: tyme4rs::tyme::solar::SolarDay| {
        NaiveDate::from_ymd_opt(s.get_year() as i32, s.get_month() as u32, s.get_day() as u32)
    };
    let lunar = |m: isize, d: usize| solar(LunarDay::from_ymd(year as isize, m, d).get_solar_day());
    let new_year = lunar(1, 1);
    let mut days: Vec<NaiveDate> = [
        ymd(1, 1),
        new_year.map(|d| d - Duration::days(1)),
        new_year,
        new_year.map(|d| d + Duration::days(1)),
        new_year.map(|d| d + Duration::days(2)),
        solar(SolarTerm::from_name(year as isize, "清明").get_solar_day()),
        ymd(5, 1),
        ymd(5, 2),
        lunar(5, 5),
        lunar(8, 15),
        ymd(10, 1),
        ymd(10, 2),
        ymd(10, 3),
    ]
    .into_iter()
    .flatten()
    .collect();
    days.sort();
    let mut off: BTreeSet<NaiveDate> = days.iter().copied().collect();
    for d in days.iter().filter(|d| is_weekend(**d)) {
        let mut make_up = *d + Duration::days(1);
        while is_weekend(make_up) || off.contains(&make_up) {
            make_up += Duration::days(1);
        }
        off.insert(make_up);
    }
    off.retain(|d| d.year() == year);
    off
}

/// Working-day arithmetic over the years on file.
#[derive(Debug, Clone, Default)]
pub struct WorkingCalendar {
    years: BTreeMap<i32, YearRules>,
}

impl WorkingCalendar {
    /// Loads every `*.toml` in `dir`; a year given twice is an error.
    pub fn load_dir(dir: &Path) -> Result<Self, CalendarError> {
        let files = crate::domain::shipped::Source::Folder(dir.to_path_buf())
            .files("", "toml")
            .map_err(|u| CalendarError::Malformed { file: u.place, line: None, message: u.reason })?;
        Self::from_files(&files)
    }

    /// The calendar of these files' years, in order.
    pub fn from_files(files: &[crate::domain::shipped::File]) -> Result<Self, CalendarError> {
        let mut cal = Self::default();
        for f in files {
            cal.add_toml(&f.name, &f.text)?;
        }
        Ok(cal)
    }

    /// Parses one calendar file's text and adds its years. A refusal names the line: the
    /// parser's, else the year's table or the date's own line in it.
    pub fn add_toml(&mut self, file: &str, text: &str) -> Result<(), CalendarError> {
        let malformed = |line: Option<usize>, message: String| CalendarError::Malformed { file: file.to_string(), line, message };
        let parsed: CalendarFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start].lines().count().max(1));
            malformed(line, e.message().to_string())
        })?;
        for (key, year) in parsed.years {
            let table = line_of(text, &format!("years.{key}"), 1).or_else(|| line_of(text, &key, 1));
            let at_date = |d: &NaiveDate| line_of(text, &d.to_string(), table.unwrap_or(1)).or(table);
            let y: i32 = key.parse().map_err(|_| malformed(table, format!("year key {key:?} is not a year")))?;
            if !YEARS.contains(&y) {
                return Err(malformed(table, format!("year {y} is outside {}–{}", YEARS.start(), YEARS.end())));
            }
            if self.years.contains_key(&y) {
                return Err(malformed(table, format!("year {y} is given twice")));
            }
            for d in year.off_days.iter().chain(&year.makeup_workdays) {
                if d.year() != y {
                    return Err(malformed(at_date(d), format!("{d} is listed under year {y}")));
                }
            }
            if let Some(d) = year.makeup_workdays.iter().find(|d| !is_weekend(**d)) {
                return Err(malformed(at_date(d), format!("makeup workday {d} is not a weekend day")));
            }
            if let Some(d) = year.off_days.iter().find(|d| year.makeup_workdays.contains(d)) {
                return Err(malformed(at_date(d), format!("{d} is both a holiday and a makeup workday")));
            }
            self.years.insert(
                y,
                YearRules {
                    off: year.off_days.into_iter().collect(),
                    makeup: year.makeup_workdays.into_iter().collect(),
                    provisional: false,
                },
            );
        }
        Ok(())
    }

    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.keys().copied()
    }

    /// Adds the year after the last one on file, computed from the statutory holidays and
    /// marked provisional.
    pub fn with_provisional_next_year(mut self) -> Self {
        // `add_toml` keeps years inside `YEARS`, so the next one is inside tyme4rs's tables.
        if let Some(last) = self.years.keys().next_back().copied().filter(|y| YEARS.contains(y)) {
            let year = last + 1;
            self.years.insert(year, YearRules { off: statutory_holidays(year), makeup: BTreeSet::new(), provisional: true });
        }
        self
    }

    pub fn is_provisional_year(&self, year: i32) -> bool {
        self.years.get(&year).is_some_and(|r| r.provisional)
    }

    /// Whether counting between `a` and `b` (either order) relies on a provisional year.
    pub fn is_provisional_between(&self, a: NaiveDate, b: NaiveDate) -> bool {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        (lo.year()..=hi.year()).any(|y| self.is_provisional_year(y))
    }

    pub fn is_working_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        let rules = self.years.get(&date.year()).ok_or(CalendarError::YearNotOnFile { year: date.year() })?;
        Ok(if rules.off.contains(&date) {
            false
        } else if rules.makeup.contains(&date) {
            true
        } else {
            !is_weekend(date)
        })
    }

    /// The date `n` working days after `date` (before it, for negative `n`); `date` itself is
    /// never counted, so `add_working_days(d, -1)` is the working day before `d`.
    pub fn add_working_days(&self, date: NaiveDate, n: i64) -> Result<NaiveDate, CalendarError> {
        let step = if n < 0 { -1 } else { 1 };
        let mut d = date;
        let mut left = n.abs();
        while left > 0 {
            d += Duration::days(step);
            if self.is_working_day(d)? {
                left -= 1;
            }
        }
        Ok(d)
    }

    /// The first working day on or after `date`.
    pub fn next_working_day_from(&self, date: NaiveDate) -> Result<NaiveDate, CalendarError> {
        let mut d = date;
        while !self.is_working_day(d)? {
            d += Duration::days(1);
        }
        Ok(d)
    }

    /// The end of a period of `n` calendar days starting on `start`, by the Civil Code
    /// (arts. 201–203): the start day is not counted, and a last day that is a holiday moves
    /// to the next working day.
    pub fn add_calendar_days(&self, start: NaiveDate, n: i64) -> Result<NaiveDate, CalendarError> {
        let end = start + Duration::days(n);
        if n > 0 {
            self.next_working_day_from(end)
        } else {
            Ok(end)
        }
    }

    /// Working days from `today` to `day`: ahead positive, 0 on the day, passed negative.
    pub fn working_days_until(&self, today: NaiveDate, day: NaiveDate) -> Result<i64, CalendarError> {
        if day >= today {
            self.working_days_between(today, day)
        } else {
            Ok(-self.working_days_between(day, today)?)
        }
    }

    /// Working days after `from` up to and including `to` (0 when `to <= from`).
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> Result<i64, CalendarError> {
        let mut count = 0;
        let mut d = from;
        while d < to {
            d += Duration::days(1);
            if self.is_working_day(d)? {
                count += 1;
            }
        }
        Ok(count)
    }
}

/// The calendar a running server counts on: the shipped (or configured) files with the years
/// imported into the database (`pledgeflow calendar import`), replaced whole under every reader
/// at once when an import is seen, without a restart.
#[derive(Debug, Clone, Default)]
pub struct SharedCalendar(std::sync::Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    shipped: Vec<crate::domain::shipped::File>,
    current: std::sync::RwLock<std::sync::Arc<WorkingCalendar>>,
    /// The newest import the current calendar holds (milliseconds; 0: none).
    stamp: std::sync::atomic::AtomicI64,
}

impl SharedCalendar {
    /// The calendar of `shipped` files, the imported ones added as they come.
    pub fn new(shipped: Vec<crate::domain::shipped::File>) -> Result<Self, CalendarError> {
        let calendar = WorkingCalendar::from_files(&shipped)?.with_provisional_next_year();
        Ok(Self(std::sync::Arc::new(Shared { shipped, current: std::sync::RwLock::new(std::sync::Arc::new(calendar)), stamp: Default::default() })))
    }

    /// The calendar in force now (a count started on it finishes on it).
    pub fn get(&self) -> std::sync::Arc<WorkingCalendar> {
        self.0.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The calendar these imported files would make with the shipped ones: a year given twice,
    /// or a malformed file, is refused.
    pub fn with_imported(&self, imported: &[crate::domain::shipped::File]) -> Result<WorkingCalendar, CalendarError> {
        let all: Vec<crate::domain::shipped::File> = self.0.shipped.iter().chain(imported).cloned().collect();
        Ok(WorkingCalendar::from_files(&all)?.with_provisional_next_year())
    }

    pub fn stamp(&self) -> i64 {
        self.0.stamp.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Puts `calendar` in force, as of the import stamped `stamp`.
    pub fn replace(&self, calendar: WorkingCalendar, stamp: i64) {
        *self.0.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::new(calendar);
        self.0.stamp.store(stamp, std::sync::atomic::Ordering::Release);
    }
}

impl From<WorkingCalendar> for SharedCalendar {
    fn from(calendar: WorkingCalendar) -> Self {
        Self(std::sync::Arc::new(Shared { shipped: Vec::new(), current: std::sync::RwLock::new(std::sync::Arc::new(calendar)), stamp: Default::default() }))
    }
}

/// Whether next year's official notice is missing late in the year (from 1 October): the
/// operator should import it before deadlines start counting over it.
pub fn next_year_missing(calendar: &WorkingCalendar, today: NaiveDate) -> Option<i32> {
    let next = today.year() + 1;
    (today.month() >= 10 && (calendar.is_provisional_year(next) || !calendar.years().any(|y| y == next))).then_some(next)
}

/// The instant a local date and time of the office stands for (the earlier, where a clock
/// change makes it ambiguous); `None` for a time that does not exist locally.
pub fn local_instant(day: NaiveDate, time: chrono::NaiveTime, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    use chrono::TimeZone;
    tz.from_local_datetime(&day.and_time(time)).earliest().map(|t| t.with_timezone(&Utc))
}

/// `2026年11月27日（星期五）17:30` in `tz`.
pub fn local_text(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    let l = t.with_timezone(&tz);
    let day = WEEKDAYS[l.weekday().num_days_from_monday() as usize];
    format!("{}年{}月{}日（星期{day}）{}", l.year(), l.month(), l.day(), l.format("%H:%M"))
}

const WEEKDAYS: [&str; 7] = ["一", "二", "三", "四", "五", "六", "日"];

/// The day `t` falls on as a reminder names it, seen from `now`: 今天, 明天, else its date and
/// weekday (a reminder sent on a Saturday for a Tuesday says that Tuesday, not "tomorrow").
pub fn day_from(t: DateTime<Utc>, now: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    let (day, today) = (t.with_timezone(&tz).date_naive(), now.with_timezone(&tz).date_naive());
    match (day - today).num_days() {
        0 => "今天".into(),
        1 => "明天".into(),
        _ => format!("{}月{}日（星期{}）", day.month(), day.day(), WEEKDAYS[day.weekday().num_days_from_monday() as usize]),
    }
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> WorkingCalendar {
        WorkingCalendar::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/calendars")).unwrap()
    }
    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn shipped_years_have_the_official_working_day_counts() {
        let cal = shipped();
        for (year, expected) in [(2024, 251), (2025, 248), (2026, 248)] {
            let first = NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
            let n = first
                .iter_days()
                .take_while(|d| d.year() == year)
                .filter(|d| cal.is_working_day(*d).unwrap())
                .count();
            assert_eq!(n, expected, "{year}");
        }
    }

    #[test]
    fn working_days_skip_holidays_and_honour_makeup_saturdays() {
        let cal = shipped();
        // 2026-09-30 (Wed) + 1 working day: 1–7 October are off, the 8th is a Thursday.
        assert_eq!(cal.add_working_days(d("2026-09-30"), 1).unwrap(), d("2026-10-08"));
        // 2026-10-10 is a Saturday declared a working day.
        assert_eq!(cal.add_working_days(d("2026-10-09"), 1).unwrap(), d("2026-10-10"));
        assert_eq!(cal.add_working_days(d("2026-10-12"), -1).unwrap(), d("2026-10-10"));
        assert_eq!(cal.add_working_days(d("2026-11-23"), 3).unwrap(), d("2026-11-26"));
    }

    #[test]
    fn calendar_day_periods_follow_the_civil_code() {
        let cal = shipped();
        // 10 days from 2026-09-21 end on 2026-10-01, a holiday: moved to 2026-10-08.
        assert_eq!(cal.add_calendar_days(d("2026-09-21"), 10).unwrap(), d("2026-10-08"));
        assert_eq!(cal.add_calendar_days(d("2026-11-02"), 10).unwrap(), d("2026-11-12"));
    }

    #[test]
    fn a_year_not_on_file_is_an_error_not_a_guess() {
        let cal = shipped();
        assert_eq!(
            cal.add_working_days(d("2026-12-30"), 5),
            Err(CalendarError::YearNotOnFile { year: 2027 })
        );
        let cal = cal.with_provisional_next_year();
        assert_eq!(cal.add_working_days(d("2027-12-30"), 5), Err(CalendarError::YearNotOnFile { year: 2028 }));
    }

    #[test]
    fn statutory_holidays_match_the_official_notices_where_no_days_were_swapped() {
        // The official 2026 notice, less its bridging days (swapped against makeup Saturdays
        // and Sundays, which the statute does not decide): every statutory day is in it.
        let official = shipped();
        for day in statutory_holidays(2026) {
            assert!(!official.is_working_day(day).unwrap(), "{day} is off in the 2026 notice");
        }
        let y2027 = statutory_holidays(2027);
        // Spring Festival 2027 falls on Saturday 6 February: eve (Fri 5th) to the third day
        // (Mon 8th), with the weekend days made up on Tuesday 9th and Wednesday 10th.
        for day in ["2027-02-05", "2027-02-06", "2027-02-07", "2027-02-08", "2027-02-09", "2027-02-10"] {
            assert!(y2027.contains(&d(day)), "{day}");
        }
        assert!(y2027.contains(&d("2027-04-05")), "Qingming");
        assert!(y2027.contains(&d("2027-06-09")), "Dragon Boat, lunar 5/5");
        assert!(y2027.contains(&d("2027-09-15")), "Mid-Autumn, lunar 8/15");
        assert!(!y2027.contains(&d("2027-02-11")));

        let cal = shipped().with_provisional_next_year();
        assert!(cal.is_provisional_year(2027) && !cal.is_provisional_year(2026));
        assert!(cal.is_provisional_between(d("2026-12-28"), d("2027-01-05")));
        assert!(!cal.is_provisional_between(d("2026-12-01"), d("2026-12-28")));
        // 31 December 2026 (Thu) + 2 working days: 1 January 2027 is off, the 4th is a Monday.
        assert_eq!(cal.add_working_days(d("2026-12-31"), 2).unwrap(), d("2027-01-05"));
    }

    #[test]
    fn local_time_is_written_the_chinese_way_in_the_office_zone() {
        use chrono::TimeZone;
        let t = Utc.with_ymd_and_hms(2026, 11, 27, 9, 30, 0).unwrap();
        assert_eq!(local_text(t, chrono_tz::Asia::Shanghai), "2026年11月27日（星期五）17:30");
    }

    #[test]
    fn malformed_calendars_are_refused() {
        let mut cal = WorkingCalendar::default();
        let err = cal
            .add_toml("x.toml", "[years.2030]\noff_days = [\"2030-01-01\"]\nmakeup_workdays = [\"2030-01-02\"]")
            .unwrap_err();
        assert!(err.to_string().contains("not a weekend day"), "{err}");
        let err = cal.add_toml("x.toml", "[years.2030]\noff_days = [\"2031-01-01\"]\nmakeup_workdays = []").unwrap_err();
        assert!(err.to_string().contains("listed under year 2030"), "{err}");
    }

    /// Found by the parser fuzzing (issue #8): a year past 9998 made the provisional year's
    /// lunar dates panic inside tyme4rs, and `i32::MAX` overflowed; refusals had no line.
    #[test]
    fn years_outside_the_lunar_tables_are_refused_with_their_line() {
        for year in ["9999", "2147483647", "-5", "0", "1900"] {
            let mut cal = WorkingCalendar::default();
            let err = cal.add_toml("x.toml", &format!("# note\n[years.{year}]\noff_days = []\nmakeup_workdays = []")).unwrap_err();
            assert_eq!(err.to_string(), format!("calendar file x.toml:2: year {year} is outside 1901–9998"));
        }
        let mut cal = WorkingCalendar::default();
        cal.add_toml("x.toml", "[years.9998]\noff_days = []\nmakeup_workdays = []").unwrap();
        assert!(cal.with_provisional_next_year().is_provisional_year(9999));
        let err = WorkingCalendar::default()
            .add_toml("x.toml", "[years.2030]\noff_days = [\n  \"2030-01-01\",\n  \"2031-01-01\",\n]\nmakeup_workdays = []")
            .unwrap_err();
        assert_eq!(err.to_string(), "calendar file x.toml:4: 2031-01-01 is listed under year 2030");
        let err = WorkingCalendar::default().add_toml("x.toml", "[years.2030]\noff_days = 3\n").unwrap_err();
        assert!(err.to_string().starts_with("calendar file x.toml:2: "), "{err}");
        for empty in ["", "# nothing\n"] {
            let err = WorkingCalendar::default().add_toml("x.toml", empty).unwrap_err();
            assert!(err.to_string().starts_with("calendar file x.toml:1: "), "{err}");
        }
    }
}
