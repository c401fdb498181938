//! Templates people write (commitment letters in the catalogue, message templates) run bounded:
//! in a small language (values from the context, `if` and `for` over them, a few filters that
//! cannot grow a value — nothing that builds a string or a list: no `set`, macros, `~`, `+`, `*`,
//! ranges or namespaces), on fuel (minijinja counts the instructions a render executes and stops
//! it past the limit), with a cap on what they write, and off the async workers with a timeout.
//! So no template can pin a core, fill the memory or hold up a request. A leaf: the window and
//! delivery modules both render through it.

use std::{io::Write, time::Duration};

use minijinja::{filters, Environment, ErrorKind, Template};

/// Instructions one render may execute: the shipped templates take a few thousand at most.
pub const FUEL: u64 = 100_000;
/// Bytes one render may write.
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;
/// How long a request or a delivery waits for a render.
pub const RENDER_TIMEOUT: Duration = Duration::from_secs(2);

/// The statements a template may use: tests and loops over what it is given.
const STATEMENTS: &[&str] = &["if", "elif", "else", "endif", "for", "endfor"];
/// Words that would let a loop call itself.
const DENIED_WORDS: &[&str] = &["recursive"];
/// Operators that build a new string or list from others (`~`, `+`, `*`, `**`).
const DENIED_OPERATORS: &[char] = &['~', '+', '*'];

/// An environment whose renders run on [`FUEL`], with only the filters and tests that cannot
/// grow a value beyond what the context holds, and HTML escaping for `.html` templates.
pub fn environment<'a>() -> Environment<'a> {
    let mut env = Environment::empty();
    env.set_auto_escape_callback(minijinja::default_auto_escape_callback);
    env.set_fuel(Some(FUEL));
    env.add_filter("length", filters::length);
    env.add_filter("default", filters::default);
    env.add_filter("d", filters::default);
    env.add_filter("upper", filters::upper);
    env.add_filter("lower", filters::lower);
    env.add_filter("trim", filters::trim);
    env.add_filter("title", filters::title);
    env.add_filter("capitalize", filters::capitalize);
    env.add_filter("first", filters::first);
    env.add_filter("last", filters::last);
    env.add_filter("join", filters::join);
    env.add_filter("escape", filters::escape);
    env.add_filter("e", filters::escape);
    env.add_filter("safe", filters::safe);
    env.add_test("defined", minijinja::tests::is_defined);
    env.add_test("undefined", minijinja::tests::is_undefined);
    env.add_test("none", minijinja::tests::is_none);
    env
}

/// Checks that `source` keeps to the small language; `Err` names what it may not use.
pub fn check(source: &str) -> Result<(), String> {
    let mut rest = source;
    while let Some(start) = rest.find('{') {
        rest = &rest[start..];
        let close = match rest.get(..2) {
            Some("{{") => "}}",
            Some("{%") => "%}",
            Some("{#") => {
                rest = rest.find("#}").map_or("", |end| &rest[end + 2..]);
                continue;
            }
            _ => {
                rest = &rest[1..];
                continue;
            }
        };
        let statement = close == "%}";
        let (tag, after) = split_tag(&rest[2..], close).ok_or_else(|| format!("a tag opened with {:?} is not closed", &rest[..2]))?;
        rest = after;
        let code = tag.trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        if statement {
            let word = code.split(|c: char| !c.is_alphanumeric() && c != '_').next().unwrap_or("");
            if !STATEMENTS.contains(&word) {
                return Err(format!("{{% {word} %}} is not allowed here: only if, elif, else, for and their ends"));
            }
        }
        if let Some(c) = code.chars().find(|c| DENIED_OPERATORS.contains(c)) {
            return Err(format!("the operator {c:?} in {code:?} is not allowed: a template shows the values it is given, it does not build new ones"));
        }
        let words = code.split(|c: char| !c.is_alphanumeric() && c != '_');
        if let Some(word) = words.into_iter().find(|w| DENIED_WORDS.contains(w)) {
            return Err(format!("{word:?} is not allowed in a template"));
        }
    }
    Ok(())
}

/// The code of a tag up to `close`, with string literals blanked out (what they hold is text,
/// not code), and what follows the tag; `None` when it is not closed.
fn split_tag<'s>(s: &'s str, close: &str) -> Option<(String, &'s str)> {
    let mut code = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some(_) if c == '\\' => {
                chars.next();
            }
            Some(q) if c == q => {
                quote = None;
                code.push('"');
            }
            Some(_) => {}
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                code.push('"');
            }
            None if s[i..].starts_with(close) => return Some((code, &s[i + close.len()..])),
            None => code.push(c),
        }
    }
    None
}

struct Capped(Vec<u8>);

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_OUTPUT_BYTES {
            return Err(std::io::Error::other("output limit"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders `template` with `ctx`; `Err` says, for the person who wrote it, what went wrong.
pub fn render<S: serde::Serialize>(template: &Template<'_, '_>, ctx: S) -> Result<String, String> {
    let mut out = Capped(Vec::new());
    template.render_captured_to(ctx, &mut out).map_err(|e| match e.kind() {
        ErrorKind::OutOfFuel => format!("it does too much work (more than {FUEL} steps)"),
        ErrorKind::WriteFailure => format!("it writes more than {} KiB", MAX_OUTPUT_BYTES / 1024),
        _ => e.to_string(),
    })?;
    String::from_utf8(out.0).map_err(|e| e.to_string())
}

/// Checks, compiles and renders `source` once with `ctx`.
pub fn render_str<S: serde::Serialize>(source: &str, ctx: S) -> Result<String, String> {
    check(source)?;
    let env = environment();
    let template = env.template_from_str(source).map_err(|e| e.to_string())?;
    render(&template, ctx)
}

/// Runs a render on a blocking thread, waiting at most [`RENDER_TIMEOUT`] for it: the async
/// workers that serve requests and deliver messages never render.
pub async fn off_thread<T: Send + 'static>(render: impl FnOnce() -> Result<T, String> + Send + 'static) -> Result<T, String> {
    match tokio::time::timeout(RENDER_TIMEOUT, tokio::task::spawn_blocking(render)).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(format!("the render stopped: {e}")),
        Err(_) => Err(format!("it takes longer than {} s to render", RENDER_TIMEOUT.as_secs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_that_would_run_for_ever_or_write_gigabytes_is_stopped() {
        let started = std::time::Instant::now();
        let xs: Vec<u32> = (0..1000).collect();
        let ctx = minijinja::context! { xs => xs, big => "x".repeat(10_000) };
        let err = render_str("{% for a in xs %}{% for b in xs %}{% for c in xs %}x{% endfor %}{% endfor %}{% endfor %}", &ctx).unwrap_err();
        assert!(err.contains("too much work"), "{err}");
        let err = render_str("{% for a in xs %}{% for b in xs %}{{ big }}{% endfor %}{% endfor %}", &ctx).unwrap_err();
        assert!(err.contains("KiB"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(render_str("本人{{ name }}承诺", minijinja::context! { name => "张伟" }).unwrap(), "本人张伟承诺");
    }

    #[test]
    fn nothing_that_builds_a_value_gets_in() {
        for (source, says) in [
            ("{% set s = 'x' * 100000000 %}{{ s|length }}", "set"),
            ("{{ ('x' * 1000)|length }}", "'*'"),
            ("{{ a ~ a }}", "'~'"),
            ("{{ a + a }}", "'+'"),
            ("{% macro d(s) %}{{ s }}{% endmacro %}", "macro"),
            ("{% for x in xs recursive %}{{ loop(x) }}{% endfor %}", "recursive"),
            ("{% include 'other' %}", "include"),
            ("{{ a }", "not closed"),
        ] {
            let err = render_str(source, minijinja::context! { a => "x", xs => vec![1] }).unwrap_err();
            assert!(err.contains(says), "{source}: {err}");
        }
        // Neither do the globals and filters that would: a range, a namespace, replace.
        for source in ["{% for i in range(10) %}x{% endfor %}", "{{ namespace() }}", "{{ 'x'|replace('x', 'yy') }}"] {
            assert!(render_str(source, ()).is_err(), "{source}");
        }
        // Operators inside text, string literals and comments are text.
        let ok = "{# a ~ b #}合计 1+1 {{ a|default('*~+') }} {% if a is defined and a != '~' %}{{ xs|join(', ') }}{% endif %}{% for c in xs %}{{ loop.index }}. {{ c }}{% endfor %}";
        assert_eq!(render_str(ok, minijinja::context! { a => "x", xs => vec!["甲", "乙"] }).unwrap(), "合计 1+1 x 甲, 乙1. 甲2. 乙");
    }
}
