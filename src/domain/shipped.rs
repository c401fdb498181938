//! The workflow definitions, event policy, working-day calendars and message templates pledgeflow
//! ships with, built into the binary so that it runs from any directory (a package installs
//! one file). A configured folder replaces a set as a whole: an office edits its templates, or
//! adds next year's calendar, without a new build.

use std::path::{Path, PathBuf};

use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "workflows/"]
struct WorkflowFiles;

#[derive(RustEmbed)]
#[folder = "templates/"]
struct TemplateFiles;

/// Which shipped set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Set {
    Workflows,
    Templates,
}

/// Where one set of files is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Folder(PathBuf),
    BuiltIn(Set),
}

/// One file of a set: the name it is reported by (a path, or `built-in:…`), and its text.
#[derive(Debug, Clone)]
pub struct File {
    pub name: String,
    pub text: String,
}

/// A file or folder that could not be read: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub place: String,
    pub reason: String,
}

impl Source {
    /// The configured folder, or the built-in set when none is configured.
    pub fn of(set: Set, folder: Option<&Path>) -> Self {
        folder.map_or(Source::BuiltIn(set), |f| Source::Folder(f.to_path_buf()))
    }

    /// What `check-workflows` and start-up say about where a set came from.
    pub fn describe(&self) -> String {
        match self {
            Source::Folder(dir) => format!("the folder {}", dir.display()),
            Source::BuiltIn(Set::Workflows) => "the built-in definitions, policy and calendars".into(),
            Source::BuiltIn(Set::Templates) => "the built-in message templates".into(),
        }
    }

    /// The name a file of this set is reported by.
    pub fn name_of(&self, rel: &str) -> String {
        match self {
            Source::Folder(dir) => dir.join(rel).display().to_string(),
            Source::BuiltIn(Set::Workflows) => format!("built-in:workflows/{rel}"),
            Source::BuiltIn(Set::Templates) => format!("built-in:templates/{rel}"),
        }
    }

    /// The files directly in `sub` ("" for the top) whose names end in `.ext`, by name.
    pub fn files(&self, sub: &str, ext: &str) -> Result<Vec<File>, Unreadable> {
        let wanted = |rel: &str| {
            let p = Path::new(rel);
            p.parent().unwrap_or(Path::new("")) == Path::new(sub) && p.extension().is_some_and(|x| x == ext)
        };
        let mut rels: Vec<String> = match self {
            Source::Folder(dir) => {
                let folder = dir.join(sub);
                let entries = std::fs::read_dir(&folder).map_err(|e| Unreadable { place: folder.display().to_string(), reason: e.to_string() })?;
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .filter_map(|e| e.file_name().to_str().map(|n| if sub.is_empty() { n.to_string() } else { format!("{sub}/{n}") }))
                    .filter(|rel| wanted(rel))
                    .collect()
            }
            Source::BuiltIn(set) => built_in(*set).into_iter().filter(|rel| wanted(rel)).collect(),
        };
        rels.sort();
        rels.iter().map(|rel| self.file(rel)).collect()
    }

    /// One file by its path inside the set.
    pub fn file(&self, rel: &str) -> Result<File, Unreadable> {
        let name = self.name_of(rel);
        let text = match self {
            Source::Folder(dir) => std::fs::read_to_string(dir.join(rel)).map_err(|e| e.to_string()),
            Source::BuiltIn(set) => built_in_text(*set, rel).ok_or_else(|| "not in the built-in set".to_string()),
        };
        text.map(|text| File { name: name.clone(), text }).map_err(|reason| Unreadable { place: name, reason })
    }

    /// A set one level down (`calendars`, `policy`), from the same place.
    pub fn sub(&self, sub: &str) -> SubSource<'_> {
        SubSource { source: self, sub: sub.to_string() }
    }
}

/// A folder inside a set.
pub struct SubSource<'a> {
    source: &'a Source,
    sub: String,
}

impl SubSource<'_> {
    pub fn files(&self, ext: &str) -> Result<Vec<File>, Unreadable> {
        self.source.files(&self.sub, ext)
    }
}

fn built_in(set: Set) -> Vec<String> {
    match set {
        Set::Workflows => WorkflowFiles::iter().map(|p| p.into_owned()).collect(),
        Set::Templates => TemplateFiles::iter().map(|p| p.into_owned()).collect(),
    }
}

fn built_in_text(set: Set, rel: &str) -> Option<String> {
    let file = match set {
        Set::Workflows => WorkflowFiles::get(rel),
        Set::Templates => TemplateFiles::get(rel),
    }?;
    String::from_utf8(file.data.into_owned()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_sets_hold_what_the_repository_ships() {
        let defs = Source::BuiltIn(Set::Workflows).files("", "toml").unwrap();
        assert!(defs.iter().any(|f| f.name == "built-in:workflows/material-deferral.toml"), "{:?}", defs.iter().map(|f| &f.name).collect::<Vec<_>>());
        assert!(!Source::BuiltIn(Set::Workflows).files("calendars", "toml").unwrap().is_empty());
        assert!(Source::BuiltIn(Set::Workflows).file("policy/events.toml").is_ok());
        assert!(!Source::BuiltIn(Set::Templates).files("email", "toml").unwrap().is_empty());
        assert!(Source::BuiltIn(Set::Templates).file("nothing.toml").is_err());
    }

    #[test]
    fn a_folder_lists_only_its_own_level() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("calendars")).unwrap();
        std::fs::write(dir.path().join("a.toml"), "x").unwrap();
        std::fs::write(dir.path().join("b.txt"), "x").unwrap();
        std::fs::write(dir.path().join("calendars/c.toml"), "y").unwrap();
        let source = Source::Folder(dir.path().to_path_buf());
        let top: Vec<String> = source.files("", "toml").unwrap().into_iter().map(|f| f.text).collect();
        assert_eq!(top, ["x"]);
        assert_eq!(source.sub("calendars").files("toml").unwrap()[0].text, "y");
        assert!(Source::Folder(dir.path().join("missing")).files("", "toml").is_err());
    }
}
