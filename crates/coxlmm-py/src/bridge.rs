//! The plain-Rust half of the bindings: Python-style settings turned into the solver's validated
//! parameters, `n_jobs` turned into a thread pool, and the calls into `cox-snmf`, `cox-decomp` and
//! `cox-store` that the PyO3 layer wraps. Nothing here knows about Python, so it builds and is
//! tested without an interpreter.

use cox_decomp::{ConceptDictionary, DecompParams, Decomposed, Method};
use cox_snmf::{Dictionary, EncodeParams, Fit, Init, Par, Real, SamplesRef, SemiNmf, SvdMethod};

/// What can go wrong in a call from Python. The PyO3 layer raises `OSError` for
/// [`Error::Store`]'s read failures and `ValueError` with the message for everything else.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad data or parameters, as the solver reports them.
    #[error(transparent)]
    Snmf(#[from] cox_snmf::Error),
    /// Bad data or parameters of a baseline, or an inconsistent dictionary.
    #[error(transparent)]
    Decomp(#[from] cox_decomp::Error),
    /// A file that cannot be read or does not verify.
    #[error(transparent)]
    Store(#[from] cox_store::Error),
    /// A setting that has no meaning (an unknown `init`, `n_jobs = 0`).
    #[error("invalid parameter {name} = {value}: {reason}")]
    Param {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
    /// The thread pool for `n_jobs` could not be created.
    #[error("cannot start {threads} worker threads: {cause}")]
    Pool { threads: usize, cause: String },
}

/// `Result` with this module's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// The number of worker threads for scikit-learn's `n_jobs`: `None` and `-1` mean every core (the
/// solver's results do not depend on the thread count, so there is no reason to default to one),
/// a positive `n` means `n`, and `-k` means all cores but `k - 1` (joblib's rule, at least one).
///
/// # Errors
/// [`Error::Param`] for `n_jobs = 0`.
pub fn threads_for(n_jobs: Option<i64>, cpus: usize) -> Result<usize> {
    let cpus = cpus.max(1);
    match n_jobs {
        None => Ok(cpus),
        Some(0) => Err(Error::Param {
            name: "n_jobs",
            value: "0".into(),
            reason: "use None or -1 for every core, or a positive number of threads",
        }),
        Some(n) if n > 0 => Ok(n as usize),
        Some(n) => Ok((cpus as i64 + 1 + n).max(1) as usize),
    }
}

/// The number of cores rayon would use by default.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Runs `f` with `threads` workers: sequentially for one, otherwise inside a rayon pool of that
/// size (the solvers' parallel loops and faer's products run in the pool they are called from).
///
/// # Errors
/// [`Error::Pool`] when the pool cannot be created.
pub fn with_threads<R: Send>(threads: usize, f: impl FnOnce(Par) -> R + Send) -> Result<R> {
    if threads <= 1 {
        return Ok(f(Par::Seq));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Pool {
            threads,
            cause: e.to_string(),
        })?;
    Ok(pool.install(|| f(Par::rayon(threads))))
}

/// The settings of `coxlmm.SemiNMF`, named as scikit-learn names them.
#[derive(Debug, Clone, PartialEq)]
pub struct SnmfSettings {
    /// `n_components`: the number of concepts K.
    pub n_components: usize,
    /// The sparsity weight α.
    pub alpha: f64,
    /// The most outer iterations.
    pub max_iter: usize,
    /// The relative objective decrease that stops the fit.
    pub tol: f64,
    /// `"svd"` (randomized, the default), `"svd_exact"`, `"samples"` or `"random"`.
    pub init: String,
    /// `random_state`: the seed of every random choice.
    pub seed: u64,
}

impl SnmfSettings {
    /// The solver's initialisation for [`SnmfSettings::init`].
    ///
    /// # Errors
    /// [`Error::Param`] for an unknown name.
    pub fn init(&self) -> Result<Init> {
        match self.init.as_str() {
            "svd" => Ok(Init::Svd(SvdMethod::default())),
            "svd_exact" => Ok(Init::Svd(SvdMethod::Exact)),
            "samples" => Ok(Init::Samples),
            "random" => Ok(Init::Random),
            other => Err(Error::Param {
                name: "init",
                value: format!("{other:?}"),
                reason: "expected \"svd\", \"svd_exact\", \"samples\" or \"random\"",
            }),
        }
    }

    /// Validates the settings into the solver's parameters.
    ///
    /// # Errors
    /// An unknown `init` or an out-of-range value, named.
    pub fn params(&self) -> Result<cox_snmf::ValidParams> {
        Ok(SemiNmf::params()
            .k(self.n_components)
            .alpha(self.alpha)
            .max_iter(self.max_iter)
            .tol(self.tol)
            .init(self.init()?)
            .seed(self.seed)
            .check()?)
    }
}

/// Fits Semi-NMF to `x` (`m × b`, sample-major) with `threads` workers.
///
/// # Errors
/// Bad settings, empty data, a NaN/Inf value (named by sample and feature), `K > M`.
pub fn fit_snmf<T: Real>(
    x: &[T],
    m: usize,
    b: usize,
    settings: &SnmfSettings,
    threads: usize,
) -> Result<Fit<T>> {
    let params = settings.params()?;
    let x = SamplesRef::new(x, m, b)?;
    with_threads(threads, |par| params.fit(x, par))?.map_err(Error::from)
}

/// The positive Lasso codes of `x` (`m × b`) on the `k × b` dictionary `components`
/// (scikit-learn's `transform` with `lasso_cd` and `positive_code=True`).
///
/// # Errors
/// A dictionary or data problem (feature-count mismatch, NaN/Inf named by sample and feature).
#[allow(clippy::too_many_arguments)]
pub fn encode_snmf<T: Real>(
    components: &[T],
    k: usize,
    x: &[T],
    m: usize,
    b: usize,
    alpha: f64,
    max_iter: usize,
    threads: usize,
) -> Result<Vec<T>> {
    if max_iter == 0 {
        return Err(Error::Param {
            name: "transform_max_iter",
            value: "0".into(),
            reason: "must be at least 1",
        });
    }
    if k == 0 {
        return Err(cox_snmf::Error::ZeroConcepts.into());
    }
    let bd = components.len() / k;
    if bd != b {
        return Err(cox_snmf::Error::FeatureMismatch { dict: bd, data: b }.into());
    }
    let dict = Dictionary::new(components.to_vec(), k, b)?;
    let x = SamplesRef::new(x, m, b)?;
    let params = EncodeParams {
        alpha,
        max_sweeps: max_iter,
        ..EncodeParams::default()
    };
    with_threads(threads, |par| dict.encode(x, &params, par))?.map_err(Error::from)
}

/// The settings of the baselines (`coxlmm.PCA`, `coxlmm.KMeans`, `coxlmm.Simple`); `None` takes
/// the reference's default, and an option the method does not use is refused by `cox-decomp`.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineSettings {
    /// `pca`, `kmeans` or `simple`.
    pub method: String,
    /// Number of concepts K.
    pub n_components: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// K-Means: Lloyd iterations.
    pub max_iter: Option<usize>,
    /// K-Means: tolerance on the centre shift.
    pub tol: Option<f64>,
    /// K-Means: k-means++ runs.
    pub n_init: Option<usize>,
}

impl BaselineSettings {
    /// The method, refusing Semi-NMF (it has its own estimator with f64 support).
    ///
    /// # Errors
    /// An unknown method name, or `snmf`.
    pub fn method(&self) -> Result<Method> {
        let method: Method = self.method.parse()?;
        if method == Method::SemiNmf {
            return Err(Error::Param {
                name: "method",
                value: self.method.clone(),
                reason: "Semi-NMF is coxlmm.SemiNMF; the baselines are pca, kmeans and simple",
            });
        }
        Ok(method)
    }
}

/// Fits a baseline to `x` (`m × b`, f32 as `cox-decomp` computes).
///
/// # Errors
/// Bad settings (named), empty data, a NaN/Inf value, `K > M` (PCA: `K > min(M, B)`).
pub fn fit_baseline(
    x: &[f32],
    m: usize,
    b: usize,
    settings: &BaselineSettings,
    threads: usize,
) -> Result<Decomposed> {
    let mut p = DecompParams::new(settings.method()?, settings.n_components);
    p.seed = settings.seed;
    p.max_iter = settings.max_iter;
    p.tol = settings.tol;
    p.n_init = settings.n_init;
    let decomposition = p.build()?;
    let x = SamplesRef::new(x, m, b)?;
    with_threads(threads, |par| decomposition.fit(x, par))?.map_err(Error::from)
}

/// Encodes `x` (`m × b`) with a dictionary of any method (`cox_decomp::ConceptDictionary::encode`).
///
/// # Errors
/// An inconsistent dictionary, a feature-count mismatch, a NaN/Inf value.
pub fn encode_dictionary(
    dict: &ConceptDictionary,
    x: &[f32],
    m: usize,
    b: usize,
    threads: usize,
) -> Result<Vec<f32>> {
    let x = SamplesRef::new(x, m, b)?;
    with_threads(threads, |par| dict.encode(x, par))?.map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(k: usize) -> SnmfSettings {
        SnmfSettings {
            n_components: k,
            alpha: 1.0,
            max_iter: 200,
            tol: 1e-8,
            init: "svd".into(),
            seed: 0,
        }
    }

    #[test]
    fn n_jobs_follows_joblib() {
        assert_eq!(threads_for(None, 8).unwrap(), 8);
        assert_eq!(threads_for(Some(-1), 8).unwrap(), 8);
        assert_eq!(threads_for(Some(-2), 8).unwrap(), 7);
        assert_eq!(threads_for(Some(-20), 8).unwrap(), 1);
        assert_eq!(threads_for(Some(3), 8).unwrap(), 3);
        assert!(threads_for(Some(0), 8)
            .unwrap_err()
            .to_string()
            .contains("n_jobs"));
    }

    #[test]
    fn unknown_init_is_named() {
        let mut s = settings(2);
        s.init = "nndsvd".into();
        let e = s.params().unwrap_err().to_string();
        assert!(e.contains("init") && e.contains("nndsvd"), "{e}");
    }

    #[test]
    fn fit_is_the_same_for_any_thread_count() {
        let data =
            cox_snmf::synthetic::token_like(&cox_snmf::synthetic::TokenLike::reference(60, 12), 3);
        let one = fit_snmf(&data, 60, 12, &settings(4), 1).unwrap();
        let two = fit_snmf(&data, 60, 12, &settings(4), 2).unwrap();
        assert_eq!(one.codes, two.codes);
        assert_eq!(one.dictionary, two.dictionary);
        let c1 = encode_snmf(one.dictionary.as_slice(), 4, &data, 60, 12, 1.0, 1000, 1).unwrap();
        let c2 = encode_snmf(one.dictionary.as_slice(), 4, &data, 60, 12, 1.0, 1000, 2).unwrap();
        assert_eq!(c1, c2);
    }

    #[test]
    fn too_many_concepts_is_an_error_naming_the_counts() {
        let data = vec![1.0f64; 3 * 4];
        let e = fit_snmf(&data, 3, 4, &settings(5), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("K = 5") && e.contains("3 samples"), "{e}");
    }

    #[test]
    fn encode_refuses_a_dictionary_of_other_width() {
        let e = encode_snmf(&[1.0f32; 6], 2, &[1.0f32; 4], 1, 4, 1.0, 1000, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 features") && e.contains("4"), "{e}");
    }

    #[test]
    fn baselines_refuse_snmf_and_unknown_names() {
        let mut s = BaselineSettings {
            method: "snmf".into(),
            n_components: 2,
            seed: 0,
            max_iter: None,
            tol: None,
            n_init: None,
        };
        assert!(s.method().unwrap_err().to_string().contains("SemiNMF"));
        s.method = "ica".into();
        assert!(s.method().unwrap_err().to_string().contains("ica"));
        s.method = "pca".into();
        s.max_iter = Some(3);
        let data: Vec<f32> = (0..40).map(|i| ((i * 7) % 11) as f32).collect();
        let e = fit_baseline(&data, 10, 4, &s, 1).unwrap_err().to_string();
        assert!(e.contains("max_iter"), "{e}");
    }

    #[test]
    fn baseline_encoding_reproduces_the_training_activations() {
        let data: Vec<f32> = (0..60).map(|i| ((i * 7) % 11) as f32).collect();
        for method in ["pca", "kmeans", "simple"] {
            let s = BaselineSettings {
                method: method.into(),
                n_components: 3,
                seed: 0,
                max_iter: None,
                tol: None,
                n_init: None,
            };
            let out = fit_baseline(&data, 12, 5, &s, 2).unwrap();
            let enc = encode_dictionary(&out.dictionary, &data, 12, 5, 1).unwrap();
            for (a, e) in out.activations.iter().zip(&enc) {
                assert!(
                    (a - e).abs() <= 1e-5 * (1.0 + a.abs()),
                    "{method}: {a} vs {e}"
                );
            }
        }
    }
}
