//! Criterion benchmarks of the solver's phases on token-like synthetic data.
//! The side-by-side comparison with scikit-learn is `cargo xtask bench-snmf`.

use cox_snmf::synthetic::{token_like, TokenLike};
use cox_snmf::{Init, Par, SamplesRef, SemiNmf, SvdMethod};
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let (m, b) = (2000, 512);
    let x = token_like(&TokenLike::reference(m, b), 0);
    let xs = SamplesRef::new(&x, m, b).unwrap();
    let mut g = c.benchmark_group("snmf_2000x512_k20");
    g.sample_size(10);
    g.bench_function("svd_init_randomized", |bn| {
        bn.iter(|| cox_snmf::top_k_svd(xs, 20, SvdMethod::default(), 0, Par::rayon(0)).unwrap())
    });
    let p10 = SemiNmf::params().max_iter(10).tol(0.0).check().unwrap();
    g.bench_function("ten_iterations", |bn| {
        bn.iter(|| p10.fit(xs, Par::rayon(0)).unwrap())
    });
    let fit = SemiNmf::params()
        .check()
        .unwrap()
        .fit(xs, Par::rayon(0))
        .unwrap();
    g.bench_function("encode", |bn| {
        bn.iter(|| {
            fit.dictionary
                .encode(xs, &Default::default(), Par::rayon(0))
                .unwrap()
        })
    });
    let ps = SemiNmf::params().init(Init::Samples).check().unwrap();
    g.bench_function("full_fit_samples_init", |bn| {
        bn.iter(|| ps.fit(xs, Par::rayon(0)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
