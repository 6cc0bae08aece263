//! The static HTML report of a CoX-LMM run. [`write_site`] turns a [`ReportData`] (filled by the
//! CLI: run settings, metric [`Table`]s, per-concept words, images and activations, plots, explained
//! test images) into a folder that opens from `file://` with no server and no network:
//! `index.html`, one `concept-NNN.html` per concept, one `explain-NNN.html` per explained image,
//! `style.css`, and thumbnails under `thumbs/`. Every plot is inline SVG generated here
//! ([`svg`]); the markup is well-formed XML (polyglot XHTML), every user-controlled string goes through
//! [`escape`], and the same data always gives the same bytes. The crate owns presentation only: it
//! computes nothing about the model except the small display statistics in [`stats`]
//! ([`coactivation`], histograms), never decodes images (thumbnails are copied as given), and never
//! imports a model, dataset, decomposition or CLI crate.
//!
//! ```no_run
//! use cox_report::{write_site, ReportData};
//! let data = ReportData { title: "dog @ layer 31".into(), ..Default::default() };
//! let summary = write_site(&data, "report".as_ref())?;
//! println!("open {}", summary.index.display());
//! # Ok::<(), cox_report::ReportError>(())
//! ```

mod data;
mod error;
pub mod html;
mod site;
pub mod stats;
pub mod svg;

pub use data::{
    Cell, ConceptReport, ExplainedConcept, ExplainedImage, FactorMatch, ImageRef, Plots,
    ReportData, RunSettings, SteeringExample, SteeringRun, Table, TableRow, WordLogit,
};
pub use error::{ReportError, Result};
pub use html::escape;
pub use site::{write_site, SiteSummary};
pub use stats::{coactivation, histogram};
