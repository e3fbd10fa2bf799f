//! What the benches share: a demo history written to a temporary directory.

use augur_data::Config;

/// A demo history of `contacts` contacts in a fresh temporary directory (kept while the returned
/// guard lives), with the configuration that reads it.
pub fn demo(contacts: u64) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = augur_synth::DemoSpec {
        contacts,
        ..augur_synth::DemoSpec::default()
    };
    augur_synth::generate(&spec, dir.path(), &|_| {}).expect("generate");
    let config = Config::load(Some(&dir.path().join("augur.toml")))
        .expect("config")
        .0;
    (dir, config)
}

/// The demo size from `AUGUR_BENCH_CONTACTS`, else `default`.
pub fn contacts(default: u64) -> u64 {
    std::env::var("AUGUR_BENCH_CONTACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
