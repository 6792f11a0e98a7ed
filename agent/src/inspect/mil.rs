//! The function signatures of a compiled model's `model.mil` (MIL text):
//! `func infer<ios18>(tensor<fp16, [1, 1, 1024]> hidden_states, state<tensor<fp16, [..]>> kv) {`.

use super::Feature;

/// One `func` of a MIL program: its inputs and states as its signature declares them.
#[derive(Debug, Clone, PartialEq)]
pub struct MilFunction {
    pub name: String,
    /// The opset (`ios18`), the OS generation whose operations it uses.
    pub opset: String,
    pub inputs: Vec<Feature>,
    pub states: Vec<Feature>,
}

/// Every function of the program `text`; `Err` names what is malformed.
pub fn functions(text: &str) -> Result<Vec<MilFunction>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = find_func(rest) {
        let (f, after) = function(&rest[at + 5..])?;
        out.push(f);
        rest = after;
    }
    Ok(out)
}

/// Where the next `func ` keyword starts a token.
fn find_func(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find("func ") {
        let at = from + i;
        if at == 0 || s[..at].ends_with(|c: char| c.is_whitespace() || c == '{') {
            return Some(at);
        }
        from = at + 5;
    }
    None
}

fn function(s: &str) -> Result<(MilFunction, &str), String> {
    let s = s.trim_start();
    let name_end = s.find(['<', '(']).ok_or("a `func` without a parameter list")?;
    let name = s[..name_end].trim().to_string();
    let mut rest = &s[name_end..];
    let mut opset = String::new();
    if let Some(r) = rest.strip_prefix('<') {
        let end = r.find('>').ok_or_else(|| format!("func {name}: unclosed `<`"))?;
        opset = r[..end].to_string();
        rest = &r[end + 1..];
    }
    let r = rest.trim_start().strip_prefix('(').ok_or_else(|| format!("func {name}: no `(` after the name"))?;
    let end = closing(r).ok_or_else(|| format!("func {name}: unclosed parameter list"))?;
    let (mut inputs, mut states) = (Vec::new(), Vec::new());
    for arg in split_top(&r[..end]) {
        let (ty, arg_name) = arg.rsplit_once(char::is_whitespace).ok_or_else(|| format!("func {name}: parameter `{arg}` has no name"))?;
        let (feature, is_state) =
            feature(ty.trim(), arg_name).ok_or_else(|| format!("func {name}: parameter `{arg}` has no tensor type"))?;
        if is_state { states.push(feature) } else { inputs.push(feature) }
    }
    Ok((MilFunction { name, opset, inputs, states }, &r[end + 1..]))
}

/// Index of the `)` closing a list whose `(` came just before `s`.
fn closing(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '<' | '[' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' | '>' | ']' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// `s` split at the commas outside brackets, trimmed, empty parts dropped.
fn split_top(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' | '<' | '[' => depth += 1,
            ')' | '>' | ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(s[start..].trim());
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// `tensor<fp16, [1, ?, 8]>` or `state<tensor<…>>`: the feature and whether it is a state.
fn feature(ty: &str, name: &str) -> Option<(Feature, bool)> {
    let (inner, is_state) = match ty.strip_prefix("state<") {
        Some(r) => (r.strip_suffix('>')?, true),
        None => (ty, false),
    };
    let body = inner.strip_prefix("tensor<")?.strip_suffix('>')?;
    let (dtype, dims) = body.split_once(',').unwrap_or((body, "[]"));
    let dims = dims.trim().strip_prefix('[')?.strip_suffix(']')?;
    let shape = dims.split(',').map(str::trim).filter(|d| !d.is_empty()).map(|d| d.parse::<i64>().unwrap_or(-1)).collect();
    let feature =
        Feature { name: name.to_string(), shape, dtype: dtype_name(dtype.trim()), shapes: vec![], shape_range: vec![], optional: false };
    Some((feature, is_state))
}

/// MIL's element type (`fp16`) as `agent inspect` names it (`float16`).
fn dtype_name(t: &str) -> String {
    match t {
        "fp16" => "float16".into(),
        "fp32" => "float32".into(),
        "fp64" => "float64".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROGRAM: &str = "program(1.3)\n[buildInfo = dict<string, string>({{\"coremlc-version\", \"3402.3.1\"}})]\n{\n    \
        func main<ios18>(tensor<int32, [1, ?]> input_ids, tensor<fp16, []> scale, state<tensor<fp16, [2, 1, 8, 512, 64]>> kv) {\n        \
        tensor<fp16, [1, ?, 8]> h = gather(x = w, indices = input_ids)[name = string(\"func h\")];\n    } -> (h);\n    \
        func infer<ios17>() {\n    } -> ();\n}\n";

    #[test]
    fn signatures_give_names_types_shapes_and_states() {
        let fs = functions(PROGRAM).unwrap();
        assert_eq!(fs.len(), 2);
        let main = &fs[0];
        assert_eq!((main.name.as_str(), main.opset.as_str()), ("main", "ios18"));
        let inputs: Vec<(&str, &str, &[i64])> =
            main.inputs.iter().map(|f| (f.name.as_str(), f.dtype.as_str(), f.shape.as_slice())).collect();
        assert_eq!(inputs, [("input_ids", "int32", &[1, -1][..]), ("scale", "float16", &[][..])]);
        assert_eq!(main.states.len(), 1);
        assert_eq!((main.states[0].name.as_str(), main.states[0].shape.as_slice()), ("kv", &[2, 1, 8, 512, 64][..]));
        assert_eq!((fs[1].name.as_str(), fs[1].opset.as_str(), fs[1].inputs.len()), ("infer", "ios17", 0));
    }

    #[test]
    fn malformed_signatures_are_named() {
        assert_eq!(functions("func main<ios18>(tensor<fp16, [1]> x").unwrap_err(), "func main: unclosed parameter list");
        assert_eq!(functions("func main(x) {}").unwrap_err(), "func main: parameter `x` has no name");
        assert_eq!(functions("func main(int x) {}").unwrap_err(), "func main: parameter `int x` has no tensor type");
        assert!(functions("program(1.0)\n{\n}\n").unwrap().is_empty());
    }
}
