//! Writes a demonstration report (12 concepts over generated 96-px scenes, metric tables, plots and
//! three explained images) to `target/report-demo/` and prints where to open it.
//!
//! ```text
//! cargo run -p cox-report --example demo_site
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/report-demo");
    let images = common::write_scenes(&root.join("source-images"), 40);
    let data = common::report(12, &images, 3);
    let summary = cox_report::write_site(&data, &root.join("site"))?;
    println!(
        "wrote {} files ({} thumbnails copied, index.html {} bytes); open file://{}",
        summary.files.len(),
        summary.thumbnails_copied,
        summary.index_bytes,
        summary.index.canonicalize()?.display()
    );
    for p in &summary.problems {
        println!("problem: {p}");
    }
    Ok(())
}
