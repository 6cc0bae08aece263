//! Opening images: regular files only (no hang on a FIFO, no endless read of a device), limits
//! checked before reading, truncated JPEG and PNG files refused, complete ones decoded.

use std::path::{Path, PathBuf};

use cox_image::{decode_image, open_image, read_image_file, ImageError, ImageLimits};
use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb};

fn picture() -> DynamicImage {
    DynamicImage::ImageRgb8(ImageBuffer::from_fn(64, 48, |x, y| {
        Rgb([(x * 4) as u8, (y * 5) as u8, ((x + y) * 2) as u8])
    }))
}

fn save(dir: &Path, name: &str, format: ImageFormat) -> PathBuf {
    let p = dir.join(name);
    picture().save_with_format(&p, format).unwrap();
    p
}

fn expect_bad(r: cox_image::Result<impl std::fmt::Debug>, path: &Path, what: &str) -> String {
    match r {
        Err(e @ ImageError::Bad { .. }) => {
            let msg = e.to_string();
            assert_eq!(e.path(), path);
            assert!(msg.contains(what), "{msg}");
            msg
        }
        other => panic!("expected a bad-image error containing {what:?}, got {other:?}"),
    }
}

#[test]
fn complete_images_decode() {
    let d = tempfile::tempdir().unwrap();
    for (name, f) in [("a.png", ImageFormat::Png), ("a.jpg", ImageFormat::Jpeg)] {
        let p = save(d.path(), name, f);
        let img = open_image(&p, &ImageLimits::default()).unwrap();
        assert_eq!((img.width(), img.height()), (64, 48));
        // Bytes after a JPEG's end-of-image marker (some cameras append data) are accepted.
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.extend_from_slice(b"trailing");
        assert!(
            decode_image(&bytes, &p, &ImageLimits::default()).is_ok(),
            "{name}"
        );
    }
}

#[test]
fn truncated_images_are_refused_as_truncated() {
    let d = tempfile::tempdir().unwrap();
    for (name, f) in [("a.png", ImageFormat::Png), ("a.jpg", ImageFormat::Jpeg)] {
        let p = save(d.path(), name, f);
        let bytes = std::fs::read(&p).unwrap();
        // Every cut past the format signature is refused as truncated.
        for cut in (8..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
            let c = d.path().join(format!("cut-{cut}-{name}"));
            std::fs::write(&c, &bytes[..cut]).unwrap();
            expect_bad(open_image(&c, &ImageLimits::default()), &c, "truncated");
        }
    }
}

#[cfg(unix)]
#[test]
fn devices_and_fifos_are_refused_at_once() {
    let zero = Path::new("/dev/zero");
    if zero.exists() {
        expect_bad(
            open_image(zero, &ImageLimits::default()),
            zero,
            "character device",
        );
    }
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("pipe.png");
    // No std API creates a FIFO; the mkfifo tool is on every Unix this runs on.
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        // Opening a FIFO for reading blocks until a writer appears: this returning at all is
        // the test.
        expect_bad(open_image(&fifo, &ImageLimits::default()), &fifo, "FIFO");
    } else {
        eprintln!("mkfifo unavailable: FIFO case skipped");
    }
    expect_bad(
        open_image(d.path(), &ImageLimits::default()),
        d.path(),
        "folder",
    );
}

#[test]
fn limits_are_checked_before_reading_the_whole_file() {
    let d = tempfile::tempdir().unwrap();
    let p = save(d.path(), "a.png", ImageFormat::Png);
    let len = std::fs::metadata(&p).unwrap().len();
    let tight = ImageLimits {
        max_pixels: 1 << 20,
        max_bytes: len - 1,
    };
    expect_bad(read_image_file(&p, &tight), &p, "above the limit of");
    // A large file whose header claims too many pixels is refused on its first part: the
    // PNG header comes first, the rest is padding that would take long to read and decode.
    let mut bytes = std::fs::read(&p).unwrap();
    bytes.resize(3 << 20, 0);
    let big = d.path().join("big.png");
    std::fs::write(&big, &bytes).unwrap();
    let small_pixels = ImageLimits {
        max_pixels: 100,
        max_bytes: 1 << 30,
    };
    expect_bad(
        read_image_file(&big, &small_pixels),
        &big,
        "pixels, above the limit",
    );
    let missing = d.path().join("missing.png");
    match open_image(&missing, &ImageLimits::default()) {
        Err(e @ ImageError::Io { .. }) => {
            assert!(std::error::Error::source(&e).is_none());
            assert!(e.to_string().contains("missing.png"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn empty_and_foreign_files_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let empty = d.path().join("e.png");
    std::fs::write(&empty, b"").unwrap();
    expect_bad(open_image(&empty, &ImageLimits::default()), &empty, "empty");
    let text = d.path().join("t.jpg");
    std::fs::write(&text, b"not a picture at all").unwrap();
    expect_bad(
        open_image(&text, &ImageLimits::default()),
        &text,
        "unsupported",
    );
}
