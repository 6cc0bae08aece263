//! The PyO3 module `coxlmm._native`: numpy arrays in and out, the GIL released while the solvers
//! run, and errors raised as Python exceptions carrying the Rust message. The scikit-learn-style
//! classes of `python/coxlmm/` call these functions; they are not meant to be called directly.

use std::borrow::Cow;
use std::path::PathBuf;

use cox_decomp::{ConceptDictionary, Decomposed, Method};
use cox_snmf::Real;
use numpy::ndarray::Array2;
use numpy::{Element, IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::bridge::{self, BaselineSettings, SnmfSettings};

/// Raises `OSError` for a file that cannot be read and `ValueError` for everything else, with the
/// Rust message.
fn to_py(e: bridge::Error) -> PyErr {
    match &e {
        bridge::Error::Store(cox_store::Error::Read { .. }) => PyOSError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

fn store_err(e: cox_store::Error) -> PyErr {
    to_py(e.into())
}

/// A 2-D numpy array's values, sample-major: borrowed when it is C-contiguous, copied otherwise.
fn rows<'a, T: Element + Copy>(a: &'a PyReadonlyArray2<'_, T>) -> (Cow<'a, [T]>, usize, usize) {
    let shape = a.shape();
    let (m, b) = (shape[0], shape[1]);
    match a.as_slice() {
        Ok(s) => (Cow::Borrowed(s), m, b),
        Err(_) => (Cow::Owned(a.as_array().iter().copied().collect()), m, b),
    }
}

/// `n × k` values as a numpy array, without copying.
fn matrix<'py, T: Element>(
    py: Python<'py>,
    values: Vec<T>,
    n: usize,
    k: usize,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    let a = Array2::from_shape_vec((n, k), values)
        .map_err(|e| PyValueError::new_err(format!("internal shape error: {e}")))?;
    Ok(a.into_pyarray(py))
}

fn threads(n_jobs: Option<i64>) -> PyResult<usize> {
    bridge::threads_for(n_jobs, bridge::available_cpus()).map_err(to_py)
}

fn not_float(x: &Bound<'_, PyAny>) -> PyErr {
    let dtype = x
        .getattr("dtype")
        .map(|d| d.to_string())
        .unwrap_or_else(|_| type_name(x));
    PyTypeError::new_err(format!(
        "expected a 2-D float32 or float64 numpy array, got {dtype}: convert it with \
         numpy.asarray(X, dtype=numpy.float64)"
    ))
}

fn type_name(x: &Bound<'_, PyAny>) -> String {
    x.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an unknown type".into())
}

/// The result of a Semi-NMF fit, as the Python estimator stores it.
type FitTuple<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    usize,
    Bound<'py, PyArray1<f64>>,
    bool,
    usize,
);

fn fit_typed<'py, T: Real + Element>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, T>,
    settings: SnmfSettings,
    threads: usize,
) -> PyResult<FitTuple<'py>> {
    let (data, m, b) = rows(&x);
    let fit = py
        .detach(|| bridge::fit_snmf(&data, m, b, &settings, threads))
        .map_err(to_py)?;
    let k = fit.k();
    let components = matrix(py, fit.dictionary.into_vec(), k, b)?.into_any();
    let code = matrix(py, fit.codes, m, k)?.into_any();
    let errors = PyArray1::from_vec(py, fit.objective_trace);
    Ok((
        components,
        code,
        fit.iterations,
        errors,
        fit.converged,
        fit.dead_resampled,
    ))
}

/// Fits Semi-NMF (`cox-snmf`) to a float32 or float64 array and returns
/// `(components, code, n_iter, errors, converged, dead_resampled)` in the input's dtype.
#[pyfunction]
#[pyo3(signature = (x, n_components, alpha, max_iter, tol, init, random_state, n_jobs))]
#[allow(clippy::too_many_arguments)]
fn fit_semi_nmf<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    n_components: usize,
    alpha: f64,
    max_iter: usize,
    tol: f64,
    init: String,
    random_state: u64,
    n_jobs: Option<i64>,
) -> PyResult<FitTuple<'py>> {
    let settings = SnmfSettings {
        n_components,
        alpha,
        max_iter,
        tol,
        init,
        seed: random_state,
    };
    let threads = threads(n_jobs)?;
    if let Ok(a) = x.extract::<PyReadonlyArray2<'py, f32>>() {
        fit_typed(py, a, settings, threads)
    } else if let Ok(a) = x.extract::<PyReadonlyArray2<'py, f64>>() {
        fit_typed(py, a, settings, threads)
    } else {
        Err(not_float(x))
    }
}

fn encode_typed<'py, T: Real + Element>(
    py: Python<'py>,
    components: &Bound<'py, PyAny>,
    x: PyReadonlyArray2<'py, T>,
    alpha: f64,
    max_iter: usize,
    threads: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let d: PyReadonlyArray2<'py, T> = components.extract().map_err(|_| {
        PyTypeError::new_err(
            "components_ must be a 2-D array of the same dtype as X (float32 or float64)",
        )
    })?;
    let (dict, k, _) = rows(&d);
    let (data, m, b) = rows(&x);
    let codes = py
        .detach(|| bridge::encode_snmf(&dict, k, &data, m, b, alpha, max_iter, threads))
        .map_err(to_py)?;
    Ok(matrix(py, codes, m, k)?.into_any())
}

/// The positive Lasso codes of `x` on `components` (scikit-learn's `transform` with `lasso_cd`),
/// in the input's dtype.
#[pyfunction]
#[pyo3(signature = (components, x, alpha, max_iter, n_jobs))]
fn encode_semi_nmf<'py>(
    py: Python<'py>,
    components: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    alpha: f64,
    max_iter: usize,
    n_jobs: Option<i64>,
) -> PyResult<Bound<'py, PyAny>> {
    let threads = threads(n_jobs)?;
    if let Ok(a) = x.extract::<PyReadonlyArray2<'py, f32>>() {
        encode_typed(py, components, a, alpha, max_iter, threads)
    } else if let Ok(a) = x.extract::<PyReadonlyArray2<'py, f64>>() {
        encode_typed(py, components, a, alpha, max_iter, threads)
    } else {
        Err(not_float(x))
    }
}

fn f32_rows<'py>(x: &Bound<'py, PyAny>) -> PyResult<PyReadonlyArray2<'py, f32>> {
    x.extract::<PyReadonlyArray2<'py, f32>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "expected a 2-D float32 numpy array, got {}",
            x.getattr("dtype")
                .map(|d| d.to_string())
                .unwrap_or_else(|_| type_name(x))
        ))
    })
}

/// The fields of a fitted baseline, as a dict: `components`, `activations`, `mean` (PCA),
/// `objective`, `n_iter`, `converged`, `explained_variance`, `explained_variance_ratio`, `labels`,
/// `selected_samples`.
fn decomposed_dict<'py>(py: Python<'py>, d: Decomposed, m: usize) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    let (k, b) = (d.dictionary.k, d.dictionary.n_features);
    out.set_item("components", matrix(py, d.dictionary.concepts, k, b)?)?;
    out.set_item("activations", matrix(py, d.activations, m, k)?)?;
    out.set_item("mean", d.dictionary.mean.map(|v| PyArray1::from_vec(py, v)))?;
    let r = d.report;
    out.set_item("objective", r.objective)?;
    out.set_item("n_iter", r.iterations)?;
    out.set_item("converged", r.converged)?;
    out.set_item(
        "explained_variance",
        r.explained_variance.map(|v| PyArray1::from_vec(py, v)),
    )?;
    out.set_item(
        "explained_variance_ratio",
        r.explained_variance_ratio
            .map(|v| PyArray1::from_vec(py, v)),
    )?;
    out.set_item("labels", r.labels.map(|v| PyArray1::from_vec(py, v)))?;
    out.set_item(
        "selected_samples",
        r.selected_samples
            .map(|v| PyArray1::from_vec(py, v.into_iter().map(|i| i as u64).collect())),
    )?;
    Ok(out)
}

/// Fits a baseline (`pca`, `kmeans`, `simple`; `cox-decomp`) to a float32 array.
#[pyfunction]
#[pyo3(signature = (method, x, n_components, random_state, max_iter, tol, n_init, n_jobs))]
#[allow(clippy::too_many_arguments)]
fn fit_baseline<'py>(
    py: Python<'py>,
    method: String,
    x: &Bound<'py, PyAny>,
    n_components: usize,
    random_state: u64,
    max_iter: Option<usize>,
    tol: Option<f64>,
    n_init: Option<usize>,
    n_jobs: Option<i64>,
) -> PyResult<Bound<'py, PyDict>> {
    let settings = BaselineSettings {
        method,
        n_components,
        seed: random_state,
        max_iter,
        tol,
        n_init,
    };
    let threads = threads(n_jobs)?;
    let x = f32_rows(x)?;
    let (data, m, b) = rows(&x);
    let out = py
        .detach(|| bridge::fit_baseline(&data, m, b, &settings, threads))
        .map_err(to_py)?;
    decomposed_dict(py, out, m)
}

/// Encodes a float32 array with a dictionary of any method: the method's `transform`.
#[pyfunction]
#[pyo3(signature = (method, components, x, mean=None, alpha=None, n_jobs=None))]
fn encode_dictionary<'py>(
    py: Python<'py>,
    method: String,
    components: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    mean: Option<Vec<f32>>,
    alpha: Option<f64>,
    n_jobs: Option<i64>,
) -> PyResult<Bound<'py, PyAny>> {
    let method: Method = method
        .parse()
        .map_err(|e: cox_decomp::Error| PyValueError::new_err(e.to_string()))?;
    let threads = threads(n_jobs)?;
    let c = f32_rows(components)?;
    let (concepts, k, n_features) = rows(&c);
    let dict = ConceptDictionary {
        method,
        k,
        n_features,
        concepts: concepts.into_owned(),
        mean,
        alpha,
    };
    let x = f32_rows(x)?;
    let (data, m, b) = rows(&x);
    let codes = py
        .detach(|| bridge::encode_dictionary(&dict, &data, m, b, threads))
        .map_err(to_py)?;
    Ok(matrix(py, codes, m, k)?.into_any())
}

/// Reads one layer of an activation store written by `coxlmm extract`, verifying every shard
/// against the manifest's lengths and SHA-256 (as `cox_store::read_run` does for the CLI).
/// Returns `(X, ids)`: the `[M, B]` float32 rows and each row's sample id.
#[pyfunction]
#[pyo3(signature = (dir, layer=None))]
fn read_store<'py>(
    py: Python<'py>,
    dir: PathBuf,
    layer: Option<String>,
) -> PyResult<(Bound<'py, PyArray2<f32>>, Bound<'py, PyList>)> {
    let run = py
        .detach(|| cox_store::read_run(&dir, layer.as_deref()))
        .map_err(store_err)?;
    let (m, b) = (run.matrix.rows, run.matrix.cols);
    let x = matrix(py, run.matrix.data, m, b)?;
    Ok((x, PyList::new(py, run.sample_ids)?))
}

/// The sample records of a store (one JSON object per sample, skipped ones included), verified.
#[pyfunction]
fn read_store_samples(py: Python<'_>, dir: PathBuf) -> PyResult<String> {
    let samples = py
        .detach(|| cox_store::read_run_samples(&dir))
        .map_err(store_err)?;
    serde_json::to_string(&samples).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Reads a dictionary file (`<stem>.safetensors` + `<stem>.json`) checked against its sidecar:
/// `(concepts, activations, mean or None, sidecar JSON text)`.
type DictTuple<'py> = (
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray2<f32>>,
    Option<Bound<'py, PyArray1<f32>>>,
    String,
);

#[pyfunction]
fn read_dictionary<'py>(py: Python<'py>, path: PathBuf) -> PyResult<DictTuple<'py>> {
    let file = cox_store::tensor_path(&path);
    let d = py
        .detach(|| cox_store::read_dictionary::<serde_json::Map<String, serde_json::Value>>(&file))
        .map_err(store_err)?;
    let meta = serde_json::to_string(&d.meta).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let c = matrix(py, d.concepts.data, d.concepts.rows, d.concepts.cols)?;
    let a = matrix(
        py,
        d.activations.data,
        d.activations.rows,
        d.activations.cols,
    )?;
    let mean = d.mean.map(|v| PyArray1::from_vec(py, v));
    Ok((c, a, mean, meta))
}

/// Reads an activation matrix file (any 2-D f16/bf16/f32/f64 safetensors tensor) as float32.
#[pyfunction]
#[pyo3(signature = (path, tensor=None))]
fn read_activations<'py>(
    py: Python<'py>,
    path: PathBuf,
    tensor: Option<String>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let f = py
        .detach(|| cox_store::read_activations(&path, tensor.as_deref()))
        .map_err(store_err)?;
    matrix(py, f.matrix.data, f.matrix.rows, f.matrix.cols)
}

/// `cox_snmf::synthetic::token_like`: the benchmark's token-like matrix (`m × b` float32).
#[pyfunction]
#[pyo3(signature = (n_samples, n_features, seed=0))]
fn token_like(
    py: Python<'_>,
    n_samples: usize,
    n_features: usize,
    seed: u64,
) -> PyResult<Bound<'_, PyArray2<f32>>> {
    let spec = cox_snmf::synthetic::TokenLike::reference(n_samples, n_features);
    let x = py.detach(|| cox_snmf::synthetic::token_like(&spec, seed));
    matrix(py, x, n_samples, n_features)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fit_semi_nmf, m)?)?;
    m.add_function(wrap_pyfunction!(encode_semi_nmf, m)?)?;
    m.add_function(wrap_pyfunction!(fit_baseline, m)?)?;
    m.add_function(wrap_pyfunction!(encode_dictionary, m)?)?;
    m.add_function(wrap_pyfunction!(read_store, m)?)?;
    m.add_function(wrap_pyfunction!(read_store_samples, m)?)?;
    m.add_function(wrap_pyfunction!(read_dictionary, m)?)?;
    m.add_function(wrap_pyfunction!(read_activations, m)?)?;
    m.add_function(wrap_pyfunction!(token_like, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
