//! Checks of a model's variants and a benchmark's choice of them: names a table key can carry
//! and a label can show, bounded knobs, every unit runnable by some chosen variant, and a
//! reference configuration that exists.

use super::{ArtifactSource, Benchmark, DEFAULT_VARIANT, Knob, ModelArtifacts, SpecError, Variant, quote};

/// Most variants of one model, and most knobs of one variant.
const MAX_VARIANTS: usize = 64;
const MAX_KNOBS: usize = 32;
const MAX_NAME: usize = 64;
const MAX_KNOB_VALUE: usize = 128;

type Err<'a> = &'a dyn Fn(String, String, String) -> SpecError;

pub(super) fn validate_model(name: &str, m: &ModelArtifacts, err: Err) -> Result<(), SpecError> {
    let top = format!("models.{name}");
    if m.variants.len() > MAX_VARIANTS {
        return Err(err(format!("{top}.variants"), format!("[{} variants]", m.variants.len()), format!("at most {MAX_VARIANTS}")));
    }
    let has_top = m.candle.is_some() || m.llamacpp.is_some() || m.coreml.is_some() || m.torch.is_some();
    if !has_top && m.variants.is_empty() {
        return Err(err(top, String::new(), "names no artifact (keys: candle, llamacpp, coreml, torch, or [variants.NAME] tables)".into()));
    }
    if has_top && m.variants.contains_key(DEFAULT_VARIANT) {
        return Err(err(
            format!("{top}.variants.{DEFAULT_VARIANT}"),
            String::new(),
            format!("`{DEFAULT_VARIANT}` is the name of the artifacts given beside the variants: rename one"),
        ));
    }
    if !m.variants.is_empty() && !has_top && !m.knobs.is_empty() {
        return Err(err(format!("{top}.knobs"), String::new(), "knobs belong to a variant: [models.NAME.variants.V] knobs = …".into()));
    }
    for (vname, v) in &m.variants {
        let field = format!("{top}.variants.{vname}");
        check_name(vname, &format!("{top}.variants"), err)?;
        validate_variant(&field, v, err)?;
    }
    let top_variant = Variant {
        candle: m.candle.clone(),
        llamacpp: m.llamacpp.clone(),
        coreml: m.coreml.clone(),
        torch: m.torch.clone(),
        knobs: m.knobs.clone(),
    };
    if has_top || m.variants.is_empty() { validate_variant(&top, &top_variant, err) } else { Ok(()) }
}

fn validate_variant(field: &str, v: &Variant, err: Err) -> Result<(), SpecError> {
    if v.iter().next().is_none() {
        return Err(err(field.to_string(), String::new(), "names no artifact (keys: candle, llamacpp, coreml, torch)".into()));
    }
    for (backend, r) in v.iter() {
        ArtifactSource::parse(r).map_err(|m| err(format!("{field}.{backend}"), quote(r), m))?;
    }
    if v.knobs.len() > MAX_KNOBS {
        return Err(err(format!("{field}.knobs"), format!("[{} knobs]", v.knobs.len()), format!("at most {MAX_KNOBS}")));
    }
    for (k, value) in &v.knobs {
        let at = format!("{field}.knobs.{k}");
        if k.is_empty() || k.len() > MAX_NAME || !k.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(err(at, quote(k), format!("a knob's name is 1 to {MAX_NAME} of a-z, 0-9 and _")));
        }
        let text = value.to_string();
        let bad_float = matches!(value, Knob::Float(x) if !x.is_finite());
        if text.is_empty() || text.chars().count() > MAX_KNOB_VALUE || text.chars().any(char::is_control) || bad_float {
            return Err(err(at, quote(&text), format!("a knob's value is 1 to {MAX_KNOB_VALUE} printable characters, a finite number")));
        }
    }
    Ok(())
}

/// A variant's name: a table key, a /metrics label value and a file-name part alike.
fn check_name(name: &str, field: &str, err: Err) -> Result<(), SpecError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(err(format!("{field}.{name}"), quote(name), format!("a variant's name is 1 to {MAX_NAME} of A-Z, a-z, 0-9, -, _ and .")))
    }
}

/// The variants' names: known to the model, each once. Checked before the units, which depend on them.
pub(super) fn validate_selection(b: &Benchmark, model: &ModelArtifacts, f: &impl Fn(&str) -> String, err: Err) -> Result<(), SpecError> {
    let known = known(model);
    for (j, v) in b.variants.iter().enumerate() {
        if v.is_empty() || !model.variants().iter().any(|(n, _)| n == v) {
            return Err(err(format!("{}[{j}]", f("variants")), quote(v), format!("model `{}` has no such variant ({known})", b.model)));
        }
        if b.variants[..j].contains(v) {
            return Err(err(format!("{}[{j}]", f("variants")), quote(v), "listed twice".into()));
        }
    }
    Ok(())
}

/// Names of the model's variants, for messages.
fn known(model: &ModelArtifacts) -> String {
    let names: Vec<String> =
        model.variants().into_iter().map(|(n, _)| if n.is_empty() { "none: the model has no variants".into() } else { n }).collect();
    names.join(", ")
}

/// The reference configuration exists (after the units are checked) and the agreement is a share.
pub(super) fn validate_reference(b: &Benchmark, model: &ModelArtifacts, f: &impl Fn(&str) -> String, err: Err) -> Result<(), SpecError> {
    let reference = b.reference_variant(model);
    let selected = b.selected_variants(model);
    let Some((_, variant)) = selected.iter().find(|(n, _)| *n == reference) else {
        return Err(err(f("reference_variant"), quote(&reference), format!("must be one of the benchmark's variants ({})", known(model))));
    };
    let base = b.baseline_unit();
    let backend = base.split(':').next().unwrap_or("");
    if variant.get(backend).is_none() {
        return Err(err(
            f("reference_variant"),
            quote(&reference),
            format!(
                "has no `{backend}` artifact, so it cannot run the baseline unit {base}: the reference configuration is this variant on the baseline"
            ),
        ));
    }
    if let Some(a) = b.min_agreement
        && !(a > 0.0 && a <= 1.0)
    {
        return Err(err(f("min_agreement"), a.to_string(), "must be above 0 and at most 1 (a share of the inputs)".into()));
    }
    Ok(())
}

#[cfg(test)]
#[path = "variants_tests.rs"]
mod tests;
