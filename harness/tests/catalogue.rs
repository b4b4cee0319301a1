//! The requirement catalogue: the real files load cleanly and cover the source table, and each
//! kind of broken file or row is reported, all at once, with its file and row ID.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use cimd_harness::catalogue::{
    Actor, Catalogue, CatalogueError, Family, Problem, ProblemKind, Profile, RequirementId,
    Severity, Strength, Verification,
};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn real_catalogue() -> Catalogue {
    let dir = manifest_dir().join("../scenarios/requirements");
    Catalogue::load(&dir).unwrap_or_else(|error| panic!("{error}"))
}

#[test]
fn the_real_catalogue_loads_without_problems() {
    let catalogue = real_catalogue();
    let families: BTreeSet<Family> = catalogue
        .documents()
        .iter()
        .map(|document| document.family)
        .collect();
    assert_eq!(
        families,
        Family::ALL.into_iter().collect(),
        "one file per family"
    );
    let groups = catalogue.by_family();
    for family in Family::ALL {
        assert!(
            groups.get(&family).is_some_and(|rows| !rows.is_empty()),
            "{family} has no rows"
        );
    }
    assert_eq!(
        groups.values().map(Vec::len).sum::<usize>(),
        catalogue.len()
    );
}

#[test]
fn the_real_catalogue_has_every_id_of_the_source_table() {
    // CI checks out shared/ beside the repository; a plain clone may not have it.
    let source = manifest_dir().join("../../shared/spec/requirements.md");
    let Ok(markdown) = std::fs::read_to_string(&source) else {
        eprintln!(
            "note: {} is absent; skipping the comparison with the source table",
            source.display()
        );
        return;
    };
    let source_ids: BTreeSet<String> = markdown
        .lines()
        .filter_map(|line| line.strip_prefix("| "))
        .filter_map(|rest| rest.split(" |").next())
        .filter(|cell| RequirementId::parse(cell).is_some())
        .map(str::to_owned)
        .collect();
    assert!(
        source_ids.len() > 200,
        "parsed only {} IDs from {}",
        source_ids.len(),
        source.display()
    );

    let catalogue = real_catalogue();
    let missing: Vec<&String> = source_ids
        .iter()
        .filter(|id| catalogue.get(id).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "rows of the source table missing from the catalogue: {missing:?}"
    );
}

#[test]
fn vendor_rows_carry_their_profile_and_every_untestable_row_says_why() {
    let catalogue = real_catalogue();
    for row in &catalogue {
        if row.family == Family::Profiles {
            assert!(row.profile.is_some(), "{} has no profile", row.id);
        }
        if let Some(reason) = &row.excluded {
            assert!(
                !reason.trim().is_empty(),
                "{} is excluded without a reason",
                row.id
            );
        }
    }
    let url_01 = catalogue.get("CIMD-URL-01").unwrap();
    assert_eq!(
        (url_01.strength, url_01.actor, url_01.also.as_slice()),
        (Strength::Must, Actor::As, &[Actor::Client][..])
    );
    assert!(matches!(url_01.verification, Verification::Verified(_)));
    assert_eq!(
        catalogue.get("ATP-01").unwrap().profile,
        Some(Profile::Atproto)
    );
    assert_eq!(
        catalogue.get("CIMD-FETCH-03").unwrap().severity(),
        Severity::Fail
    );
    assert!(catalogue.get("CIMD-FETCH-99").is_none());
}

#[test]
fn severity_follows_the_keyword() {
    let table = [
        (Strength::Must, "MUST", Severity::Fail),
        (Strength::MustNot, "MUST NOT", Severity::Fail),
        (Strength::Required, "REQUIRED", Severity::Fail),
        (Strength::Shall, "SHALL", Severity::Fail),
        (Strength::ShallNot, "SHALL NOT", Severity::Fail),
        (Strength::Should, "SHOULD", Severity::Warn),
        (Strength::ShouldNot, "SHOULD NOT", Severity::Warn),
        (Strength::Recommended, "RECOMMENDED", Severity::Warn),
        (Strength::NotRecommended, "NOT RECOMMENDED", Severity::Warn),
        (Strength::May, "MAY", Severity::Info),
        (Strength::Optional, "OPTIONAL", Severity::Info),
        (Strength::Informative, "informative", Severity::Info),
    ];
    assert_eq!(
        table.len(),
        Strength::ALL.len(),
        "the table covers every strength"
    );
    for (strength, keyword, severity) in table {
        assert_eq!(strength.severity(), severity, "{keyword}");
        assert_eq!(strength.keyword(), keyword);
        // The keyword is also what a catalogue file spells: load a row written with it.
        let scratch = Scratch::new();
        scratch.write(
            "cimd.toml",
            &(DOCUMENT.to_owned() + &row("CIMD-X-01", &[("strength", &quoted(keyword))])),
        );
        let catalogue = Catalogue::load(scratch.path()).unwrap();
        assert_eq!(catalogue.get("CIMD-X-01").unwrap().strength, strength);
    }
    assert!(Severity::Info < Severity::Warn && Severity::Warn < Severity::Fail);
}

#[test]
fn a_well_formed_catalogue_is_indexed_by_id_and_family() {
    let scratch = Scratch::new();
    scratch.write(
        "cimd.toml",
        &(DOCUMENT.to_owned() + &row("CIMD-X-01", &[]) + &row("CIMD-X-02", &[])),
    );
    scratch.write(
        "dcr.toml",
        &(DOCUMENT.to_owned()
            + &row(
                "DCRM-01",
                &[("excluded", "\"no scenario yet\""), ("sections", "")],
            )),
    );
    scratch.write("README.md", "not a catalogue file, ignored");
    let catalogue = Catalogue::load(scratch.path()).unwrap();
    assert_eq!(catalogue.len(), 3);
    let ids: Vec<&str> = catalogue.iter().map(|row| row.id.as_str()).collect();
    assert_eq!(
        ids,
        ["CIMD-X-01", "CIMD-X-02", "DCRM-01"],
        "file by file, in file order"
    );
    let groups = catalogue.by_family();
    assert_eq!(groups.get(&Family::Cimd).map(Vec::len), Some(2));
    assert_eq!(groups.get(&Family::Dcr).map(Vec::len), Some(1));
    let excluded = catalogue.get("DCRM-01").unwrap();
    assert_eq!(excluded.excluded.as_deref(), Some("no scenario yet"));
    assert!(excluded.sections.is_empty());
}

#[test]
fn every_problem_is_reported_at_once_with_file_and_row() {
    let scratch = Scratch::new();
    scratch.write(
        "cimd.toml",
        &(DOCUMENT.to_owned()
            + &row("CIMD-X-01", &[("since", "")])
            + &row("CIMD-X-02", &[("text", "\"The AS MUST refuse it.\"")])
            + &row("MCP-X-01", &[])),
    );
    scratch.write(
        "mcp.toml",
        &(DOCUMENT.to_owned() + &row("MCP-X-02", &[("strength", "\"MOST\"")])),
    );
    let problems = problems(&scratch);
    let summary = summary(&problems);
    let expected = [
        (
            "cimd.toml",
            "CIMD-X-01",
            ProblemKind::MissingSince.to_string(),
        ),
        (
            "cimd.toml",
            "CIMD-X-02",
            ProblemKind::KeywordInText("MUST".to_owned()).to_string(),
        ),
        (
            "cimd.toml",
            "MCP-X-01",
            ProblemKind::WrongFamily {
                family: Family::Cimd,
            }
            .to_string(),
        ),
    ];
    assert_eq!(summary.len(), 4, "{summary:?}");
    for ((file, row, message), (expected_file, expected_row, expected_message)) in
        summary.iter().zip(&expected)
    {
        assert_eq!(
            (file.as_str(), row.as_deref(), message),
            (*expected_file, Some(*expected_row), expected_message)
        );
    }
    // A row whose strength is not a keyword cannot be deserialized; it is still named by its ID.
    assert_eq!(
        (summary[3].0.as_str(), summary[3].1.as_deref()),
        ("mcp.toml", Some("MCP-X-02"))
    );
    assert!(
        matches!(problems[3].kind, ProblemKind::BadRow(ref message) if message.contains("MOST")),
        "{:?}",
        problems[3]
    );

    let error = Catalogue::load(scratch.path()).unwrap_err().to_string();
    assert!(error.starts_with("4 problem(s)"), "{error}");
    assert!(
        error.contains("cimd.toml: CIMD-X-02: `text` contains the keyword MUST"),
        "{error}"
    );
}

#[test]
fn a_duplicate_id_names_the_file_that_defined_it_first() {
    let scratch = Scratch::new();
    scratch.write(
        "cimd.toml",
        &(DOCUMENT.to_owned() + &row("CIMD-X-01", &[]) + &row("CIMD-X-01", &[])),
    );
    let kinds = kinds(&scratch);
    assert_eq!(
        kinds,
        [ProblemKind::DuplicateId(scratch.path().join("cimd.toml"))]
    );
}

#[test]
fn each_broken_row_gets_its_own_problem() {
    let cases: &[(&str, Overrides, ProblemKind)] = &[
        ("cimd-x-01", &[], ProblemKind::BadId),
        (
            "CIMD-X-01",
            &[("since", "\"  \"")],
            ProblemKind::MissingSince,
        ),
        ("CIMD-X-01", &[("sections", "{}")], ProblemKind::NoSections),
        ("CIMD-X-01", &[("text", "\"\"")], ProblemKind::EmptyText),
        ("CIMD-X-01", &[("text", "")], ProblemKind::EmptyText),
        (
            "CIMD-X-01",
            &[("excluded", "\"untestable\""), ("text", "\" \"")],
            ProblemKind::EmptyText,
        ),
        (
            "CIMD-X-01",
            &[("text", "\"Clients SHOULD NOT do it.\"")],
            ProblemKind::KeywordInText("SHOULD".to_owned()),
        ),
        (
            "CIMD-X-01",
            &[("text", "\"The AS MAY cache it.\"")],
            ProblemKind::KeywordInText("MAY".to_owned()),
        ),
        (
            "CIMD-X-01",
            &[("note", "\"\"")],
            ProblemKind::BlankField("note"),
        ),
        (
            "CIMD-X-01",
            &[("excluded", "\"\"")],
            ProblemKind::BlankField("excluded"),
        ),
        (
            "CIMD-X-01",
            &[("verified", "\"read\""), ("unverified", "\"not read\"")],
            ProblemKind::VerifiedAndUnverified,
        ),
        (
            "CIMD-X-01",
            &[("also", "[\"AS\"]")],
            ProblemKind::RepeatedActor(Actor::As),
        ),
        (
            "CIMD-X-01",
            &[("also", "[\"C\", \"C\"]")],
            ProblemKind::RepeatedActor(Actor::Client),
        ),
        (
            "DCR-01",
            &[],
            ProblemKind::WrongFamily {
                family: Family::Cimd,
            },
        ),
    ];
    for (id, overrides, expected) in cases {
        let scratch = Scratch::new();
        scratch.write("cimd.toml", &(DOCUMENT.to_owned() + &row(id, overrides)));
        let problems = problems(&scratch);
        assert_eq!(problems.len(), 1, "{id} {overrides:?}: {problems:?}");
        assert_eq!(&problems[0].kind, expected, "{id} {overrides:?}");
        assert_eq!(problems[0].row.as_deref(), Some(*id));
        assert_eq!(problems[0].file, scratch.path().join("cimd.toml"));
    }
}

#[test]
fn a_lowercase_keyword_in_text_is_allowed() {
    let scratch = Scratch::new();
    scratch.write(
        "cimd.toml",
        &(DOCUMENT.to_owned()
            + &row(
                "CIMD-X-01",
                &[("text", "\"It may cache; MUSTARD is fine.\"")],
            )),
    );
    assert!(Catalogue::load(scratch.path()).is_ok());
}

#[test]
fn unknown_or_mistyped_row_keys_are_refused_and_named_by_row() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("colour", "\"blue\"")], "colour"),
        (&[("strength", "\"must\"")], "must"),
        (&[("actor", "\"Server\"")], "Server"),
        (&[("profile", "\"okta\"")], "okta"),
        (&[("sections", "[\"4\"]")], "map"),
        (&[("strength", "")], "strength"),
    ];
    for (overrides, mentioned) in cases {
        let scratch = Scratch::new();
        scratch.write(
            "cimd.toml",
            &(DOCUMENT.to_owned() + &row("CIMD-X-01", overrides)),
        );
        let problems = problems(&scratch);
        assert_eq!(problems.len(), 1, "{overrides:?}: {problems:?}");
        assert_eq!(problems[0].row.as_deref(), Some("CIMD-X-01"));
        assert!(
            matches!(&problems[0].kind, ProblemKind::BadRow(message) if message.contains(mentioned)),
            "{overrides:?}: {:?}",
            problems[0].kind
        );
    }
    // A row without a usable ID is named by its position.
    let scratch = Scratch::new();
    scratch.write(
        "cimd.toml",
        &(DOCUMENT.to_owned() + &row("CIMD-X-01", &[]) + &row("CIMD-X-02", &[("id", "7")])),
    );
    assert_eq!(problems(&scratch)[0].row.as_deref(), Some("row 2"));
}

#[test]
fn profile_rows_carry_the_profile_their_prefix_implies() {
    for (id, profile) in [
        ("A0-URL-01", ""),
        ("CUR-01", "\"auth0\""),
        ("ATP-01", "\"curity\""),
    ] {
        let scratch = Scratch::new();
        scratch.write(
            "profiles.toml",
            &(DOCUMENT.to_owned() + &row(id, &[("profile", profile)])),
        );
        let kinds = kinds(&scratch);
        assert!(
            matches!(kinds.as_slice(), [ProblemKind::WrongProfile { .. }]),
            "{id}: {kinds:?}"
        );
    }
    let scratch = Scratch::new();
    scratch.write(
        "profiles.toml",
        &(DOCUMENT.to_owned() + &row("CUR-01", &[("profile", "\"curity\"")])),
    );
    assert_eq!(
        Catalogue::load(scratch.path())
            .unwrap()
            .get("CUR-01")
            .unwrap()
            .profile,
        Some(Profile::Curity)
    );
}

#[test]
fn broken_files_are_reported_by_file() {
    let cases: &[FileCase] = &[
        ("extra.toml", DOCUMENT.to_owned(), |kind| {
            *kind == ProblemKind::UnknownFamily
        }),
        ("cimd.toml", row("CIMD-X-01", &[]), |kind| {
            *kind == ProblemKind::MissingDocument
        }),
        (
            "cimd.toml",
            "[document]\nkey = \"T\"\n".to_owned(),
            |kind| matches!(kind, ProblemKind::BadDocument(_)),
        ),
        ("cimd.toml", DOCUMENT.to_owned() + "[extra]\n", |kind| {
            *kind == ProblemKind::UnknownTopLevelKey("extra".to_owned())
        }),
        (
            "cimd.toml",
            "requirement = 3\n".to_owned() + DOCUMENT,
            |kind| *kind == ProblemKind::NotAnArrayOfRows,
        ),
        ("cimd.toml", "[document\n".to_owned(), |kind| {
            matches!(kind, ProblemKind::Syntax(_))
        }),
    ];
    for (name, content, expected) in cases {
        let scratch = Scratch::new();
        scratch.write(name, content);
        let problems = problems(&scratch);
        assert_eq!(problems.len(), 1, "{name}: {problems:?}");
        assert!(
            expected(&problems[0].kind),
            "{name}: {:?}",
            problems[0].kind
        );
        assert_eq!(problems[0].row, None);
        assert_eq!(problems[0].file, scratch.path().join(name));
    }

    let scratch = Scratch::new();
    std::fs::write(scratch.path().join("cimd.toml"), [0xff, 0xfe, b'[']).unwrap();
    assert!(matches!(
        kinds(&scratch).as_slice(),
        [ProblemKind::Unreadable(_)]
    ));
}

#[test]
fn a_folder_without_catalogue_files_is_an_error() {
    let scratch = Scratch::new();
    assert!(matches!(
        Catalogue::load(scratch.path()),
        Err(CatalogueError::Empty(_))
    ));
    let missing = scratch.path().join("absent");
    assert!(matches!(
        Catalogue::load(&missing),
        Err(CatalogueError::ReadDir { .. })
    ));
}

// --- fixtures ---------------------------------------------------------------------------------

const DOCUMENT: &str = "[document]\nkey = \"T\"\ntitle = \"Test\"\nversion = \"1\"\nurl = \"https://example.com/\"\n\n";

/// Key overrides for [`row`].
type Overrides<'a> = &'a [(&'a str, &'a str)];

/// A file name, its content, and a test of the single problem it must produce.
type FileCase = (&'static str, String, fn(&ProblemKind) -> bool);

/// A valid row with `id`; each override replaces a key's TOML value, or removes the key when the
/// value is empty.
fn row(id: &str, overrides: Overrides) -> String {
    let id = quoted(id);
    let mut keys = vec![
        ("id", id.as_str()),
        ("strength", "\"MUST\""),
        ("actor", "\"AS\""),
        ("since", "\"-01\""),
        ("sections", "{ \"-01\" = \"4\" }"),
        ("text", "\"The AS does not follow redirects.\""),
    ];
    for (key, value) in overrides {
        keys.retain(|(existing, _)| existing != key);
        if !value.is_empty() {
            keys.push((key, value));
        }
    }
    let body: String = keys
        .iter()
        .map(|(key, value)| [key, " = ", value, "\n"].concat())
        .collect();
    format!("[[requirement]]\n{body}\n")
}

fn quoted(text: &str) -> String {
    format!("\"{text}\"")
}

fn problems(scratch: &Scratch) -> Vec<Problem> {
    match Catalogue::load(scratch.path()) {
        Ok(_) => Vec::new(),
        Err(CatalogueError::Invalid { problems }) => problems,
        Err(other) => panic!("expected row or file problems, got {other}"),
    }
}

fn kinds(scratch: &Scratch) -> Vec<ProblemKind> {
    problems(scratch)
        .into_iter()
        .map(|problem| problem.kind)
        .collect()
}

fn summary(problems: &[Problem]) -> Vec<(String, Option<String>, String)> {
    problems
        .iter()
        .map(|problem| {
            let file = problem
                .file
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (file, problem.row.clone(), problem.kind.to_string())
        })
        .collect()
}

/// A fresh folder under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("cimd-catalogue-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, name: &str, content: &str) {
        std::fs::write(self.0.join(name), content).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
