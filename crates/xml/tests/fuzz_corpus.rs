//! Replays the committed fuzzing corpus through the fuzz target's entry function on stable, so that what the
//! fuzzer once found stays fixed without nightly.

use std::path::Path;

#[test]
fn stream_parser_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/stream_parser");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = std::panic::catch_unwind(|| rookery_xml::fuzzing::stream_parser(&data));
        assert!(outcome.is_ok(), "corpus input {} fails", path.display());
        count += 1;
    }
    assert!(
        count >= 20,
        "the corpus should not be empty ({count} inputs in {})",
        dir.display()
    );
}
