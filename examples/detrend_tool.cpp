// A binflow tool that calls LAPACK and BLAS in every bin, written against the installed
// public API only: each bin is a batch of synthetic seismic traces (a polynomial drift,
// white noise and one Ricker-wavelet arrival), detrended the way ObsPy's
// Trace.detrend("linear") does it through scipy.signal.detrend: one linear least-squares fit
// for the whole batch, the design matrix against every trace as a right-hand side (dgels),
// the fitted trends subtracted (dgemm), then the zero-lag correlation of every pair of
// detrended traces (dsyrk), which an undetrended drift would make spurious. The three calls
// run on the BLAS's own thread pool (OpenBLAS: pthreads), which binflow caps at the bin's
// thread budget: no fork, so no fork-after-threads hang, and no ranks x cores threads.
// tests/e2e/test_blas_example.py builds it with find_package(binflow) and
// find_package(LAPACK), checks the fit against the injected trends and counts the busy
// threads of every rank from /proc.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <vector>

#include <fmt/format.h>

#include "binflow/bin_context.hpp"
#include "binflow/bins.hpp"
#include "binflow/driver.hpp"
#include "binflow/error.hpp"
#include "binflow/executor.hpp"
#include "binflow/rng.hpp"
#include "binflow/table.hpp"
#include "binflow/tool.hpp"

// The Fortran interfaces of the reference LAPACK/BLAS (LP64), which every BLAS exports; the
// trailing arguments are the hidden lengths of the character arguments (gfortran >= 8). The
// names are the libraries' symbols.
// NOLINTBEGIN(readability-identifier-naming)
extern "C" {
void dgels_(const char* trans, const int* m, const int* n, const int* nrhs, double* a,
            const int* lda, double* b, const int* ldb, double* work, const int* lwork, int* info,
            std::size_t trans_len);
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
            const double* beta, double* c, const int* ldc, std::size_t transa_len,
            std::size_t transb_len);
void dsyrk_(const char* uplo, const char* trans, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* beta, double* c, const int* ldc,
            std::size_t uplo_len, std::size_t trans_len);
}
// NOLINTEND(readability-identifier-naming)

namespace {

// A broadband channel: counts sampled at 100 Hz, unit noise, a drift of a hundred times the
// noise (what a trace looks like before detrending), a 5 Hz Ricker wavelet for the arrival.
constexpr double sampling_rate = 100.0;  // Hz
constexpr double noise_rms = 1.0;        // counts
constexpr double drift_scale = 100.0;    // counts, bound of each trend coefficient
constexpr double wavelet_peak = 5.0;     // Hz
// The wavelet is below 1e-26 of its peak beyond this lag: it is drawn only inside it.
constexpr double wavelet_half_width = 0.5;  // s

void check_lapack(int info, const char* routine) {
  if (info != 0) {
    throw binflow::InternalError(fmt::format("{} failed with info = {}", routine, info));
  }
}

/// C (m x n) = alpha A B + beta C, column-major, no transposes.
void multiply(int m, int n, int k, double alpha, const double* a, const double* b, double beta,
              double* c) {
  dgemm_("N", "N", &m, &n, &k, &alpha, a, &m, b, &k, &beta, c, &m, 1, 1);
}

/// Least squares min ||A X - B|| for every column of B (A is m x n, B is m x nrhs, both
/// column-major and both overwritten, as dgels does); X is left in the first n rows of B.
void least_squares(int m, int n, int nrhs, std::vector<double>& a, std::vector<double>& b) {
  int info = 0;
  int lwork = -1;
  double optimal = 0.0;
  dgels_("N", &m, &n, &nrhs, a.data(), &m, b.data(), &m, &optimal, &lwork, &info, 1);
  check_lapack(info, "dgels (workspace query)");
  lwork = static_cast<int>(optimal);
  std::vector<double> work(static_cast<std::size_t>(lwork));
  dgels_("N", &m, &n, &nrhs, a.data(), &m, b.data(), &m, work.data(), &lwork, &info, 1);
  check_lapack(info, "dgels");
}

/// Lower triangle of C (n x n) = A^T A for A (k x n), column-major.
void gram(int n, int k, const double* a, double* c) {
  const double one = 1.0;
  const double zero = 0.0;
  dsyrk_("L", "T", &n, &k, &one, a, &k, &zero, c, &n, 1, 1);
}

/// The Ricker wavelet of peak frequency `wavelet_peak` at lag `u` seconds, peak value 1.
double ricker(double u) {
  const double x = std::numbers::pi * wavelet_peak * u;
  return (1.0 - 2.0 * x * x) * std::exp(-x * x);
}

class DetrendTool final : public binflow::Tool {
public:
  static constexpr binflow::ToolInfo info{
      "detrend",
      "linear least-squares detrending of synthetic seismic traces (LAPACK), one "
      "batch of traces per bin"};
  DetrendTool() : Tool(info) {}

protected:
  void declare(binflow::ParameterSet& params) override {
    params.add("batches", batches_, "number of batches of traces (bins)",
               binflow::Range<std::int64_t>{1, {}});
    params.add("traces", traces_, "traces per batch (right-hand sides of one fit)",
               binflow::Range<int>{1, 1 << 16});
    params.add("samples", samples_, "samples per trace (at 100 Hz)",
               binflow::Range<int>{16, 1 << 22});
    params.add("order", order_, "degree of the polynomial trend (1: a straight line)",
               binflow::Range<int>{1, 6});
    params.add("snr", snr_, "peak amplitude of the arrival over the noise rms",
               binflow::Range<double>{0.0, 1e6});
  }

  binflow::ToolOutput execute(binflow::RunContext& ctx) override {
    if (static_cast<std::int64_t>(traces_) * samples_ > std::int64_t{1} << 28) {
      throw binflow::UsageError(fmt::format(
          "traces x samples = {} x {} exceeds 2^28 values per batch", traces_, samples_));
    }
    ctx.log().info("{} batches of {} traces x {} samples, trend of degree {}", batches_, traces_,
                   samples_, order_);
    design_ = design_matrix();
    const binflow::Schema schema{
        {"traces", binflow::ColumnType::i64, "", "traces in the batch"},
        {"slope_error_rms", binflow::ColumnType::f64, "counts/s",
         "rms over the batch of fitted - injected trend slope at mid-trace"},
        {"trend_error_rms", binflow::ColumnType::f64, "counts",
         "rms over the batch's samples of fitted - injected trend"},
        {"residual_rms", binflow::ColumnType::f64, "counts", "rms of the detrended traces"},
        {"arrival_error_rms", binflow::ColumnType::f64, "s",
         "rms over the batch of picked - injected arrival (largest detrended sample)"},
        {"correlation_rms", binflow::ColumnType::f64, "",
         "rms of the zero-lag correlation coefficients of distinct detrended traces"},
    };
    binflow::ToolOutput out = binflow::ToolOutput::from(
        ctx.map("batches", binflow::BinPlan::trials(batches_), schema,
                [this](binflow::BinContext& bin) { return run_batch(bin); }));
    // What a check of the results needs besides the parameters (stored with them).
    out.attributes.emplace_back("sampling_rate", fmt::format("{:.17g}", sampling_rate));
    out.attributes.emplace_back("noise_rms", fmt::format("{:.17g}", noise_rms));
    out.attributes.emplace_back("wavelet_peak", fmt::format("{:.17g}", wavelet_peak));
    return out;
  }

private:
  [[nodiscard]] int terms() const { return order_ + 1; }

  /// Normalised time of sample k, in [-1, 1]: every column of the design matrix stays within
  /// [-1, 1], so the fit is well conditioned up to degree 6 (powers of t in seconds would
  /// span twenty orders of magnitude).
  [[nodiscard]] double tau(int k) const { return 2.0 * k / (samples_ - 1) - 1.0; }

  /// samples x terms, column j = tau^j.
  [[nodiscard]] std::vector<double> design_matrix() const {
    std::vector<double> a(static_cast<std::size_t>(samples_) * terms());
    for (int k = 0; k < samples_; ++k) {
      double power = 1.0;
      for (int j = 0; j < terms(); ++j) {
        a[static_cast<std::size_t>(j) * samples_ + k] = power;
        power *= tau(k);
      }
    }
    return a;
  }

  binflow::Row run_batch(binflow::BinContext& ctx) const {
    const int n = samples_;
    const int m = traces_;
    const int p = terms();
    const auto un = static_cast<std::size_t>(n);
    binflow::RngStream& rng = ctx.rng();

    // Drawn in trace order from the bin's stream: the batch depends on (seed, bin) only. The
    // noise is uniform with unit rms: the fit's statistics depend on its variance, not its
    // shape, and a uniform draw costs a quarter of a normal one (Box-Muller), which would
    // make the synthesis rather than the fit the bin's work.
    std::vector<double> coefficients(static_cast<std::size_t>(p) * m);  // p x m
    std::vector<double> arrivals(static_cast<std::size_t>(m));
    std::vector<double> data(un * m);  // n x m, one trace per column
    const double duration = (n - 1) / sampling_rate;
    for (int j = 0; j < m; ++j) {
      double* c = &coefficients[static_cast<std::size_t>(j) * p];
      for (int i = 0; i < p; ++i) c[i] = drift_scale * (2.0 * rng.uniform() - 1.0);
      const double arrival = duration * (0.25 + 0.5 * rng.uniform());
      arrivals[static_cast<std::size_t>(j)] = arrival;
      double* trace = &data[static_cast<std::size_t>(j) * un];
      for (int k = 0; k < n; ++k) {
        trace[k] = noise_rms * std::sqrt(3.0) * (2.0 * rng.uniform() - 1.0);
      }
      const int first =
          std::max(0, static_cast<int>((arrival - wavelet_half_width) * sampling_rate));
      const int last =
          std::min(n, static_cast<int>((arrival + wavelet_half_width) * sampling_rate));
      for (int k = first; k < last; ++k) {
        trace[k] += snr_ * noise_rms * ricker(k / sampling_rate - arrival);
      }
    }
    // trace += A c, the injected trends.
    multiply(n, m, p, 1.0, design_.data(), coefficients.data(), 1.0, data.data());

    std::vector<double> a = design_;
    std::vector<double> solution = data;
    least_squares(n, p, m, a, solution);
    std::vector<double> fitted(static_cast<std::size_t>(p) * m);  // p x m
    for (int j = 0; j < m; ++j) {
      for (int i = 0; i < p; ++i) {
        fitted[static_cast<std::size_t>(j) * p + i] =
            solution[static_cast<std::size_t>(j) * un + i];
      }
    }
    // The detrended traces: data - A x.
    std::vector<double>& detrended = data;
    multiply(n, m, p, -1.0, design_.data(), fitted.data(), 1.0, detrended.data());
    // The trend errors A (x - c), and the slope error d/dt at mid-trace (tau = 0).
    std::vector<double> error(fitted.size());
    double slope_sq = 0.0;
    for (int j = 0; j < m; ++j) {
      for (int i = 0; i < p; ++i) {
        const std::size_t at = static_cast<std::size_t>(j) * p + i;
        error[at] = fitted[at] - coefficients[at];
      }
      const double slope = error[static_cast<std::size_t>(j) * p + 1] * 2.0 / duration;
      slope_sq += slope * slope;
    }
    std::vector<double>& trend_error = solution;
    multiply(n, m, p, 1.0, design_.data(), error.data(), 0.0, trend_error.data());

    double residual_sq = 0.0;
    double trend_sq = 0.0;
    double arrival_sq = 0.0;
    for (int j = 0; j < m; ++j) {
      const double* trace = &detrended[static_cast<std::size_t>(j) * un];
      const double* trend = &trend_error[static_cast<std::size_t>(j) * un];
      int peak = 0;
      for (int k = 0; k < n; ++k) {
        residual_sq += trace[k] * trace[k];
        trend_sq += trend[k] * trend[k];
        if (std::abs(trace[k]) > std::abs(trace[peak])) peak = k;
      }
      const double picked = peak / sampling_rate - arrivals[static_cast<std::size_t>(j)];
      arrival_sq += picked * picked;
    }
    // Zero-lag correlation coefficients r_ij = <d_i, d_j> / (|d_i| |d_j|), i > j.
    std::vector<double> products(static_cast<std::size_t>(m) * m);
    gram(m, n, detrended.data(), products.data());
    const auto um = static_cast<std::size_t>(m);
    double correlation_sq = 0.0;
    for (std::size_t j = 0; j < um; ++j) {
      for (std::size_t i = j + 1; i < um; ++i) {
        const double r =
            products[j * um + i] / std::sqrt(products[i * um + i] * products[j * um + j]);
        correlation_sq += r * r;
      }
    }
    const double pairs = 0.5 * m * (m - 1);
    const double values = static_cast<double>(n) * m;
    const double slope_rms = std::sqrt(slope_sq / m);
    const double residual_rms = std::sqrt(residual_sq / values);
    ctx.log().info("batch {}: {} traces, slope error {:.3g} counts/s, residual rms {:.4f} counts",
                   ctx.bin().index, m, slope_rms, residual_rms);
    return binflow::Row{std::int64_t{m},
                        slope_rms,
                        std::sqrt(trend_sq / values),
                        residual_rms,
                        std::sqrt(arrival_sq / m),
                        pairs > 0 ? std::sqrt(correlation_sq / pairs) : 0.0};
  }

  std::int64_t batches_ = 32;
  int traces_ = 512;
  int samples_ = 2000;
  int order_ = 1;
  double snr_ = 5.0;
  std::vector<double> design_;
};

}  // namespace

int main(int argc, char** argv) {
  binflow::ToolRegistry registry;
  registry.add<DetrendTool>();
  return binflow::run_main(argc, argv, registry);
}
