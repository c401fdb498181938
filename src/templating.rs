//! Templates people write (commitment letters in the catalogue, message templates) run bounded:
//! on fuel (minijinja counts the instructions a render executes and stops it past the limit) and
//! with a cap on what they write, so no template can pin a core or fill the memory. A leaf: the
//! window and delivery modules both render through it.

use std::io::Write;

use minijinja::{Environment, ErrorKind, Template};

/// Instructions one render may execute: the shipped templates take a few thousand at most.
pub const FUEL: u64 = 100_000;
/// Bytes one render may write.
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;

/// An environment whose renders run on [`FUEL`].
pub fn environment<'a>() -> Environment<'a> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env
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

/// Compiles and renders `source` once with `ctx`.
pub fn render_str<S: serde::Serialize>(source: &str, ctx: S) -> Result<String, String> {
    let env = environment();
    let template = env.template_from_str(source).map_err(|e| e.to_string())?;
    render(&template, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_that_would_run_for_ever_or_write_gigabytes_is_stopped() {
        let started = std::time::Instant::now();
        let err = render_str("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", ()).unwrap_err();
        assert!(err.contains("too much work"), "{err}");
        let err = render_str("{% for i in range(50) %}{{ 'x' * 1000000 }}{% endfor %}", ()).unwrap_err();
        assert!(err.contains("KiB"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(render_str("本人{{ name }}承诺", minijinja::context! { name => "张伟" }).unwrap(), "本人张伟承诺");
    }
}
