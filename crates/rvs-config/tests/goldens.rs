//! Golden files: every `testdata/configs/NAME.toml` must read to `NAME.json` (the `Config`,
//! as JSON) or be refused with `NAME.err`. `BLESS=1 cargo test -p rvs-config --test goldens`
//! rewrites them from what the code says now, for review with `git diff`.

use std::path::{Path, PathBuf};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/configs")
}

#[test]
fn every_config_reads_as_its_golden_says() {
    let bless = std::env::var_os("BLESS").is_some();
    let mut names: Vec<PathBuf> = std::fs::read_dir(testdata())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 4,
        "the config goldens in {}",
        testdata().display()
    );
    let mut failures = Vec::new();
    for toml in names {
        let text = std::fs::read_to_string(&toml).unwrap();
        let (got, golden, stale) = match rvs_config::parse(&text) {
            Ok(c) => (
                serde_json::to_string_pretty(&c).unwrap() + "\n",
                toml.with_extension("json"),
                toml.with_extension("err"),
            ),
            Err(e) => (
                e + "\n",
                toml.with_extension("err"),
                toml.with_extension("json"),
            ),
        };
        if bless {
            std::fs::write(&golden, &got).unwrap();
            let _ = std::fs::remove_file(&stale);
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if want != got {
            failures.push(format!(
                "{}:\n--- want ({})\n{want}\n--- got\n{got}",
                toml.display(),
                golden.display()
            ));
        }
        assert!(
            !stale.exists(),
            "{} and {} both exist",
            golden.display(),
            stale.display()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
