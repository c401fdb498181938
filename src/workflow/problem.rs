//! One thing wrong with a definition file or the event policy, where a person would fix it: what
//! every check of the workflow folder reports.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: Option<usize>,
    pub place: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}: {}", self.file, line, self.place, self.message),
            None => write!(f, "{}: {}: {}", self.file, self.place, self.message),
        }
    }
}
