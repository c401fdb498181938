//! Message templates, in files a department edits: `email/<topic>.toml` (subject, text and
//! HTML bodies, and optionally the calendar entry a reminder carries) and `sms/<topic>.txt`.
//! Jinja syntax (minijinja); HTML bodies are auto-escaped.

use std::collections::BTreeMap;

use minijinja::Environment;
use serde::Deserialize;

use crate::workflow::{vocabulary::Channel, WorkflowSet};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailFile {
    subject: String,
    text: String,
    html: String,
    calendar: Option<CalendarSpec>,
}

/// The calendar entry (.ics) attached to a reminder: the instant it marks, `deadline:NAME`
/// (one of the instance's deadlines) or `timer:NAME` (a pending timer's due time).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    pub at: String,
    pub summary: String,
    /// A reminder is not sent once its instant has passed (true, the default); a notice that
    /// still matters late (an assignment, an order) says false.
    #[serde(default = "yes")]
    pub skip_when_past: bool,
}

fn yes() -> bool {
    true
}

/// What a topic's calendar entry marks, and whether the message is moot once it has passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marks {
    pub at: String,
    pub skip_when_past: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The calendar entry's summary, when the template has one.
    pub calendar_summary: Option<String>,
}

#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    /// Email topics, each with its calendar entry's mark if it has one.
    calendars: BTreeMap<String, Option<Marks>>,
    sms: Vec<String>,
}

impl Templates {
    /// Loads and compiles every template of `source` (a folder, or the built-in set); every
    /// problem as `file: message`.
    pub fn load(source: &crate::domain::shipped::Source) -> Result<Self, Vec<String>> {
        let mut env: Environment<'static> = crate::templating::environment();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        let mut problems = Vec::new();
        let mut calendars = BTreeMap::new();
        let mut sms = Vec::new();
        for (sub, ext) in [("email", "toml"), ("sms", "txt")] {
            let files = match source.files(sub, ext) {
                Ok(files) => files,
                Err(u) => {
                    problems.push(format!("{}: {}", u.place, u.reason));
                    continue;
                }
            };
            for file in files {
                let path = std::path::Path::new(&file.name);
                let topic = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
                let text = file.text.clone();
                // (template name, source) pairs to compile once the file is understood.
                let mut sources = Vec::new();
                if sub == "sms" {
                    sources.push((format!("sms/{topic}.txt"), text));
                    sms.push(topic);
                } else {
                    match toml::from_str::<EmailFile>(&text) {
                        Ok(file) => {
                            sources.push((format!("email/{topic}/subject.txt"), file.subject));
                            sources.push((format!("email/{topic}/text.txt"), file.text));
                            sources.push((format!("email/{topic}/body.html"), file.html));
                            if let Some(c) = &file.calendar {
                                if !(c.at.starts_with("deadline:") || c.at.starts_with("timer:")) {
                                    problems.push(format!("{}: calendar.at {:?}: expected deadline:NAME or timer:NAME", path.display(), c.at));
                                }
                                sources.push((format!("email/{topic}/calendar.txt"), c.summary.clone()));
                            }
                            calendars.insert(topic, file.calendar.map(|c| Marks { at: c.at, skip_when_past: c.skip_when_past }));
                        }
                        Err(e) => problems.push(format!("{}: {e}", path.display())),
                    }
                }
                for (name, source) in sources {
                    if let Err(e) = crate::templating::check(&source) {
                        problems.push(format!("{} ({name}): {e}", path.display()));
                        continue;
                    }
                    if let Err(e) = env.add_template_owned(name, source) {
                        problems.push(format!("{}: {e}", path.display()));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(Self { env, calendars, sms })
        } else {
            Err(problems)
        }
    }

    /// Every email and SMS topic the definitions use must have a template: a missing one is
    /// found before start-up, not when a reminder is due.
    pub fn missing_for(&self, set: &WorkflowSet) -> Vec<String> {
        let mut missing = Vec::new();
        for (topic, why) in [("digest", "the morning digest"), ("deadline_extended", "deadlines recomputed on the official calendar")] {
            if !self.calendars.contains_key(topic) {
                missing.push(format!("{why}: email template {topic:?} not found"));
            }
        }
        for def in set.all() {
            for t in &def.transitions {
                for (_, effect) in &t.effects {
                    if let crate::workflow::vocabulary::Effect::Deliver { channel, topic, .. } = effect {
                        let known = match channel {
                            Channel::Email => self.calendars.contains_key(topic),
                            Channel::Sms => self.sms.contains(topic),
                            Channel::Webhook => true,
                        };
                        let line = format!("{} v{}: {} template {topic:?} not found", def.name, def.version, channel.as_str());
                        if !known && !missing.contains(&line) {
                            missing.push(line);
                        }
                    }
                }
            }
        }
        missing
    }

    /// What the topic's calendar entry marks (`deadline:NAME` or `timer:NAME`), if it has one.
    pub fn calendar_at(&self, topic: &str) -> Result<Option<&Marks>, String> {
        self.calendars.get(topic).map(Option::as_ref).ok_or_else(|| format!("no email template {topic:?}"))
    }

    pub fn render_email(&self, topic: &str, ctx: &minijinja::Value) -> Result<RenderedEmail, String> {
        let has_calendar = self.calendar_at(topic)?.is_some();
        let render = |part: &str| -> Result<String, String> {
            let name = format!("email/{topic}/{part}");
            let tmpl = self.env.get_template(&name).map_err(|e| e.to_string())?;
            crate::templating::render(&tmpl, ctx).map_err(|e| format!("template {name}: {e}"))
        };
        Ok(RenderedEmail {
            subject: render("subject.txt")?.trim().replace(['\r', '\n'], " "),
            text: render("text.txt")?,
            html: render("body.html")?,
            calendar_summary: if has_calendar { Some(render("calendar.txt")?.trim().to_string()) } else { None },
        })
    }

    pub fn render_sms(&self, topic: &str, ctx: &minijinja::Value) -> Result<String, String> {
        let name = format!("sms/{topic}.txt");
        let tmpl = self.env.get_template(&name).map_err(|_| format!("no SMS template {topic:?}"))?;
        crate::templating::render(&tmpl, ctx).map(|s| s.trim().to_string()).map_err(|e| format!("template {name}: {e}"))
    }
}
