//! The requirement catalogue: every requirement a check can name, loaded from
//! `scenarios/requirements/*.toml` and validated as a whole.
//!
//! The catalogue is data, not code (design principle 1), so a reviewer can check a row against the
//! spec without reading Rust, and a check's severity comes from the row's BCP 14 keyword rather
//! than from the scenario that runs it (principle 3). Each file holds one document family
//! (`cimd.toml` holds `CIMD-*`, `dcr.toml` holds `DCR-*` and `DCRM-*`, …) and opens with a
//! `[document]` table. Loading is strict: unknown keys are refused, and every problem in every
//! file is collected and reported at once with its file and row ID, because a catalogue edit that
//! fixes one error per run wastes the author's time and a half-loaded catalogue would silently
//! turn checks into "unknown requirement".

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A BCP 14 keyword as the source document uses it, or `informative` for text without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum Strength {
    /// MUST.
    #[serde(rename = "MUST")]
    Must,
    /// MUST NOT.
    #[serde(rename = "MUST NOT")]
    MustNot,
    /// REQUIRED.
    #[serde(rename = "REQUIRED")]
    Required,
    /// SHALL.
    #[serde(rename = "SHALL")]
    Shall,
    /// SHALL NOT.
    #[serde(rename = "SHALL NOT")]
    ShallNot,
    /// SHOULD.
    #[serde(rename = "SHOULD")]
    Should,
    /// SHOULD NOT.
    #[serde(rename = "SHOULD NOT")]
    ShouldNot,
    /// RECOMMENDED.
    #[serde(rename = "RECOMMENDED")]
    Recommended,
    /// NOT RECOMMENDED.
    #[serde(rename = "NOT RECOMMENDED")]
    NotRecommended,
    /// MAY.
    #[serde(rename = "MAY")]
    May,
    /// OPTIONAL.
    #[serde(rename = "OPTIONAL")]
    Optional,
    /// No keyword: explanatory text, a definition, a proposal or a vendor's product rule.
    #[serde(rename = "informative")]
    Informative,
}

impl Strength {
    /// Every strength, strongest first.
    pub const ALL: [Strength; 12] = [
        Strength::Must,
        Strength::MustNot,
        Strength::Required,
        Strength::Shall,
        Strength::ShallNot,
        Strength::Should,
        Strength::ShouldNot,
        Strength::Recommended,
        Strength::NotRecommended,
        Strength::May,
        Strength::Optional,
        Strength::Informative,
    ];

    /// The keyword as written in the catalogue files.
    pub fn keyword(self) -> &'static str {
        match self {
            Strength::Must => "MUST",
            Strength::MustNot => "MUST NOT",
            Strength::Required => "REQUIRED",
            Strength::Shall => "SHALL",
            Strength::ShallNot => "SHALL NOT",
            Strength::Should => "SHOULD",
            Strength::ShouldNot => "SHOULD NOT",
            Strength::Recommended => "RECOMMENDED",
            Strength::NotRecommended => "NOT RECOMMENDED",
            Strength::May => "MAY",
            Strength::Optional => "OPTIONAL",
            Strength::Informative => "informative",
        }
    }

    /// What a violated check of this strength means for the run (design principle 3): absolute
    /// requirements fail, recommendations warn (`--strict` turns warnings into failures),
    /// permissions and informative rows only record behaviour.
    pub fn severity(self) -> Severity {
        match self {
            Strength::Must
            | Strength::MustNot
            | Strength::Required
            | Strength::Shall
            | Strength::ShallNot => Severity::Fail,
            Strength::Should
            | Strength::ShouldNot
            | Strength::Recommended
            | Strength::NotRecommended => Severity::Warn,
            Strength::May | Strength::Optional | Strength::Informative => Severity::Info,
        }
    }
}

impl fmt::Display for Strength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// How much a violated check matters; ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Behaviour is recorded; never affects the exit code.
    Info,
    /// Reported as a warning; fails the run only under `--strict`.
    Warn,
    /// A conformance failure.
    Fail,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Fail => "fail",
        })
    }
}

/// The party whose behaviour a requirement constrains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
pub enum Actor {
    /// The authorization server.
    #[serde(rename = "AS")]
    As,
    /// The OAuth client (an MCP client).
    #[serde(rename = "C")]
    Client,
    /// The resource server (an MCP server).
    #[serde(rename = "RS")]
    ResourceServer,
    /// The host serving a client ID metadata document.
    #[serde(rename = "Host")]
    Host,
    /// A CIMD Service handing out documents for in-development clients.
    #[serde(rename = "Svc")]
    Service,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Actor::As => "AS",
            Actor::Client => "C",
            Actor::ResourceServer => "RS",
            Actor::Host => "Host",
            Actor::Service => "Svc",
        })
    }
}

/// An implementer profile; a row carrying one counts only when that profile is selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Auth0's CIMD rules.
    Auth0,
    /// Curity Identity Server's ephemeral clients and templatized DCR.
    Curity,
    /// The AT Protocol OAuth profile.
    Atproto,
}

impl Profile {
    /// The profile a `profiles.toml` row must carry, judged by its ID prefix.
    fn for_profile_row(id: &str) -> Option<Profile> {
        if id.starts_with("A0-") {
            Some(Profile::Auth0)
        } else if id.starts_with("CUR-") {
            Some(Profile::Curity)
        } else if id.starts_with("ATP-") {
            Some(Profile::Atproto)
        } else {
            None
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Auth0 => "auth0",
            Profile::Curity => "curity",
            Profile::Atproto => "atproto",
        })
    }
}

/// A document family: one catalogue file, owning a fixed set of ID prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// `cimd.toml`: the Client ID Metadata Document drafts (`CIMD-*`).
    Cimd,
    /// `mcp.toml`: MCP authorization (`MCP-*`).
    Mcp,
    /// `dcr.toml`: RFC 7591 and RFC 7592 (`DCR-*`, `DCRM-*`).
    Dcr,
    /// `pkjwt.toml`: JWT client authentication (`PKJWT-*`).
    Pkjwt,
    /// `oauth.toml`: RFC 8414, PKCE, RFC 6749, the security BCP, resource indicators.
    Oauth,
    /// `profiles.toml`: vendor and ecosystem profiles (`A0-*`, `CUR-*`, `ATP-*`).
    Profiles,
    /// `device.toml`: the device authorization grant, RFC 8628 (`DEV-*`).
    Device,
}

impl Family {
    /// Every family, in catalogue order.
    pub const ALL: [Family; 7] = [
        Family::Cimd,
        Family::Mcp,
        Family::Dcr,
        Family::Pkjwt,
        Family::Oauth,
        Family::Profiles,
        Family::Device,
    ];

    /// The file name, without `.toml`, that holds this family.
    pub fn file_stem(self) -> &'static str {
        match self {
            Family::Cimd => "cimd",
            Family::Mcp => "mcp",
            Family::Dcr => "dcr",
            Family::Pkjwt => "pkjwt",
            Family::Oauth => "oauth",
            Family::Profiles => "profiles",
            Family::Device => "device",
        }
    }

    /// The family a catalogue file holds, from its name without `.toml`.
    pub fn from_file_stem(stem: &str) -> Option<Family> {
        Family::ALL
            .into_iter()
            .find(|family| family.file_stem() == stem)
    }

    /// The ID prefixes (with their trailing `-`) this family owns.
    pub fn prefixes(self) -> &'static [&'static str] {
        match self {
            Family::Cimd => &["CIMD-"],
            Family::Mcp => &["MCP-"],
            Family::Dcr => &["DCR-", "DCRM-"],
            Family::Pkjwt => &["PKJWT-"],
            Family::Oauth => &["AS-META-", "PKCE-", "OAUTH-", "BCP-", "RI-", "PAR-"],
            Family::Profiles => &["A0-", "CUR-", "ATP-"],
            Family::Device => &["DEV-"],
        }
    }

    /// Whether `id` starts with one of this family's prefixes.
    pub fn owns(self, id: &str) -> bool {
        self.prefixes().iter().any(|prefix| id.starts_with(prefix))
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_stem())
    }
}

/// A requirement ID such as `CIMD-FETCH-03`: upper-case segments joined by `-`, ending in a
/// number. IDs are topics, never section numbers, so they survive a draft's renumbering.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RequirementId(String);

impl RequirementId {
    /// Checks the shape of an ID; `None` if it is not `TOPIC(-TOPIC)*-NN`.
    pub fn parse(raw: &str) -> Option<RequirementId> {
        let (topic, number) = raw.rsplit_once('-')?;
        let number_ok = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
        let topic_ok = topic.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        });
        (number_ok && topic_ok).then(|| RequirementId(raw.to_owned()))
    }

    /// The ID as written in the catalogue.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequirementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a row's claim was checked against the primary source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "state", content = "how")]
pub enum Verification {
    /// Checked against the source text; says how (`verified = "…"`).
    Verified(String),
    /// Still rests on a secondary source; says why (`unverified = "…"`).
    Unverified(String),
    /// The row records neither.
    NotRecorded,
}

/// The `[document]` table of one catalogue file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Document {
    /// The family the file holds.
    pub family: Family,
    /// The file it came from.
    pub file: PathBuf,
    /// A short key, such as `CIMD`.
    pub key: String,
    /// The document's title.
    pub title: String,
    /// The version or versions the rows were taken from.
    pub version: String,
    /// Where the document is published.
    pub url: String,
}

/// One validated catalogue row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Requirement {
    /// The ID checks name.
    pub id: RequirementId,
    /// The family (file) the row belongs to.
    pub family: Family,
    /// The file the row came from.
    pub file: PathBuf,
    /// The source's keyword; decides the severity of a failed check.
    pub strength: Strength,
    /// The party the harness tests for this row.
    pub actor: Actor,
    /// Other parties the requirement also binds (not tested through this row).
    pub also: Vec<Actor>,
    /// The revision or specification version that introduced the row at this strength.
    pub since: String,
    /// Section per revision or document, such as `{"-01" = "4", "-02" = "5"}`; empty only for
    /// excluded rows.
    pub sections: BTreeMap<String, String>,
    /// The requirement, paraphrased declaratively.
    pub text: String,
    /// The test idea.
    pub test: Option<String>,
    /// The implementer profile the row belongs to, if any.
    pub profile: Option<Profile>,
    /// Why no scenario can test the row, if none can.
    pub excluded: Option<String>,
    /// Whether the claim was checked against the primary source.
    pub verification: Verification,
    /// Anything else a reader needs: mixed keywords, older revisions, open issues.
    pub note: Option<String>,
}

impl Requirement {
    /// The severity of a failed check of this row.
    pub fn severity(&self) -> Severity {
        self.strength.severity()
    }
}

/// The whole catalogue, validated: IDs are unique and each sits in its family's file.
#[derive(Debug, Clone)]
pub struct Catalogue {
    documents: Vec<Document>,
    requirements: Vec<Requirement>,
    index: HashMap<String, usize>,
}

impl Catalogue {
    /// Reads every `*.toml` file in `dir` (not recursing) and validates the rows, reporting every
    /// problem of every file at once.
    pub fn load(dir: &Path) -> Result<Catalogue, CatalogueError> {
        let read_dir_error = |source| CatalogueError::ReadDir {
            dir: dir.to_owned(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_dir_error)? {
            let path = entry.map_err(read_dir_error)?.path();
            if path.is_file() && path.extension().is_some_and(|ext| ext == "toml") {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(CatalogueError::Empty(dir.to_owned()));
        }
        // read_dir order is platform-dependent; sorting keeps reports and iteration stable.
        files.sort();

        let mut problems = Vec::new();
        let mut documents = Vec::new();
        let mut requirements: Vec<Requirement> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for path in &files {
            let Some((document, rows)) = load_file(path, &mut problems) else {
                continue;
            };
            documents.push(document);
            for row in rows {
                if let Some(&first) = index.get(row.id.as_str()) {
                    let first_file = requirements
                        .get(first)
                        .map_or_else(|| path.clone(), |other| other.file.clone());
                    problems.push(Problem::row(
                        path,
                        row.id.as_str(),
                        ProblemKind::DuplicateId(first_file),
                    ));
                    continue;
                }
                index.insert(row.id.as_str().to_owned(), requirements.len());
                requirements.push(row);
            }
        }
        if problems.is_empty() {
            Ok(Catalogue {
                documents,
                requirements,
                index,
            })
        } else {
            Err(CatalogueError::Invalid { problems })
        }
    }

    /// The row with this ID.
    pub fn get(&self, id: &str) -> Option<&Requirement> {
        self.index.get(id).and_then(|&at| self.requirements.get(at))
    }

    /// Every row, file by file (sorted by file name), in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, Requirement> {
        self.requirements.iter()
    }

    /// How many rows the catalogue has.
    pub fn len(&self) -> usize {
        self.requirements.len()
    }

    /// Whether the catalogue has no rows (every file had only a `[document]` table).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The `[document]` tables, one per file.
    pub fn documents(&self) -> &[Document] {
        &self.documents
    }

    /// The rows grouped by family, each group in file order.
    pub fn by_family(&self) -> BTreeMap<Family, Vec<&Requirement>> {
        let mut groups: BTreeMap<Family, Vec<&Requirement>> = BTreeMap::new();
        for row in &self.requirements {
            groups.entry(row.family).or_default().push(row);
        }
        groups
    }
}

impl<'a> IntoIterator for &'a Catalogue {
    type Item = &'a Requirement;
    type IntoIter = std::slice::Iter<'a, Requirement>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Why the catalogue could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// The folder itself could not be listed.
    #[error("cannot list the catalogue folder {}: {source}", dir.display())]
    ReadDir {
        /// The folder.
        dir: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The folder has no `*.toml` file, which is almost certainly the wrong folder.
    #[error("no *.toml file in the catalogue folder {}", .0.display())]
    Empty(PathBuf),
    /// One or more rows or files are invalid; all of them are listed.
    #[error("{} problem(s) in the requirement catalogue:\n{}", problems.len(), list(problems))]
    Invalid {
        /// Every problem found, file by file.
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|problem| format!("  {problem}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One problem in one file, tied to a row when it concerns one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file with the problem.
    pub file: PathBuf,
    /// The row's ID as written (or `row N` when it has no usable ID), if the problem is in a row.
    pub row: Option<String>,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl Problem {
    fn file(file: &Path, kind: ProblemKind) -> Problem {
        Problem {
            file: file.to_owned(),
            row: None,
            kind,
        }
    }

    fn row(file: &Path, row: &str, kind: ProblemKind) -> Problem {
        Problem {
            file: file.to_owned(),
            row: Some(row.to_owned()),
            kind,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.row {
            Some(row) => write!(f, "{}: {row}: {}", self.file.display(), self.kind),
            None => write!(f, "{}: {}", self.file.display(), self.kind),
        }
    }
}

/// What is wrong with a catalogue file or row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    /// The file could not be read as UTF-8 text.
    #[error("cannot read the file: {0}")]
    Unreadable(String),
    /// The file is not valid TOML.
    #[error("not valid TOML: {0}")]
    Syntax(String),
    /// The file name names no family.
    #[error(
        "the file name names no family; expected one of cimd, mcp, dcr, pkjwt, oauth, profiles (.toml)"
    )]
    UnknownFamily,
    /// A top-level key other than `document` and `requirement`.
    #[error("unknown top-level key `{0}`; only [document] and [[requirement]] are allowed")]
    UnknownTopLevelKey(String),
    /// The `[document]` table is missing.
    #[error("the [document] table is missing")]
    MissingDocument,
    /// The `[document]` table has missing, unknown or mistyped keys.
    #[error("the [document] table is malformed: {0}")]
    BadDocument(String),
    /// `requirement` is not an array of tables.
    #[error("`requirement` is not an array of [[requirement]] tables")]
    NotAnArrayOfRows,
    /// A row has missing, unknown or mistyped keys (for example an unknown strength).
    #[error("malformed row: {0}")]
    BadRow(String),
    /// The ID is not of the form `TOPIC-NN`.
    #[error(
        "not a requirement ID; expected upper-case segments ending in a number, like CIMD-FETCH-03"
    )]
    BadId,
    /// The ID's prefix belongs to another family's file.
    #[error("the ID does not belong in {family}.toml, whose prefixes are {}", family.prefixes().join(", "))]
    WrongFamily {
        /// The family of the file the row is in.
        family: Family,
    },
    /// The ID is already defined (possibly in another file).
    #[error("duplicate ID; first defined in {}", .0.display())]
    DuplicateId(PathBuf),
    /// `since` is missing or blank.
    #[error("`since` is missing or empty")]
    MissingSince,
    /// `sections` is empty on a row that is not excluded.
    #[error("`sections` is empty; only an excluded row may omit its sections")]
    NoSections,
    /// `text` is missing or blank.
    #[error("`text` is missing or empty (excluded rows need it too)")]
    EmptyText,
    /// `text` uses a BCP 14 keyword in capitals instead of paraphrasing.
    #[error(
        "`text` contains the keyword {0} in capitals; paraphrase declaratively and keep the keyword in `strength`"
    )]
    KeywordInText(String),
    /// An optional text field is present but blank.
    #[error("`{0}` is present but empty")]
    BlankField(&'static str),
    /// Both `verified` and `unverified` are set.
    #[error("both `verified` and `unverified` are set; a row is one or the other")]
    VerifiedAndUnverified,
    /// `also` repeats the main actor or an actor twice.
    #[error("`also` repeats the actor {0}")]
    RepeatedActor(Actor),
    /// A `profiles.toml` row lacks the profile its prefix implies, or carries another one.
    #[error("this row needs `profile = \"{expected}\"`")]
    WrongProfile {
        /// The profile the ID prefix implies.
        expected: Profile,
    },
}

/// BCP 14 keywords that may not appear in capitals in a row's `text`. NOT is left out: it is
/// harmless alone, and every negative keyword contains one of these.
const KEYWORDS: [&str; 7] = [
    "MUST",
    "SHOULD",
    "MAY",
    "SHALL",
    "REQUIRED",
    "RECOMMENDED",
    "OPTIONAL",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    key: String,
    title: String,
    version: String,
    url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    id: String,
    strength: Strength,
    actor: Actor,
    #[serde(default)]
    also: Vec<Actor>,
    since: Option<String>,
    #[serde(default)]
    sections: BTreeMap<String, String>,
    text: Option<String>,
    test: Option<String>,
    profile: Option<Profile>,
    excluded: Option<String>,
    verified: Option<String>,
    unverified: Option<String>,
    note: Option<String>,
}

/// Parses one file. Rows are deserialized one by one so a malformed row does not hide the
/// problems of the others. Returns `None` when the file cannot contribute a document at all.
fn load_file(path: &Path, problems: &mut Vec<Problem>) -> Option<(Document, Vec<Requirement>)> {
    let family = path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .and_then(Family::from_file_stem);
    let Some(family) = family else {
        problems.push(Problem::file(path, ProblemKind::UnknownFamily));
        return None;
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            problems.push(Problem::file(
                path,
                ProblemKind::Unreadable(error.to_string()),
            ));
            return None;
        }
    };
    let mut table: toml::Table = match toml::from_str(&text) {
        Ok(table) => table,
        Err(error) => {
            problems.push(Problem::file(path, ProblemKind::Syntax(error.to_string())));
            return None;
        }
    };
    let raw_document = table.remove("document");
    let raw_rows = table.remove("requirement");
    for key in table.keys() {
        problems.push(Problem::file(
            path,
            ProblemKind::UnknownTopLevelKey(key.clone()),
        ));
    }

    let document = match raw_document.map(toml::Value::try_into::<RawDocument>) {
        None => {
            problems.push(Problem::file(path, ProblemKind::MissingDocument));
            None
        }
        Some(Err(error)) => {
            problems.push(Problem::file(
                path,
                ProblemKind::BadDocument(error.message().to_owned()),
            ));
            None
        }
        Some(Ok(raw)) => Some(Document {
            family,
            file: path.to_owned(),
            key: raw.key,
            title: raw.title,
            version: raw.version,
            url: raw.url,
        }),
    };

    let rows = match raw_rows {
        None => Vec::new(),
        Some(toml::Value::Array(rows)) => rows,
        Some(_) => {
            problems.push(Problem::file(path, ProblemKind::NotAnArrayOfRows));
            Vec::new()
        }
    };
    let mut requirements = Vec::new();
    for (at, value) in rows.into_iter().enumerate() {
        // Name the row by its ID when it has a string one, so even a malformed row is findable.
        let label = value
            .get("id")
            .and_then(toml::Value::as_str)
            .map_or_else(|| format!("row {}", at + 1), str::to_owned);
        match value.try_into::<RawRequirement>() {
            Ok(raw) => {
                if let Some(row) = validate_row(path, family, raw, problems) {
                    requirements.push(row);
                }
            }
            Err(error) => problems.push(Problem::row(
                path,
                &label,
                ProblemKind::BadRow(error.message().to_owned()),
            )),
        }
    }
    document.map(|document| (document, requirements))
}

/// Checks one row; every problem is pushed, and the row is returned only if it has none.
fn validate_row(
    path: &Path,
    family: Family,
    raw: RawRequirement,
    problems: &mut Vec<Problem>,
) -> Option<Requirement> {
    let before = problems.len();
    let mut report = |kind| problems.push(Problem::row(path, &raw.id, kind));

    let id = RequirementId::parse(&raw.id);
    if id.is_none() {
        report(ProblemKind::BadId);
    } else if !family.owns(&raw.id) {
        report(ProblemKind::WrongFamily { family });
    }

    let since = raw.since.filter(|since| !since.trim().is_empty());
    if since.is_none() {
        report(ProblemKind::MissingSince);
    }
    let excluded = raw.excluded;
    if raw.sections.is_empty() && excluded.is_none() {
        report(ProblemKind::NoSections);
    }

    let text = raw.text.filter(|text| !text.trim().is_empty());
    match &text {
        None => report(ProblemKind::EmptyText),
        Some(text) => {
            for word in text.split(|c: char| !c.is_ascii_alphanumeric()) {
                if KEYWORDS.contains(&word) {
                    report(ProblemKind::KeywordInText(word.to_owned()));
                }
            }
        }
    }

    let optional_texts = [
        ("test", &raw.test),
        ("excluded", &excluded),
        ("verified", &raw.verified),
        ("unverified", &raw.unverified),
        ("note", &raw.note),
    ];
    for (name, value) in optional_texts {
        if value
            .as_deref()
            .is_some_and(|value| value.trim().is_empty())
        {
            report(ProblemKind::BlankField(name));
        }
    }
    let verification = match (raw.verified, raw.unverified) {
        (Some(how), None) => Verification::Verified(how),
        (None, Some(why)) => Verification::Unverified(why),
        (None, None) => Verification::NotRecorded,
        (Some(_), Some(_)) => {
            report(ProblemKind::VerifiedAndUnverified);
            Verification::NotRecorded
        }
    };

    let mut seen = vec![raw.actor];
    for actor in &raw.also {
        if seen.contains(actor) {
            report(ProblemKind::RepeatedActor(*actor));
        }
        seen.push(*actor);
    }

    if family == Family::Profiles
        && let Some(expected) = Profile::for_profile_row(&raw.id)
        && raw.profile != Some(expected)
    {
        report(ProblemKind::WrongProfile { expected });
    }

    if problems.len() > before {
        return None;
    }
    Some(Requirement {
        id: id?,
        family,
        file: path.to_owned(),
        strength: raw.strength,
        actor: raw.actor,
        also: raw.also,
        since: since?,
        sections: raw.sections,
        text: text?,
        test: raw.test,
        profile: raw.profile,
        excluded,
        verification,
        note: raw.note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_upper_case_topics_ending_in_a_number() {
        for good in ["CIMD-FETCH-03", "AS-META-10", "A0-URL-01", "RI-01", "CUR-7"] {
            assert!(RequirementId::parse(good).is_some(), "{good}");
        }
        for bad in [
            "cimd-fetch-03",
            "CIMD-FETCH",
            "CIMD--03",
            "-03",
            "CIMD-FETCH-0x",
            "CIMD FETCH-03",
            "03",
            "",
        ] {
            assert!(RequirementId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn every_family_is_found_by_its_file_stem_and_owns_its_prefixes() {
        for family in Family::ALL {
            assert_eq!(Family::from_file_stem(family.file_stem()), Some(family));
            for prefix in family.prefixes() {
                assert!(family.owns(&format!("{prefix}01")));
                let others = Family::ALL.into_iter().filter(|other| *other != family);
                for other in others {
                    assert!(
                        !other.owns(&format!("{prefix}01")),
                        "{prefix} owned by {other} too"
                    );
                }
            }
        }
        assert_eq!(Family::from_file_stem("extra"), None);
    }
}
