//! HTML pieces shared by the dashboard and the report: escaping, the page frame with its inline
//! style sheet, tables.

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment or query value.
pub fn url(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub const STYLE: &str = include_str!("style.css");

/// Where the page is shown: the live dashboard (navigation, scripts) or a file (neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    Dashboard,
    Report,
}

/// A whole page. `script` is inline JavaScript of the project's own (never a third party's).
pub fn page(frame: Frame, title: &str, body: &str, script: Option<&str>) -> String {
    let nav = match frame {
        Frame::Dashboard => {
            "<nav><a href=\"/\">Fleet</a><a href=\"/runs\">Runs</a><a href=\"/compare\">Compare</a><a href=\"/metrics\">Metrics</a></nav>"
        }
        Frame::Report => "",
    };
    let script = script.map(|s| format!("<script>{s}</script>")).unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\"><title>{t} · anefleet</title><style>{STYLE}</style></head>\n<body><header><h1>anefleet</h1>{nav}</header>\n\
         <main id=\"main\">\n<h2>{t}</h2>\n{body}\n</main>{script}</body></html>\n",
        t = esc(title)
    )
}

/// A table; cells are HTML already (escape text with [`esc`]). `class` marks rows (e.g. "bad").
pub struct Table {
    head: Vec<String>,
    rows: Vec<(String, Vec<String>)>,
}

impl Table {
    pub fn new(head: &[&str]) -> Table {
        Table { head: head.iter().map(|h| esc(h)).collect(), rows: vec![] }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push((String::new(), cells));
    }

    pub fn row_class(&mut self, class: &str, cells: Vec<String>) {
        self.rows.push((class.to_string(), cells));
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self, id: &str) -> String {
        let mut s = format!("<table id=\"{}\"><thead><tr>", esc(id));
        for h in &self.head {
            s.push_str(&format!("<th>{h}</th>"));
        }
        s.push_str("</tr></thead><tbody>\n");
        for (class, r) in &self.rows {
            let attr = if class.is_empty() { String::new() } else { format!(" class=\"{}\"", esc(class)) };
            s.push_str(&format!("<tr{attr}>"));
            for c in r {
                s.push_str(&format!("<td>{c}</td>"));
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</tbody></table>");
        s
    }
}

/// A titled section of a page, with an id tests and links can find.
pub fn panel(id: &str, title: &str, content: &str) -> String {
    format!("<section class=\"panel\" id=\"{}\"><h3>{}</h3>\n{content}\n</section>\n", esc(id), esc(title))
}

/// Bytes in a unit people read.
pub fn bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

/// A Unix time in milliseconds as UTC: `2023-11-14 22:13:20 UTC`.
pub fn time(unix_ms: u64) -> String {
    if unix_ms == 0 {
        return "–".into();
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_ms / 1000);
    humantime::format_rfc3339_seconds(t).to_string().replace('T', " ").replace('Z', " UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_formats_times() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(time(0), "–");
        assert_eq!(time(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(url("a b/c"), "a%20b%2Fc");
    }
}
