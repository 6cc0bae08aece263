//! `cargo xtask prep-coco DIR`: check (and, where the archives are already there, unpack) a COCO
//! 2014 + Karpathy-split directory for `coxlmm … --data coco:DIR`. Nothing is downloaded: the
//! machines that run coxlmm are usually offline, so the command says what to fetch and where to put
//! it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use cox_data::{check_coco_layout_with, CocoLayoutReport};

/// Where each missing piece comes from.
const SOURCES: [(&str, &str, &str); 3] = [
    (
        "dataset_coco.json",
        "caption_datasets.zip",
        "https://cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip",
    ),
    (
        "train2014",
        "train2014.zip",
        "http://images.cocodataset.org/zips/train2014.zip",
    ),
    (
        "val2014",
        "val2014.zip",
        "http://images.cocodataset.org/zips/val2014.zip",
    ),
];

#[derive(clap::Args)]
pub struct Args {
    /// The COCO directory (holds dataset_coco.json and, by default, train2014/ and val2014/).
    dir: PathBuf,
    /// The folder holding train2014/ and val2014/, when not DIR.
    #[arg(long)]
    images: Option<PathBuf>,
    /// Only check the split file and the image folders, not every image file.
    #[arg(long)]
    skip_image_check: bool,
    /// Do not unpack archives found in DIR.
    #[arg(long)]
    no_extract: bool,
}

pub fn run(a: Args) -> Result<()> {
    let root = a.images.clone().unwrap_or_else(|| a.dir.clone());
    if !a.no_extract {
        extract_archives(&a.dir, &root)?;
    }
    let report = check_coco_layout_with(&a.dir, a.images.as_deref(), !a.skip_image_check);
    print_report(&report);
    if report.is_complete() {
        let images = if a.images.is_some() {
            format!(",images={}", root.display())
        } else {
            String::new()
        };
        println!("ready: --data coco:{}{images}", a.dir.display());
        return Ok(());
    }
    println!("\nto complete it (on a machine with network access):");
    for (what, zip, url) in SOURCES {
        let target = if what == "dataset_coco.json" {
            &a.dir
        } else {
            &root
        };
        if !target.join(what).exists() {
            println!(
                "  {what}: download {url}, then put {zip} in {}",
                a.dir.display()
            );
        }
    }
    println!("and run `cargo xtask prep-coco {}` again.", a.dir.display());
    bail!(
        "{} problem(s) in {}",
        report.problems.len(),
        a.dir.display()
    )
}

/// Unpacks `caption_datasets.zip` (only `dataset_coco.json`) into `dir` and the image archives
/// into `root`, for each piece that is missing while its archive sits in `dir`.
fn extract_archives(dir: &Path, root: &Path) -> Result<()> {
    for (what, zip, _) in SOURCES {
        let archive = dir.join(zip);
        // The caption archive holds several split files: take only COCO's, flattened into DIR.
        // The image archives hold their own `train2014/` / `val2014/` folder.
        let (target, select): (&Path, &[&str]) = if what == "dataset_coco.json" {
            (dir, &["-j", "*dataset_coco.json"])
        } else {
            (root, &[])
        };
        if target.join(what).exists() || !archive.is_file() {
            continue;
        }
        println!("unpacking {} into {}", archive.display(), target.display());
        std::fs::create_dir_all(target).with_context(|| target.display().to_string())?;
        let (flags, members) = select.split_at(select.len().min(1));
        let ok = Command::new("unzip")
            .args(["-q", "-o"])
            .args(flags)
            .arg(&archive)
            .args(members)
            .arg("-d")
            .arg(target)
            .status()
            .context("running unzip (install it, or unpack the archive by hand)")?
            .success();
        if !ok {
            bail!("unzip {} failed", archive.display());
        }
    }
    Ok(())
}

fn print_report(r: &CocoLayoutReport) {
    println!("split file:  {}", r.split_file.display());
    println!("image root:  {}", r.image_root.display());
    if !r.images_per_split.is_empty() {
        let counts: Vec<String> = r
            .images_per_split
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        println!("images:      {}", counts.join(", "));
    }
    if r.images_checked > 0 {
        println!(
            "image files: {} checked, {} missing",
            r.images_checked, r.missing_images.1
        );
        for p in &r.missing_images.0 {
            println!("  missing {}", p.display());
        }
    }
    if r.is_complete() {
        println!("layout:      complete");
    } else {
        println!("problems:");
        for p in &r.problems {
            println!("  - {p}");
        }
    }
}
