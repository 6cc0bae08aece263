//! Opening dataset images safely: the one place in coxlmm where an image file is read and decoded,
//! shared by the model's processor (`cox-model`), visual grounding and the report.
//!
//! [`open_image`] opens only regular files (a FIFO, a character device such as `/dev/zero`, a
//! socket or a folder is refused at once, so nothing hangs or reads without end), checks the
//! file's length and then the image header against [`ImageLimits`] before the whole file is read,
//! and refuses truncated JPEG and PNG files ("truncated", as Pillow does) instead of decoding
//! their first part and filling the rest with grey. A decoder panic on a malformed file becomes
//! an error.
//!
//! It must never: resize, normalise or otherwise preprocess pixels (that is the model's
//! processor), write files, or know about datasets, models or command lines.

use std::fs::File;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageFormat, ImageReader};

/// What can go wrong opening an image; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file cannot be opened or read. The operating system's text is part of this message
    /// and not also the error's `source()`, so printing the whole chain shows it once.
    #[error("cannot read image {}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        cause: std::io::Error,
    },
    /// The file is not an acceptable image: not a regular file, too large, empty, of an
    /// unsupported format, truncated or corrupt.
    #[error("bad image {}: {problem}", path.display())]
    Bad {
        /// The file (or a label for in-memory bytes).
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

impl ImageError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ImageError::Io { path, .. } | ImageError::Bad { path, .. } => path,
        }
    }
}

/// `Result` with [`ImageError`].
pub type Result<T> = std::result::Result<T, ImageError>;

/// Limits applied before an image is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLimits {
    /// Most pixels (width × height) an image may have; checked on the header.
    pub max_pixels: u64,
    /// Most bytes the file may have; checked on its length before reading.
    pub max_bytes: u64,
}

impl ImageLimits {
    /// Limits for `max_pixels` pixels, with a file-length limit no valid JPEG or PNG of that
    /// many pixels exceeds: 8 bytes per pixel (16-bit RGBA stored uncompressed) plus 64 MiB for
    /// metadata.
    pub fn for_pixels(max_pixels: u64) -> Self {
        Self {
            max_pixels,
            max_bytes: max_pixels.saturating_mul(8).saturating_add(64 << 20),
        }
    }
}

impl Default for ImageLimits {
    /// 100 megapixels (and the file length that goes with it).
    fn default() -> Self {
        Self::for_pixels(100_000_000)
    }
}

/// How much of a file is read first to look at the image header (PNG's comes first; a JPEG's
/// frame header follows its metadata segments, usually well within this).
const HEAD_BYTES: u64 = 256 << 10;

/// Reads and decodes the image file `path` within `limits` (see the crate documentation).
///
/// # Errors
/// [`ImageError::Io`] when the file cannot be read; [`ImageError::Bad`] when it is not a regular
/// file, exceeds a limit, is empty, truncated, corrupt, or not a JPEG or PNG.
pub fn open_image(path: &Path, limits: &ImageLimits) -> Result<DynamicImage> {
    let bytes = read_image_file(path, limits)?;
    decode_image(&bytes, path, limits)
}

/// Reads the bytes of the image file `path`: only a regular file (checked before opening, so a
/// FIFO cannot block), at most `limits.max_bytes` long, and, when the file is longer than its
/// first 256 KiB, with the image header's pixel count checked before the rest is read.
///
/// # Errors
/// As [`open_image`], except for decoding problems past the header.
pub fn read_image_file(path: &Path, limits: &ImageLimits) -> Result<Vec<u8>> {
    let io = |cause| ImageError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let bad = |problem: String| ImageError::Bad {
        path: path.to_path_buf(),
        problem,
    };
    // `metadata` follows symbolic links, so a link to a regular file is accepted.
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(bad(format!(
            "not a regular file (it is {}); images must be regular files",
            kind_of(&meta)
        )));
    }
    let mut file = File::open(path).map_err(io)?;
    // The file may have been replaced between the check and the open.
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(bad(format!(
            "not a regular file (it is {})",
            kind_of(&meta)
        )));
    }
    let len = meta.len();
    if len > limits.max_bytes {
        return Err(bad(format!(
            "the file is {len} bytes, above the limit of {} bytes",
            limits.max_bytes
        )));
    }
    let mut bytes = Vec::with_capacity(len.min(HEAD_BYTES) as usize);
    (&mut file)
        .take(len.min(HEAD_BYTES))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if len > HEAD_BYTES {
        if let Some((w, h)) = dimensions(&bytes) {
            check_pixels(w, h, limits).map_err(bad)?;
        }
        // Read at most one byte past the limit, in case the file grows while it is read.
        (&mut file)
            .take(limits.max_bytes + 1 - bytes.len() as u64)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > limits.max_bytes {
            return Err(bad(format!(
                "the file grew past the limit of {} bytes while it was read",
                limits.max_bytes
            )));
        }
    }
    Ok(bytes)
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a folder";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

fn dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()
}

fn check_pixels(w: u32, h: u32, limits: &ImageLimits) -> std::result::Result<(), String> {
    let pixels = w as u64 * h as u64;
    if pixels == 0 {
        return Err(format!("image has zero size ({w}×{h})"));
    }
    if pixels > limits.max_pixels {
        return Err(format!(
            "image is {w}×{h} = {pixels} pixels, above the limit of {} pixels",
            limits.max_pixels
        ));
    }
    Ok(())
}

/// Decodes JPEG or PNG bytes within `limits.max_pixels`, refusing truncated files; `label`
/// names the source in errors.
///
/// # Errors
/// [`ImageError::Bad`] for empty, unsupported, oversized, truncated or corrupt images.
pub fn decode_image(bytes: &[u8], label: &Path, limits: &ImageLimits) -> Result<DynamicImage> {
    let bad = |problem: String| ImageError::Bad {
        path: label.to_path_buf(),
        problem,
    };
    if bytes.is_empty() {
        return Err(bad("the file is empty (0 bytes)".into()));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(e.to_string()))?;
    let format = match reader.format() {
        Some(f @ (ImageFormat::Jpeg | ImageFormat::Png)) => f,
        _ => {
            return Err(bad(
                "unrecognised or unsupported image format (JPEG and PNG are supported)".into(),
            ))
        }
    };
    let complete = match format {
        ImageFormat::Jpeg => jpeg_complete(bytes),
        _ => png_complete(bytes),
    };
    complete.map_err(|why| bad(format!("image file is truncated ({why})")))?;
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| bad(format!("cannot read image header: {e}")))?;
    check_pixels(w, h, limits).map_err(bad)?;
    let mut reader = ImageReader::new(Cursor::new(bytes));
    reader.set_format(format);
    let mut l = image::Limits::default();
    // Up to 8 bytes per pixel (16-bit RGBA) plus decoder scratch space.
    l.max_alloc = Some((w as u64 * h as u64).saturating_mul(16).max(1 << 20));
    reader.limits(l);
    // The decoders are not expected to panic, but a malformed file must never take the process
    // down, so a panic is turned into an error too.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.decode()))
        .map_err(|_| bad("the image decoder panicked (corrupt file)".into()))?;
    decoded.map_err(|e| bad(format!("cannot decode: {e}")))
}

/// Checks that a JPEG stream reaches its end-of-image marker: the marker segments are walked by
/// their lengths (so embedded thumbnails inside metadata segments are skipped), and each scan's
/// entropy-coded data is followed to the next marker. A stream cut anywhere before the EOI
/// marker of its last scan is truncated; bytes after EOI are allowed.
fn jpeg_complete(b: &[u8]) -> std::result::Result<(), &'static str> {
    if b.len() < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return Err("no start-of-image marker");
    }
    let mut i = 2;
    loop {
        // Find the next marker (fill bytes 0xFF may repeat).
        if i >= b.len() {
            return Err("the data ends before the end-of-image marker");
        }
        if b[i] != 0xFF {
            return Err("the data ends before the end-of-image marker");
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1;
        }
        let Some(&m) = b.get(i) else {
            return Err("the data ends before the end-of-image marker");
        };
        i += 1;
        match m {
            0xD9 => return Ok(()),
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = b
            .get(i..i + 2)
            .map(|s| u16::from_be_bytes([s[0], s[1]]) as usize)
        else {
            return Err("a marker segment is cut off");
        };
        if len < 2 || i + len > b.len() {
            return Err("a marker segment is cut off");
        }
        i += len;
        if m == 0xDA {
            // Entropy-coded data: 0xFF is followed by 0x00 (a stuffed byte) or a restart marker
            // inside the scan; any other marker ends it.
            loop {
                let Some(p) = b[i..].iter().position(|&x| x == 0xFF) else {
                    return Err("the image data ends before the end-of-image marker");
                };
                i += p;
                match b.get(i + 1) {
                    None => return Err("the image data ends before the end-of-image marker"),
                    Some(0x00) | Some(0xD0..=0xD7) | Some(0xFF) => i += 1,
                    Some(_) => break,
                }
            }
        }
    }
}

/// Checks that a PNG stream's chunks are all complete and end with `IEND`.
fn png_complete(b: &[u8]) -> std::result::Result<(), &'static str> {
    let mut i = 8;
    loop {
        let Some(h) = b.get(i..i + 8) else {
            return Err("the data ends before the IEND chunk");
        };
        let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let end = i
            .checked_add(12)
            .and_then(|x| x.checked_add(len))
            .ok_or("a chunk length is impossible")?;
        if end > b.len() {
            return Err("a chunk is cut off");
        }
        if &h[4..8] == b"IEND" {
            return Ok(());
        }
        i = end;
    }
}
