//! Hugging Face chat templates (Jinja) rendered with minijinja, configured like transformers'
//! sandbox: `trim_blocks`, `lstrip_blocks`, Python string/dict methods (pycompat),
//! `raise_exception` and `strftime_now`.

use minijinja::{Environment, Error, ErrorKind, context};

use crate::backend::{BackendError, Result};

const NAME: &str = "chat";

/// A compiled chat template and the special-token strings it may refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").field("bos_token", &self.bos_token).finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source`; syntax errors are reported here, at load time.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_template_owned(NAME, source.to_string()).map_err(|e| BackendError::ChatTemplate(describe(&e)))?;
        Ok(Self { env, bos_token: bos_token.to_string(), eos_token: eos_token.to_string() })
    }

    /// One user message, with the generation prompt (`add_generation_prompt=true`).
    pub fn render_user(&self, user_message: &str) -> Result<String> {
        let template = self.env.get_template(NAME).map_err(|e| BackendError::ChatTemplate(describe(&e)))?;
        template
            .render(context! {
                messages => vec![context! { role => "user", content => user_message }],
                add_generation_prompt => true,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(|e| BackendError::ChatTemplate(describe(&e)))
    }
}

/// `template` applied to one user message; an error when the model has no chat template.
pub fn render_user(template: Option<&ChatTemplate>, user_message: &str) -> Result<String> {
    match template {
        Some(t) => t.render_user(user_message),
        None => Err(BackendError::ChatTemplate("the model has no chat template".into())),
    }
}

/// The error and its causes on one line (minijinja puts the template line in the chain).
fn describe(e: &Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

fn raise_exception(message: String) -> std::result::Result<String, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, format!("template raised: {message}")))
}

/// `strftime_now(format)`: the current UTC date and time; supports %Y %y %m %d %e %B %b %A %a
/// %H %M %S %%.
fn strftime_now(format: String) -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    strftime(&format, secs)
}

const MONTHS: [&str; 12] =
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// Formats UNIX time `secs` (UTC) with a subset of C's strftime.
fn strftime(format: &str, secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (y, m, d) = civil_from_days(days);
    let weekday = ((days + 3).rem_euclid(7)) as usize; // 1970-01-01 was a Thursday
    let (hh, mm, ss) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&y.to_string()),
            Some('y') => out.push_str(&format!("{:02}", y % 100)),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('e') => out.push_str(&format!("{d:2}")),
            Some('B') => out.push_str(MONTHS[m as usize - 1]),
            Some('b') => out.push_str(&MONTHS[m as usize - 1][..3]),
            Some('A') => out.push_str(DAYS[weekday]),
            Some('a') => out.push_str(&DAYS[weekday][..3]),
            Some('H') => out.push_str(&format!("{hh:02}")),
            Some('M') => out.push_str(&format!("{mm:02}")),
            Some('S') => out.push_str(&format!("{ss:02}")),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + \
        message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}\
        {{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn renders_chatml() {
        let t = ChatTemplate::new(CHATML, "", "<|im_end|>").unwrap();
        assert_eq!(t.render_user("Fix: teh cat").unwrap(), "<|im_start|>user\nFix: teh cat<|im_end|>\n<|im_start|>assistant\n");
    }

    #[test]
    fn supports_python_methods_bos_and_raise_exception() {
        let src = "{{ bos_token }}{% for m in messages %}{% if m.role != 'user' %}\
            {{ raise_exception('only user') }}{% endif %}{{ m['content'].strip().upper() }}{% endfor %}";
        let t = ChatTemplate::new(src, "<s>", "</s>").unwrap();
        assert_eq!(t.render_user("  hi  ").unwrap(), "<s>HI");
        let t = ChatTemplate::new("{{ raise_exception('nope') }}", "", "").unwrap();
        assert!(t.render_user("x").unwrap_err().to_string().contains("nope"));
        assert!(ChatTemplate::new("{% if %}", "", "").is_err());
    }

    #[test]
    fn trims_blocks_like_transformers() {
        let src = "{% for m in messages %}\n  {% if true %}\n[{{ m.content }}]\n  {% endif %}\n{% endfor %}";
        let t = ChatTemplate::new(src, "", "").unwrap();
        assert_eq!(t.render_user("a").unwrap(), "[a]\n");
    }

    #[test]
    fn strftime_formats_known_dates() {
        // 2024-02-29 13:05:09 UTC, a Thursday.
        assert_eq!(strftime("%d %b %Y %H:%M:%S %A", 1_709_211_909), "29 Feb 2024 13:05:09 Thursday");
        assert_eq!(strftime("%B %e, %y %%", 0), "January  1, 70 %");
    }
}
