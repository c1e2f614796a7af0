/* relcal's one compiled kernel: float64 exp in place, four at a time, through
 * glibc's vector math library (libmvec, AVX2).  numpy's float64 exp is scalar
 * on CPUs without AVX-512 (~5 ns a value); this is ~1.5 ns.  libmvec's exp is
 * accurate to a few ulp (measured: <= 3.1 ulp against long double), numpy's to
 * ~0.5 ulp: far inside every tolerance relcal states (NLL to 1e-9).
 *
 * Built by hatch_build.py into relcal/libvexp.so.1, loaded with ctypes by
 * relcal/kernel.py, which falls back to numpy when the library is absent, the
 * CPU lacks AVX2 or RELCAL_KERNEL=0.  A plain C library, not a Python extension:
 * ctypes releases the GIL for the call, so relcal's worker threads run it side
 * by side. */
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

/* glibc's AVX2 variant of exp (x86_64 vector function ABI, glibc >= 2.22) */
__m256d _ZGVdN4v_exp(__m256d);

/* x[i] = exp(x[i]) for i < n.  Every value goes through the same vector
 * function, the last (n mod 4) ones too, padded: a value's exp never depends
 * on where it sits in the array. */
__attribute__((target("avx2,fma"))) void relcal_exp_f64(double *x, ptrdiff_t n)
{
    ptrdiff_t i = 0;
    for (; i + 4 <= n; i += 4)
        _mm256_storeu_pd(x + i, _ZGVdN4v_exp(_mm256_loadu_pd(x + i)));
    if (i < n) {
        double tail[4] = {0.0, 0.0, 0.0, 0.0};
        memcpy(tail, x + i, (size_t)(n - i) * sizeof(double));
        _mm256_storeu_pd(tail, _ZGVdN4v_exp(_mm256_loadu_pd(tail)));
        memcpy(x + i, tail, (size_t)(n - i) * sizeof(double));
    }
}

/* 1 when this CPU can run relcal_exp_f64 */
int relcal_cpu_ok(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
