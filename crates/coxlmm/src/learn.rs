//! `coxlmm learn`: activations file → concept dictionary file.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cox_decomp::{DecompParams, Method};
use cox_snmf::synthetic::{token_like, TokenLike};
use cox_snmf::{Par, SamplesRef};
use cox_store::{
    read_activations, tensor_path, write_dictionary, DictionaryFile, DictionaryMeta, Matrix,
};
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// Activation matrix: a safetensors file (`[M, B]`, f16/bf16/f32/f64), an activation-store
    /// directory written by `coxlmm extract`, or `synthetic:MxB` for generated token-like data
    /// (method.md Part B §3.2).
    #[arg(long, default_value = "synthetic:2000x512")]
    activations: String,
    /// Name of the tensor to read (default: `activations`, or the file's only 2-D tensor).
    #[arg(long)]
    tensor: Option<String>,
    /// Layer to read from an activation-store directory (needed when it holds several).
    #[arg(long)]
    layer: Option<String>,
    /// Decomposition: snmf (the paper's Semi-NMF), pca, kmeans or simple.
    #[arg(long, default_value = "snmf")]
    method: Method,
    /// Number of concepts K.
    #[arg(long, default_value_t = 20)]
    k: usize,
    /// Sparsity weight λ of Semi-NMF (the reference's alpha).
    #[arg(long = "lambda", default_value_t = 1.0)]
    lambda: f64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Iteration limit (Semi-NMF 5000, K-Means 5000 by default).
    #[arg(long)]
    max_iter: Option<usize>,
    /// Output dictionary: writes OUT.safetensors and OUT.json.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let (matrix, source, sample_ids, provenance) = load(&a)?;
    let (m, b) = (matrix.rows, matrix.cols);
    let x = SamplesRef::new(&matrix.data, m, b)?;
    let mut params = DecompParams::new(a.method, a.k);
    params.seed = a.seed;
    params.max_iter = a.max_iter;
    if a.method == Method::SemiNmf {
        params.alpha = Some(a.lambda);
    }
    let decomposition = params.build().context("invalid settings")?;
    tracing::info!(m, b, k = a.k, method = %a.method, "learning the dictionary");
    let t = Instant::now();
    let out = decomposition
        .fit(x, Par::rayon(0))
        .map_err(|e| name_sample(e, sample_ids.as_deref()))?;
    let wall = t.elapsed().as_secs_f64();
    let r = &out.report;
    let zeros = out.activations.iter().filter(|&&v| v == 0.0).count() as f64
        / out.activations.len().max(1) as f64;

    let mut extra = std::collections::BTreeMap::new();
    if let Some(p) = provenance {
        extra.insert("provenance".to_string(), p);
    }
    if let Some(v) = &r.explained_variance_ratio {
        extra.insert("explained_variance_ratio".to_string(), json!(v));
    }
    if let Some(v) = &r.selected_samples {
        extra.insert("selected_samples".to_string(), json!(v));
    }
    extra.insert("activation_zero_fraction".to_string(), json!(zeros));
    extra.insert(
        "coxlmm_version".to_string(),
        json!(env!("CARGO_PKG_VERSION")),
    );
    let dict = &out.dictionary;
    let file = DictionaryFile {
        concepts: Matrix::new(dict.concepts.clone(), dict.k, dict.n_features)
            .context("concept shape")?,
        activations: Matrix::new(out.activations.clone(), m, dict.k).context("activation shape")?,
        mean: dict.mean.clone(),
        meta: DictionaryMeta {
            format: "coxlmm-dictionary".into(),
            version: 1,
            method: a.method.to_string(),
            k: dict.k,
            n_features: b,
            n_samples: m,
            lambda: dict.alpha,
            seed: a.seed,
            objective: r.objective,
            objective_trace: r.objective_trace.clone(),
            iterations: r.iterations,
            converged: r.converged,
            init_seconds: r.init_seconds,
            fit_seconds: r.fit_seconds,
            dead_concepts: r.dead_concepts.clone(),
            source: Some(source),
            sample_ids,
            extra,
        },
    };
    let path = tensor_path(&a.out);
    write_dictionary(&path, &file)?;

    println!(
        "learnt {} concepts with {} from {m} samples × {b} features",
        dict.k, a.method
    );
    if let Some(obj) = r.objective {
        println!("  objective    {obj:.6}");
    }
    println!(
        "  iterations   {}{}",
        r.iterations,
        if r.converged {
            " (converged)"
        } else {
            " (iteration limit reached)"
        }
    );
    println!(
        "  time         {wall:.2} s (init {:.2} s, fit {:.2} s)",
        r.init_seconds, r.fit_seconds
    );
    println!(
        "  sparsity     {:.1}% of activations are zero",
        100.0 * zeros
    );
    if r.dead_concepts.is_empty() {
        println!("  dead         none");
    } else {
        println!(
            "  dead         {} concept(s): {:?}",
            r.dead_concepts.len(),
            r.dead_concepts
        );
    }
    println!(
        "  wrote        {} and {}",
        path.display(),
        cox_store::sidecar_path(&path).display()
    );
    Ok(())
}

type Loaded = (
    Matrix,
    String,
    Option<Vec<String>>,
    Option<serde_json::Value>,
);

fn load(a: &Args) -> Result<Loaded> {
    if let Some(size) = a.activations.strip_prefix("synthetic:") {
        let (m, b) = size
            .split_once('x')
            .and_then(|(m, b)| Some((m.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
            .with_context(|| {
                format!(
                    "--activations synthetic:MxB expected, got {:?}",
                    a.activations
                )
            })?;
        if m == 0 || b == 0 {
            bail!("--activations {}: M and B must be positive", a.activations);
        }
        let data = token_like(&TokenLike::reference(m, b), a.seed);
        let prov =
            json!({"synthetic": "token_like", "settings": "method.md Part B §3.2", "seed": a.seed});
        return Ok((
            Matrix::new(data, m, b).expect("generated shape"),
            a.activations.clone(),
            None,
            Some(prov),
        ));
    }
    let path = PathBuf::from(&a.activations);
    if path.is_dir() {
        let run = cox_store::read_run(&path, a.layer.as_deref())?;
        if run.matrix.rows == 0 {
            bail!(
                "{}: the store holds no rows (no sample generated the token of interest)",
                path.display()
            );
        }
        let prov = json!({"store": path.display().to_string(), "layer": run.layer, "manifest": run.manifest});
        return Ok((
            run.matrix,
            format!("{} (layer {})", path.display(), run.layer),
            Some(run.sample_ids),
            Some(prov),
        ));
    }
    let file = read_activations(&path, a.tensor.as_deref())?;
    let ids = file.sidecar.as_ref().and_then(|s| {
        s.get("sample_ids")?
            .as_array()?
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
    });
    if let Some(ids) = &ids {
        if ids.len() != file.matrix.rows {
            bail!(
                "{}: the sidecar lists {} sample ids but the tensor has {} rows",
                path.display(),
                ids.len(),
                file.matrix.rows
            );
        }
    }
    Ok((file.matrix, path.display().to_string(), ids, file.sidecar))
}

/// Adds the sample's id (from the sidecar) to a non-finite-value error.
fn name_sample(e: cox_decomp::Error, ids: Option<&[String]>) -> anyhow::Error {
    if let cox_decomp::Error::Data(cox_snmf::Error::NonFinite { sample, .. }) = &e {
        if let Some(id) = ids.and_then(|ids| ids.get(*sample)) {
            return anyhow::anyhow!("{e} (sample id {id:?})");
        }
    }
    anyhow::Error::new(e)
}
