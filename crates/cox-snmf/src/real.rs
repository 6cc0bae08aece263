//! The scalar types the solver runs in.

use std::fmt::{Debug, Display};

use faer::Par;

use crate::{
    Dictionary, EncodeParams, Fit, KktReport, Progress, Result, SamplesRef, SvdMethod, TopSvd,
    ValidParams,
};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A real floating-point scalar the solver can run in: `f32` (the reference's precision, the default)
/// or `f64` (for exact tests). Objective values and norms are always accumulated in `f64`.
pub trait Real:
    sealed::Sealed
    + faer::traits::RealField
    + std::ops::Neg<Output = Self>
    + Copy
    + Send
    + Sync
    + Debug
    + Display
    + Default
    + PartialOrd
    + 'static
{
    /// Converts from `f64`, rounding to the nearest representable value.
    fn from_f64(x: f64) -> Self;
    /// Converts to `f64` exactly.
    fn to_f64(self) -> f64;
    /// `true` when the value is neither NaN nor infinite.
    fn is_finite_val(self) -> bool;
    /// Absolute value.
    fn abs_val(self) -> Self;
    /// Square root.
    fn sqrt_val(self) -> Self;
    #[doc(hidden)]
    fn dispatch_fit(
        p: &ValidParams,
        x: SamplesRef<'_, Self>,
        par: Par,
        observer: &mut dyn FnMut(&Progress),
    ) -> Result<Fit<Self>>;
    #[doc(hidden)]
    fn dispatch_encode(
        d: &Dictionary<Self>,
        x: SamplesRef<'_, Self>,
        p: &EncodeParams,
        par: Par,
    ) -> Result<Vec<Self>>;
    #[doc(hidden)]
    fn dispatch_svd(
        x: SamplesRef<'_, Self>,
        k: usize,
        method: SvdMethod,
        seed: u64,
        par: Par,
    ) -> Result<TopSvd<Self>>;
    #[doc(hidden)]
    fn dispatch_kkt(
        x: SamplesRef<'_, Self>,
        d: &Dictionary<Self>,
        codes: &[Self],
        alpha: f64,
    ) -> Result<KktReport>;
    /// The larger of `self` and `other` (NaN-free inputs assumed).
    fn max_val(self, other: Self) -> Self {
        if self >= other {
            self
        } else {
            other
        }
    }
}

macro_rules! impl_real {
    ($t:ty) => {
        impl Real for $t {
            fn dispatch_fit(
                p: &ValidParams,
                x: SamplesRef<'_, Self>,
                par: Par,
                observer: &mut dyn FnMut(&Progress),
            ) -> Result<Fit<Self>> {
                p.fit_generic(x, par, observer)
            }
            fn dispatch_encode(
                d: &Dictionary<Self>,
                x: SamplesRef<'_, Self>,
                p: &EncodeParams,
                par: Par,
            ) -> Result<Vec<Self>> {
                d.encode_generic(x, p, par)
            }
            fn dispatch_svd(
                x: SamplesRef<'_, Self>,
                k: usize,
                method: SvdMethod,
                seed: u64,
                par: Par,
            ) -> Result<TopSvd<Self>> {
                crate::svd::top_k_svd_generic(x, k, method, seed, par)
            }
            fn dispatch_kkt(
                x: SamplesRef<'_, Self>,
                d: &Dictionary<Self>,
                codes: &[Self],
                alpha: f64,
            ) -> Result<KktReport> {
                crate::kkt::kkt_report_generic(x, d, codes, alpha)
            }
            #[inline]
            fn abs_val(self) -> Self {
                self.abs()
            }
            #[inline]
            fn sqrt_val(self) -> Self {
                self.sqrt()
            }
            #[inline]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn is_finite_val(self) -> bool {
                self.is_finite()
            }
        }
    };
}

impl_real!(f32);
impl_real!(f64);
