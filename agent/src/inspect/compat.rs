//! Which OS loads a Core ML model: Apple's table of specification versions (coremltools'
//! `Model.proto`: "Specification Versions : OS Availability"), and the check the agent makes
//! before it loads one.

use std::fmt;
use std::str::FromStr;

use super::{Format, ModelInfo};

/// A macOS or iOS version (`15.0`, `10.13.2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OsVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl OsVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        OsVersion { major, minor, patch }
    }
}

impl FromStr for OsVersion {
    type Err = String;

    /// `15`, `15.2`, `10.13.2`.
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.trim().split('.').collect();
        let nums: Option<Vec<u32>> = parts.iter().map(|p| p.parse::<u32>().ok()).collect();
        match nums.as_deref() {
            Some([major]) => Ok(OsVersion::new(*major, 0, 0)),
            Some([major, minor]) => Ok(OsVersion::new(*major, *minor, 0)),
            Some([major, minor, patch]) => Ok(OsVersion::new(*major, *minor, *patch)),
            _ => Err(format!("`{s}` is not an OS version like 15.2")),
        }
    }
}

impl fmt::Display for OsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            0 => write!(f, "{}.{}", self.major, self.minor),
            p => write!(f, "{}.{}.{p}", self.major, self.minor),
        }
    }
}

/// (specification version, first macOS, first iOS)
const TABLE: &[(u32, OsVersion, OsVersion)] = &[
    (1, OsVersion::new(10, 13, 0), OsVersion::new(11, 0, 0)),
    (2, OsVersion::new(10, 13, 2), OsVersion::new(11, 2, 0)),
    (3, OsVersion::new(10, 14, 0), OsVersion::new(12, 0, 0)),
    (4, OsVersion::new(10, 15, 0), OsVersion::new(13, 0, 0)),
    (5, OsVersion::new(11, 0, 0), OsVersion::new(14, 0, 0)),
    // ML programs
    (6, OsVersion::new(12, 0, 0), OsVersion::new(15, 0, 0)),
    // float16 arrays
    (7, OsVersion::new(13, 0, 0), OsVersion::new(16, 0, 0)),
    (8, OsVersion::new(14, 0, 0), OsVersion::new(17, 0, 0)),
    // states (MLState) and multiple functions
    (9, OsVersion::new(15, 0, 0), OsVersion::new(18, 0, 0)),
    // int8 arrays in ML programs
    (10, OsVersion::new(26, 0, 0), OsVersion::new(26, 0, 0)),
];

/// The newest specification version this table knows.
pub const NEWEST_SPECIFICATION: u32 = 10;

/// The first macOS and iOS that load a model of specification version `spec`.
pub fn min_os(spec: u32) -> Option<(OsVersion, OsVersion)> {
    TABLE.iter().find(|(v, _, _)| *v == spec).map(|(_, mac, ios)| (*mac, *ios))
}

/// Whether a Mac running `macos` can load the model `info` describes; the reason when it cannot.
/// GGUF files and Hugging Face folders have no OS requirement. Each part of a split model is
/// checked, so the reason names the part.
pub fn check_os_support(info: &ModelInfo, macos: OsVersion) -> Result<(), String> {
    for part in &info.parts {
        check_os_support(part, macos)?;
    }
    if matches!(info.format, Format::Gguf | Format::Hf) {
        return Ok(());
    }
    let spec = info.specification_version;
    let needed = match info.min_macos.as_deref() {
        Some(v) => v.parse::<OsVersion>().map_err(|e| format!("{}: minimum macOS {e}", info.path))?,
        None => match spec {
            Some(v) if v > NEWEST_SPECIFICATION => {
                return Err(format!(
                    "{}: Core ML specification version {v} is newer than any this agent knows (up to \
                     {NEWEST_SPECIFICATION}, macOS 26): it cannot tell whether macOS {macos} loads it",
                    info.path
                ));
            }
            _ => return Err(format!("{}: no specification version, so no minimum macOS is known", info.path)),
        },
    };
    if macos < needed {
        let why = spec.map(|v| format!(" (Core ML specification version {v})")).unwrap_or_default();
        return Err(format!("{} needs macOS {needed} or later{why}; this Mac runs macOS {macos}", info.path));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(spec: Option<u32>, min_macos: Option<&str>) -> ModelInfo {
        let mut info = ModelInfo::new("m.mlpackage", Format::Mlpackage);
        info.specification_version = spec;
        info.min_macos = min_macos.map(str::to_string);
        info
    }

    #[test]
    fn versions_parse_compare_and_print() {
        let v: OsVersion = "10.13.2".parse().unwrap();
        assert_eq!(v, OsVersion::new(10, 13, 2));
        assert_eq!(v.to_string(), "10.13.2");
        assert_eq!("15".parse::<OsVersion>().unwrap().to_string(), "15.0");
        assert!("14.6".parse::<OsVersion>().unwrap() < "15.0".parse().unwrap());
        assert!("10.15".parse::<OsVersion>().unwrap() < "11".parse().unwrap());
        assert_eq!("fifteen".parse::<OsVersion>().unwrap_err(), "`fifteen` is not an OS version like 15.2");
        assert!("15.x".parse::<OsVersion>().is_err());
    }

    #[test]
    fn apples_table() {
        assert_eq!(min_os(7), Some((OsVersion::new(13, 0, 0), OsVersion::new(16, 0, 0))));
        assert_eq!(min_os(9), Some((OsVersion::new(15, 0, 0), OsVersion::new(18, 0, 0))));
        assert_eq!(min_os(2).map(|(m, i)| (m.to_string(), i.to_string())), Some(("10.13.2".into(), "11.2".into())));
        assert_eq!(min_os(10).map(|(m, _)| m.major), Some(26));
        assert_eq!(min_os(11), None);
        assert_eq!(min_os(0), None);
        assert!(TABLE.windows(2).all(|w| w[0].0 + 1 == w[1].0 && w[0].1 < w[1].1 && w[0].2 < w[1].2));
    }

    #[test]
    fn a_stateful_model_is_refused_before_macos_15() {
        let info = model(Some(9), Some("15.0"));
        assert_eq!(
            check_os_support(&info, "14.6".parse().unwrap()).unwrap_err(),
            "m.mlpackage needs macOS 15.0 or later (Core ML specification version 9); this Mac runs macOS 14.6"
        );
        check_os_support(&info, "15.0".parse().unwrap()).unwrap();
        check_os_support(&info, "26.1".parse().unwrap()).unwrap();
    }

    #[test]
    fn unknown_versions_are_refused_with_the_reason() {
        let e = check_os_support(&model(Some(11), None), OsVersion::new(26, 0, 0)).unwrap_err();
        assert!(e.contains("specification version 11 is newer than any this agent knows"), "{e}");
        let e = check_os_support(&model(None, None), OsVersion::new(15, 0, 0)).unwrap_err();
        assert!(e.contains("no specification version"), "{e}");
    }

    #[test]
    fn a_split_models_reason_names_the_part() {
        let mut info = model(Some(9), Some("15.0"));
        info.format = Format::Anemll;
        info.parts = vec![model(Some(7), Some("13.0")), { ModelInfo { path: "lm_head.mlpackage".into(), ..model(Some(9), Some("15.0")) } }];
        let e = check_os_support(&info, OsVersion::new(14, 0, 0)).unwrap_err();
        assert!(e.starts_with("lm_head.mlpackage needs macOS 15.0"), "{e}");
    }

    #[test]
    fn weights_files_have_no_os_requirement() {
        let info = ModelInfo::new("m.gguf", Format::Gguf);
        check_os_support(&info, OsVersion::new(10, 13, 0)).unwrap();
    }
}
