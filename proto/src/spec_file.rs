//! Reading a spec file, with an error a newcomer can act on: a path that does not exist names
//! the specs that do exist in that folder.

use std::path::Path;

use crate::spec::InvalidSpec;

/// The spec's text, or an [`InvalidSpec`] naming the file and, when it is missing, the `.toml`
/// files beside it.
pub fn read(path: &Path) -> Result<String, InvalidSpec> {
    let file = path.display();
    std::fs::read_to_string(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound { siblings(path) } else { String::new() };
        InvalidSpec(format!("{file}: cannot read the spec: {e}{hint}"))
    })
}

/// ` (specs in DIR: a.toml, b.toml)`, or the folder missing, or nothing.
fn siblings(path: &Path) -> String {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else { return format!(" (no folder {})", dir.display()) };
    let mut specs: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml") && n != "Cargo.toml")
        .collect();
    specs.sort();
    if specs.is_empty() { String::new() } else { format!(" (specs in {}: {})", dir.display(), specs.join(", ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_spec_names_the_specs_beside_it() {
        let dir = std::env::temp_dir().join(format!("anefleet-spec-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("quickstart.toml"), "").expect("file");
        std::fs::write(dir.join("notes.txt"), "").expect("file");
        let err = read(&dir.join("quickstrat.toml")).expect_err("missing").0;
        assert!(err.contains("quickstrat.toml: cannot read the spec"), "{err}");
        assert!(err.ends_with(&format!("(specs in {}: quickstart.toml)", dir.display())), "{err}");
        let err = read(&dir.join("nowhere/x.toml")).expect_err("missing").0;
        assert!(err.ends_with(&format!("(no folder {})", dir.join("nowhere").display())), "{err}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
