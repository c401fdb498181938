//! Hostile input to the two file parsers (issue #8): workflow definitions and calendar files,
//! arbitrary and mutated from the shipped ones. Neither may panic; every refusal of a
//! definition is a `Problem` naming the file and a line inside it; generated valid ones are
//! accepted and read back as written. `PROPTEST_CASES=5000 cargo test --test it parsers` for
//! the long form.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use pledgeflow::domain::calendar::{CalendarError, WorkingCalendar};
use pledgeflow::workflow::{parse_definition, Problem};
use proptest::prelude::*;
use proptest::test_runner::Config;

use crate::helpers::repo;

/// Modest in `cargo test`; `PROPTEST_CASES` raises it.
fn config() -> Config {
    let mut c = Config::default();
    if std::env::var("PROPTEST_CASES").is_err() {
        c.cases = 96;
    }
    c.failure_persistence = None;
    c
}

fn shipped_definitions() -> Vec<(String, String)> {
    let mut out: Vec<_> = std::fs::read_dir(repo().join("workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    out.sort();
    out
}

fn shipped_calendar() -> String {
    std::fs::read_to_string(repo().join("workflows/calendars/cn-official.toml")).unwrap()
}

/// What every refusal must look like: the file it was given, a line inside the text (1-based;
/// one past the end for "the file ends too early"), a place and a message.
fn assert_located(file: &str, text: &str, problems: &[Problem]) {
    assert!(!problems.is_empty(), "a refusal names at least one problem");
    let last = text.lines().count().max(1) + 1;
    for p in problems {
        assert_eq!(p.file, file, "{p}");
        assert!(!p.place.is_empty() && !p.message.is_empty(), "{p:?}");
        let line = p.line.unwrap_or_else(|| panic!("no line for {p} in\n{text}"));
        assert!((1..=last).contains(&line), "line {line} outside 1..={last}: {p}");
    }
}

/// A calendar refusal names the file and a line inside it.
fn assert_calendar_located(file: &str, text: &str, e: &CalendarError) {
    let last = text.lines().count().max(1) + 1;
    match e {
        CalendarError::Malformed { file: f, line: Some(line), .. } => {
            assert_eq!(f, file, "{e}");
            assert!((1..=last).contains(line), "line {line} outside 1..={last}: {e}");
        }
        _ => panic!("not located: {e} in\n{text}"),
    }
}

/// Hostile fragments spliced into definition files.
const FRAGMENTS: &[&str] = &[
    "\0", "\"", "'", "[", "]", "[[transitions]]", "[states.", "[states.x]\n", "= ", "\n", "\\u0000", "\\", "#", "𠀀",
    "\u{202e}", "../../etc/passwd", "' OR '1'='1", "<script>", "{{ x }}", "9999999999999999999999", "-1", "inf", "nan",
    "1979-05-27T07:32:00Z", "true", "\"\"\"", "{ }", "[[states]]", "from = []", "to = \"nowhere\"", "internal = true",
    "offset = \"99999999 working days\"", "offset = \"-3650 working days\"", "time = \"25:61\"", "at = \"deadline:\"",
    "roles = [\"system\", \"root\"]", "guards = [\"payload_has:\"]", "effects = [\"spawn:../x\"]",
    "effects = [\"deadline:from_payload:x\"]", "version = -9223372036854775808", "version = 9223372036854775807",
];

#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Insert(usize, usize),
    ReplaceLine(usize, usize),
    Truncate(usize),
    FlipByte(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let n = FRAGMENTS.len();
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<usize>(), 0..n).prop_map(|(a, f)| Mutation::Insert(a, f)),
        (any::<usize>(), 0..n).prop_map(|(a, f)| Mutation::ReplaceLine(a, f)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::FlipByte(a, b)),
    ]
}

/// Applies mutations line-wise (bytes for `FlipByte`, kept only if still UTF-8, as a file read
/// by `read_to_string` would be).
fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for m in mutations {
        let len = lines.len().max(1);
        match *m {
            Mutation::DeleteLine(i) if !lines.is_empty() => {
                lines.remove(i % len);
            }
            Mutation::DuplicateLine(i) if !lines.is_empty() => {
                let l = lines[i % len].clone();
                lines.insert(i % len, l);
            }
            Mutation::SwapLines(a, b) if !lines.is_empty() => lines.swap(a % len, b % len),
            Mutation::Insert(i, f) => {
                let at = i % (lines.len() + 1);
                let line = lines.get(at).cloned().unwrap_or_default();
                let cut = (i / 7) % (line.len() + 1);
                let cut = (0..=cut).rev().find(|c| line.is_char_boundary(*c)).unwrap_or(0);
                let new = format!("{}{}{}", &line[..cut], FRAGMENTS[f], &line[cut..]);
                if at < lines.len() { lines[at] = new } else { lines.push(new) }
            }
            Mutation::ReplaceLine(i, f) if !lines.is_empty() => lines[i % len] = FRAGMENTS[f].to_string(),
            Mutation::Truncate(i) => {
                let all = lines.join("\n");
                let cut = i % (all.len() + 1);
                let cut = (0..=cut).rev().find(|c| all.is_char_boundary(*c)).unwrap_or(0);
                lines = all[..cut].lines().map(str::to_string).collect();
            }
            Mutation::FlipByte(i, b) => {
                let mut bytes = lines.join("\n").into_bytes();
                if !bytes.is_empty() {
                    let at = i % bytes.len();
                    bytes[at] = b;
                }
                if let Ok(s) = String::from_utf8(bytes) {
                    lines = s.lines().map(str::to_string).collect();
                }
            }
            _ => {}
        }
    }
    lines.join("\n")
}

/// A valid definition, built from parts: a chain of states from the initial one to a final
/// one, with side exits to further final states and internal timer transitions.
#[derive(Debug, Clone)]
struct Generated {
    name: String,
    version: i64,
    title: Option<String>,
    chain: Vec<String>,
    finals: Vec<String>,
    /// (from index in chain, final index): a way out to a final state on its own event.
    exits: Vec<(usize, usize)>,
    /// Timers on chain states (not the last one, which leaves to a final state): offset and unit.
    timers: Vec<(usize, i64, &'static str, Option<(u32, u32)>)>,
}

fn ident() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,12}"
}

fn generated() -> impl Strategy<Value = Generated> {
    (
        ident(),
        1i64..=i64::MAX,
        proptest::option::of("[^\"\\\\\\x00-\\x1f\\x7f]{0,30}"),
        proptest::collection::btree_set(ident(), 2..8),
        proptest::collection::vec((any::<usize>(), any::<usize>()), 0..5),
        proptest::collection::vec((any::<usize>(), -3650i64..=3650, prop_oneof![Just("hours"), Just("calendar days"), Just("working days")], proptest::option::of((0u32..24, 0u32..60))), 0..5),
        1usize..4,
    )
        .prop_map(|(name, version, title, names, exits, timers, finals_n)| {
            let names: Vec<String> = names.into_iter().collect();
            let finals_n = finals_n.min(names.len() - 1);
            let (chain, finals) = names.split_at(names.len() - finals_n);
            let chain = chain.to_vec();
            let finals = finals.to_vec();
            // Every final state past the first gets an exit, or it would be unreachable.
            let mut exits: BTreeSet<(usize, usize)> = exits.into_iter().map(|(a, b)| (a % chain.len(), b % finals.len())).collect();
            exits.extend((1..finals.len()).map(|f| (f % chain.len(), f)));
            let exits = exits.into_iter().collect();
            let timers = timers.into_iter().map(|(s, n, u, t)| (s % chain.len(), n, u, if u == "hours" { None } else { t })).collect();
            Generated { name, version, title, chain, finals, exits, timers }
        })
}

impl Generated {
    fn toml(&self) -> String {
        let mut events = vec!["next".to_string()];
        events.extend(self.exits.iter().map(|(s, f)| format!("exit_{s}_{f}")));
        events.extend((0..self.timers.len()).map(|i| format!("tick_{i}")));
        let mut t = format!("name = \"{}\"\nversion = {}\n", self.name, self.version);
        if let Some(title) = &self.title {
            t += &format!("title = \"{title}\"\n");
        }
        t += &format!("initial = \"{}\"\nevents = {:?}\n\n", self.chain[0], events);
        for (i, s) in self.chain.iter().enumerate() {
            t += &format!("[states.{s}]\n");
            let mine: Vec<String> = self
                .timers
                .iter()
                .enumerate()
                .filter(|(_, tm)| tm.0 == i)
                .map(|(k, (_, n, unit, time))| {
                    let time = time.map(|(h, m)| format!(", time = \"{h:02}:{m:02}\"")).unwrap_or_default();
                    format!("{{ fire = \"tick_{k}\", offset = \"{n} {unit}\"{time} }}")
                })
                .collect();
            if !mine.is_empty() {
                t += &format!("timers = [{}]\n", mine.join(", "));
            }
        }
        for f in &self.finals {
            t += &format!("[states.{f}]\nfinal = true\n");
        }
        let mut chain_to: Vec<&String> = self.chain.iter().skip(1).collect();
        chain_to.push(&self.finals[0]);
        for (i, to) in chain_to.iter().enumerate() {
            t += &format!("\n[[transitions]]\nfrom = \"{}\"\non = \"next\"\nto = \"{to}\"\nroles = [\"window\"]\n", self.chain[i]);
        }
        for (s, f) in &self.exits {
            t += &format!("\n[[transitions]]\nfrom = \"{}\"\non = \"exit_{s}_{f}\"\nto = \"{}\"\n", self.chain[*s], self.finals[*f]);
        }
        for (k, (s, ..)) in self.timers.iter().enumerate() {
            t += &format!("\n[[transitions]]\nfrom = \"{}\"\non = \"tick_{k}\"\ninternal = true\neffects = [\"email:applicant:reminder\"]\n", self.chain[*s]);
        }
        t
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any text at all: problems or a definition, never a panic.
    #[test]
    fn arbitrary_text_is_a_definition_or_located_problems(text in any::<String>()) {
        if let Err(problems) = parse_definition("fuzz.toml", &text) {
            assert_located("fuzz.toml", &text, &problems);
        }
    }

    /// TOML-looking text made of the grammar's own pieces.
    #[test]
    fn toml_shaped_noise_is_refused_with_located_problems(
        lines in proptest::collection::vec(
            prop_oneof![
                "(name|version|initial|title|events|deadlines|from|on|to|roles|guards|effects|timers|final|internal) = .{0,20}",
                "\\[(states\\.[a-z_\"]{0,6}|transitions)\\]",
                "\\[\\[transitions\\]\\]",
                proptest::sample::select(FRAGMENTS).prop_map(str::to_string),
            ],
            0..30,
        )
    ) {
        let text = lines.join("\n");
        if let Err(problems) = parse_definition("noise.toml", &text) {
            assert_located("noise.toml", &text, &problems);
        }
    }

    /// The shipped definitions, mutated: refused with located problems, or still a definition
    /// whose stored source is exactly the text read.
    #[test]
    fn mutated_shipped_definitions_are_refused_with_located_problems(
        pick in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let files = shipped_definitions();
        let (file, text) = pick.get(&files);
        let text = mutate(text, &mutations);
        match parse_definition(file, &text) {
            Ok(def) => prop_assert_eq!(def.source, text),
            Err(problems) => assert_located(file, &text, &problems),
        }
    }

    /// Valid generated definitions are accepted and read back as they were written.
    #[test]
    fn generated_definitions_round_trip(g in generated()) {
        let text = g.toml();
        let def = parse_definition("gen.toml", &text).unwrap_or_else(|p| panic!("{p:?}\n{text}"));
        prop_assert_eq!(&def.name, &g.name);
        prop_assert_eq!(def.version, g.version);
        prop_assert_eq!(&def.title, &g.title);
        prop_assert_eq!(&def.initial, &g.chain[0]);
        let states: BTreeSet<&String> = g.chain.iter().chain(&g.finals).collect();
        prop_assert_eq!(def.states.keys().collect::<BTreeSet<_>>(), states);
        for f in &g.finals {
            prop_assert!(def.is_final(f));
        }
        prop_assert_eq!(def.transitions.len(), g.chain.len() + g.exits.len() + g.timers.len());
        let timers: usize = def.states.values().map(|s| s.timers.len()).sum();
        prop_assert_eq!(timers, g.timers.len());
        // Each chain state moves to the next on `next`.
        for (i, s) in g.chain.iter().enumerate() {
            let to = g.chain.get(i + 1).unwrap_or(&g.finals[0]);
            prop_assert_eq!(def.transition(s, "next", &serde_json::Value::Null).and_then(|t| t.to.as_ref()), Some(to));
        }
    }

    /// Any text as a calendar file: accepted or `Malformed` naming the file, never a panic;
    /// nor may the provisional year after it panic.
    #[test]
    fn arbitrary_calendar_text_never_panics(text in any::<String>()) {
        let mut cal = WorkingCalendar::default();
        match cal.add_toml("cal.toml", &text) {
            Ok(()) => {
                let _ = cal.with_provisional_next_year();
            }
            Err(e) => assert_calendar_located("cal.toml", &text, &e),
        }
    }

    /// The shipped calendar, mutated.
    #[test]
    fn mutated_calendars_never_panic(mutations in proptest::collection::vec(mutation(), 1..6)) {
        let text = mutate(&shipped_calendar(), &mutations);
        let mut cal = WorkingCalendar::default();
        match cal.add_toml("cn.toml", &text) {
            Ok(()) => {
                let cal = cal.with_provisional_next_year();
                let years: Vec<i32> = cal.years().collect();
                for y in years {
                    if let Some(d) = NaiveDate::from_ymd_opt(y, 6, 1) {
                        let _ = cal.add_working_days(d, 30);
                    }
                }
            }
            Err(e) => assert_calendar_located("cn.toml", &text, &e),
        }
    }

    /// A year given as any integer key, with no days listed: accepted or refused, and the
    /// provisional year after it (statutory holidays, lunar dates) computed or refused too.
    #[test]
    fn extreme_calendar_years_never_panic(year in prop_oneof![any::<i64>(), -300_000i64..300_000, 1800i64..2300]) {
        let mut cal = WorkingCalendar::default();
        let text = format!("[years.{year}]\noff_days = []\nmakeup_workdays = []\n");
        if cal.add_toml("y.toml", &text).is_ok() {
            let cal = cal.with_provisional_next_year();
            for y in cal.years().collect::<Vec<_>>() {
                if let Some(d) = NaiveDate::from_ymd_opt(y, 12, 30) {
                    let _ = cal.add_working_days(d, 5);
                    let _ = cal.add_calendar_days(d, 3650);
                }
            }
        }
    }

    /// Generated valid calendars are accepted and answer for exactly the days written.
    #[test]
    fn generated_calendars_round_trip(
        year in 1970i32..2200,
        picks in proptest::collection::btree_set(0u32..366, 0..40),
        makeup in proptest::collection::btree_set(0u32..366, 0..10),
    ) {
        let first = NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
        let in_year = |n: &u32| Some(first + Duration::days(*n as i64)).filter(|d| d.year() == year);
        let weekend = |d: &NaiveDate| matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
        let makeup: BTreeSet<NaiveDate> = makeup.iter().filter_map(in_year).filter(weekend).collect();
        let off: BTreeSet<NaiveDate> = picks.iter().filter_map(in_year).filter(|d| !makeup.contains(d)).collect();
        let list = |s: &BTreeSet<NaiveDate>| s.iter().map(|d| format!("\"{d}\"")).collect::<Vec<_>>().join(", ");
        let text = format!("[years.{year}]\nsource = \"gen\"\noff_days = [{}]\nmakeup_workdays = [{}]\n", list(&off), list(&makeup));
        let mut cal = WorkingCalendar::default();
        cal.add_toml("gen.toml", &text).unwrap();
        let mut expected = BTreeMap::new();
        for d in first.iter_days().take_while(|d| d.year() == year) {
            expected.insert(d, !off.contains(&d) && (makeup.contains(&d) || !weekend(&d)));
        }
        for (d, working) in expected {
            prop_assert_eq!(cal.is_working_day(d), Ok(working), "{}", d);
        }
    }
}
