//! The README's `sh` blocks as the commands a user types: comments dropped, lines continued
//! with `\` joined, `a && b` split into its steps.

/// One command of the README and the line it starts on.
#[derive(Debug, Clone)]
pub struct Typed {
    pub line: usize,
    pub text: String,
}

/// Every command of every `sh` block, in order; the steps of `a && b` one after the other.
pub fn commands(readme: &str) -> Vec<Typed> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut pending: Option<Typed> = None;
    for (i, raw) in readme.lines().enumerate() {
        if raw.trim_start().starts_with("```") {
            in_block = !in_block && raw.trim() == "```sh";
            continue;
        }
        if !in_block {
            continue;
        }
        let code = strip_comment(raw).trim();
        let (code, continues) = match code.strip_suffix('\\') {
            Some(c) => (c.trim(), true),
            None => (code, false),
        };
        let cmd = pending.get_or_insert(Typed { line: i + 1, text: String::new() });
        if !code.is_empty() {
            cmd.text = if cmd.text.is_empty() { code.to_string() } else { format!("{} {code}", cmd.text) };
        }
        if !continues && let Some(cmd) = pending.take().filter(|c| !c.text.is_empty()) {
            out.extend(split_and(&cmd.text).into_iter().map(|text| Typed { line: cmd.line, text }));
        }
    }
    out
}

/// The line without its `# comment` (a `#` at the start or after a space, outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '#') if prev.is_whitespace() => return &line[..i],
            _ => {}
        }
        prev = c;
    }
    line
}

/// `a && b` as `[a, b]` (outside quotes).
fn split_and(cmd: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let (mut quote, mut start) = (None, 0);
    let bytes = cmd.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if b == q => quote = None,
            (None, b'&') if bytes.get(i + 1) == Some(&b'&') && i >= start => {
                parts.push(cmd[start..i].trim().to_string());
                start = i + 2;
            }
            _ => {}
        }
    }
    parts.push(cmd[start..].trim().to_string());
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

#[test]
fn blocks_become_commands() {
    let md = "text\n```sh\n# a comment\na --x \"y # z\"   # why\nb --c \\\n  --d 1   # more\nc && d\n```\n```toml\nx = 1\n```\n";
    let got: Vec<String> = commands(md).into_iter().map(|c| c.text).collect();
    assert_eq!(got, ["a --x \"y # z\"", "b --c --d 1", "c", "d"]);
}
