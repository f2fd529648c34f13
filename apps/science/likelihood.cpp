#include "science/likelihood.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <new>
#include <numbers>
#include <utility>
#include <vector>

#include <Eigen/Dense>
#include <fmt/format.h>

#include "binflow/error.hpp"
#include "binflow/parallel.hpp"
#include "science/dl3_response.hpp"
#include "science/gti.hpp"
#include "science/integrate.hpp"

// Notation (docs/science.md, "Likelihood and fit"): with s = T N0 A(gamma) the predicted
// source counts, mu = T beta B the predicted background counts, p_i = a_i / A the source
// and q_i = b_i / B the background density of event i,
//     lnL = sum_i ln(s p_i + mu q_i) - s - mu.
// In (mu_total = s + mu, f = s / mu_total) the likelihood separates: mu_total = n at the
// optimum and f maximises the concave g(f) = sum_i ln(f p_i + (1 - f) q_i) on [0, 1], so the
// fit with the index fixed is a bracketed one-dimensional Newton solve whose passes over the
// events need divisions only (logarithms only for the reported lnL, TS and the limit).

namespace binflow::science {

namespace detail {

/// Response interpolation in u = ln E for one grid cell, in the form Response uses
/// (log-log for aeff and bkg_rate, linear for psf_sigma); two extra cells stand for below
/// and above the grid (zero aeff and background, the end value of the PSF).
struct Cell {
  double u0 = 0.0;
  double du = 1.0;
  double log_aeff = 0.0;
  double dlog_aeff = 0.0;
  double log_bkg = 0.0;
  double dlog_bkg = 0.0;
  double sigma = 0.0;
  double dsigma = 0.0;
};

struct Interpolated {
  double log_aeff;
  double log_bkg;
  double sigma;
};

struct SourceIntegral {
  double a = 0.0;     // A(gamma) = Int E^-gamma aeff Fpsf dE
  double ubar = 0.0;  // mean of ln E over the predicted source counts = -A'/A
  double var = 0.0;   // their variance = A''/A - ubar^2
};

// The integrals of the model of one bin (of one observation, or the livetime-weighted sum
// over the observations of a bin): the Simpson nodes of A(gamma), node_w = weight * aeff *
// Fpsf * E at the shared node_u, and B = pi theta_max^2 Int bkg_rate dE.
struct ModelIntegrals {
  std::vector<double> node_w;
  double bkg_integral = 0.0;
  SourceIntegral reference;  // at gamma_ref
};

struct FitTables {
  FitSettings settings;
  std::vector<double> log_energy;  // the IRF grid in ln E
  std::vector<Cell> cells;         // grid cells, then below, then above
  std::vector<int> bucket_cell;    // uniform buckets in ln E -> a cell at or left of them
  double bucket_scale = 0.0;
  double u_lo = 0.0;
  double u_hi = 0.0;
  double tol_lo = 0.0;
  double tol_hi = 0.0;
  // Simpson nodes in ln E over [emin, emax] (simpson_log's), shared by every observation.
  std::vector<double> node_u;
  double simpson_factor = 0.0;  // h / 3
  double ul_delta = 0.0;        // the chi^2 quantile of the limit
  // One observation with a Gaussian PSF (a Response; the cell tables above) ...
  ModelIntegrals model;
  // ... or several DL3 observations, each with its integrals (the cell tables unused).
  std::vector<dl3::ObservationResponse> observations;
  std::vector<ModelIntegrals> observation_models;

  FitTables(const Response& response, const FitSettings& s);
  FitTables(std::vector<dl3::ObservationResponse> responses, const FitSettings& s);
  [[nodiscard]] bool per_observation() const { return !observations.empty(); }
  [[nodiscard]] Interpolated interpolate(double u) const;
  // Simpson's 1, 4, 2, ..., 4, 1 at node i.
  [[nodiscard]] static double simpson_weight(std::size_t i) {
    if (i == 0 || i == static_cast<std::size_t>(simpson_intervals)) return 1.0;
    return i % 2 == 1 ? 4.0 : 2.0;
  }

private:
  void set_nodes();
};

}  // namespace detail

namespace {

using detail::FitTables;
using detail::ModelIntegrals;
using detail::SourceIntegral;

constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr double inf = std::numeric_limits<double>::infinity();
constexpr double grid_tolerance = 1e-12;  // SCIENCE.md section 1, as in Response
// Partial sums are formed per block of this many events and added in block order, so the
// result does not depend on the number of threads.
constexpr std::size_t block_size = 2048;
// Below this many blocks a parallel region costs more than it saves (about 1 us each).
constexpr std::size_t min_parallel_blocks = 4;
constexpr int max_iterations = 100;
// Convergence: a Newton step below 1e-10 (relative) leaves an error of order its square;
// a bisection stops when the bracket is below 1e-13.
constexpr double newton_tolerance = 1e-10;
constexpr double bracket_tolerance = 1e-13;
// The limit's Newton steps: 1e-8 s (the limit's equation then holds to 1e-6 in 2 ln L, far
// inside SCIENCE.md's 1e-3 on the limit) takes one pass over the events, with a logarithm
// per event, fewer than 1e-10 in most bins.
constexpr double limit_newton_tolerance = 1e-8;

// 64-byte aligned storage: a vectorised loop then peels the same way in every run, so the
// rounding of its sums does not depend on where malloc put the column. resize() leaves new
// elements uninitialised (default-initialised): every column is written before it is read,
// and zero-filling five columns per bin showed in the profile.
template <class T>
struct AlignedAllocator {
  using value_type = T;
  static constexpr std::align_val_t alignment{64};
  AlignedAllocator() = default;
  template <class U>
  explicit AlignedAllocator(const AlignedAllocator<U>& /*other*/) {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), alignment)); }
  void deallocate(T* p, std::size_t /*n*/) { ::operator delete(p, alignment); }
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  friend bool operator==(const AlignedAllocator&, const AlignedAllocator&) { return true; }
};
using Column = std::vector<double, AlignedAllocator<double>>;

// ---------------------------------------------------------------------------------------
// Blocks: the deterministic parallel sums.

class Blocks {
public:
  Blocks(std::size_t n, int threads)
      : n_(n),
        count_((n + block_size - 1) / block_size),
        threads_(count_ >= min_parallel_blocks ? threads : std::min(threads, 1)) {}

  // kernel(begin, end) -> std::array<double, K>: partial sums of one block. The serial
  // and the parallel path call the same out-of-line kernel on the same blocks.
  template <std::size_t K, class Kernel>
  std::array<double, K> sum(const Kernel& kernel) const {
    return ordered_block_reduce(
        threads_, static_cast<std::int64_t>(count_),
        [this, &kernel](std::int64_t b) { return kernel(begin(b), end(b)); },
        [](std::array<double, K>& total, const std::array<double, K>& part) {
          for (std::size_t k = 0; k < K; ++k) total[k] += part[k];
        });
  }

  // kernel(begin, end): element-wise work without a result.
  template <class Kernel>
  void each(const Kernel& kernel) const {
    parallel_for(threads_, static_cast<std::int64_t>(count_),
                 [this, &kernel](std::int64_t b) { kernel(begin(b), end(b)); });
  }

  [[nodiscard]] std::size_t begin(std::int64_t block) const {
    return static_cast<std::size_t>(block) * block_size;
  }
  [[nodiscard]] std::size_t end(std::int64_t block) const {
    return std::min(n_, (static_cast<std::size_t>(block) + 1) * block_size);
  }

private:
  std::size_t n_;
  std::size_t count_;
  int threads_;
};

// ---------------------------------------------------------------------------------------
// Block kernels (out of line: see Blocks::sum).

struct EventColumns {
  Column u;     // ln E
  Column lc;    // ln aeff - theta^2 / (2 sigma^2)
  Column norm;  // 1 / (2 pi sigma^2), deg^-2
  Column q;     // b_i / B
  Column p;     // a_i(gamma) / A(gamma)
  void resize(std::size_t n) {
    u.resize(n);
    lc.resize(n);
    norm.resize(n);
    q.resize(n);
    p.resize(n);
  }
};

// glibc's log costs about 50 instructions a call and was the fit's largest single cost;
// Eigen's vectorised log (Cephes' rational form, two values per SSE2 instruction, 0 -> -inf)
// takes the values of a chunk at once. The sums stay in a fixed order: per chunk, chunks in
// order, so they do not depend on threads either.
constexpr std::size_t log_chunk = 256;
using LogChunk = std::array<double, log_chunk>;

double sum_of_logs(const LogChunk& x, std::size_t n) {
  return Eigen::Map<const Eigen::ArrayXd>(x.data(), static_cast<Eigen::Index>(n)).log().sum();
}

// Sum over [begin, end) of ln(value(i)): the values a chunk at a time.
template <class Value>
double sum_log_over(std::size_t begin, std::size_t end, const Value& value) {
  alignas(64) LogChunk x;
  double sum = 0.0;
  for (std::size_t c = begin; c < end; c += log_chunk) {
    const std::size_t n = std::min(log_chunk, end - c);
    for (std::size_t j = 0; j < n; ++j) x[j] = value(c + j);
    sum += sum_of_logs(x, n);
  }
  return sum;
}

// Returns the number of events outside the response and the sum of ln(b) over the others.
[[gnu::noinline]] std::array<double, 2> prepare_block(const FitTables& t, double inv_bkg,
                                                      const double* energy, const double* theta,
                                                      EventColumns& c, std::size_t begin,
                                                      std::size_t end) {
  double outside = 0.0;
  double sum_log_b = 0.0;
  const auto n = static_cast<Eigen::Index>(end - begin);
  Eigen::Map<Eigen::ArrayXd>(c.u.data() + begin, n) =
      Eigen::Map<const Eigen::ArrayXd>(energy + begin, n).log();
  for (std::size_t i = begin; i < end; ++i) {
    const double u = c.u[i];
    const detail::Interpolated r = t.interpolate(u);
    const double s2 = r.sigma * r.sigma;
    c.lc[i] = r.log_aeff - theta[i] * theta[i] / (2.0 * s2);
    c.norm[i] = 1.0 / (2.0 * std::numbers::pi * s2);
    c.q[i] = std::exp(r.log_bkg) * inv_bkg;
    if (r.log_aeff == -inf && r.log_bkg == -inf) {
      outside += 1.0;
    } else {
      sum_log_b += r.log_bkg;
    }
  }
  return {outside, sum_log_b};
}

// The same for the events of one DL3 observation, stored from `offset` on: its livetime
// share `weight` = T_o / T goes into lc and q (docs/science.md, "For the tools"); the PSF's
// density is in lc, so norm is 1.
[[gnu::noinline]] std::array<double, 2> prepare_observation_block(
    const dl3::ObservationResponse& r, double weight, double inv_bkg, const double* energy,
    const double* theta, EventColumns& c, std::size_t offset, std::size_t begin, std::size_t end) {
  double outside = 0.0;
  double sum_log_b = 0.0;
  for (std::size_t i = begin; i < end; ++i) {
    const double e = energy[i];
    const double a = r.aeff(e) * r.psf_density(e, theta[i]);
    const double b = weight * r.bkg_rate_per_livetime(e);
    const std::size_t k = offset + i;
    c.u[k] = std::log(e);
    c.lc[k] = a > 0.0 ? std::log(weight * a) : -inf;
    c.norm[k] = 1.0;
    c.q[k] = b * inv_bkg;
    if (a == 0.0 && b == 0.0) {
      outside += 1.0;
    } else {
      sum_log_b += std::log(b);
    }
  }
  return {outside, sum_log_b};
}

[[gnu::noinline]] void source_density_block(EventColumns& c, double gamma, double inv_a,
                                            std::size_t begin, std::size_t end) {
  const double* u = c.u.data();
  const double* lc = c.lc.data();
  const double* norm = c.norm.data();
  double* p = c.p.data();
  for (std::size_t i = begin; i < end; ++i) p[i] = std::exp(lc[i] - gamma * u[i]) * norm[i] * inv_a;
}

// g'(f) and -g''(f) of g(f) = sum ln(f p + (1 - f) q).
[[gnu::noinline]] std::array<double, 2> fraction_block(const double* p, const double* q, double f,
                                                       std::size_t begin, std::size_t end) {
  double d1 = 0.0;
  double d2 = 0.0;
#pragma omp simd reduction(+ : d1, d2)
  for (std::size_t i = begin; i < end; ++i) {
    const double d = p[i] - q[i];
    const double r = d / (q[i] + f * d);
    d1 += r;
    d2 += r * r;
  }
  return {d1, d2};
}

// sum q/m and sum (q/m)^2 with m = s p + mu q: the background score at fixed s.
[[gnu::noinline]] std::array<double, 2> background_block(const double* p, const double* q, double s,
                                                         double mu, std::size_t begin,
                                                         std::size_t end) {
  double d1 = 0.0;
  double d2 = 0.0;
#pragma omp simd reduction(+ : d1, d2)
  for (std::size_t i = begin; i < end; ++i) {
    const double r = q[i] / (s * p[i] + mu * q[i]);
    d1 += r;
    d2 += r * r;
  }
  return {d1, d2};
}

// sum ln(m_hat / m) and sum p / m with m = s p + mu q: the limit's equation and slope.
[[gnu::noinline]] std::array<double, 2> limit_block(const double* p, const double* q, double s,
                                                    double mu, double s_hat, double mu_hat,
                                                    std::size_t begin, std::size_t end) {
  double sp = 0.0;
  const double lr = sum_log_over(begin, end, [&](std::size_t i) {
    const double m = s * p[i] + mu * q[i];
    sp += p[i] / m;
    return (s_hat * p[i] + mu_hat * q[i]) / m;
  });
  return {lr, sp};
}

// At fixed N0 with the index free (the limit's profile in gamma), with w = s p / m, x = q / m:
// sums of u w, u^2 w, u^2 w^2, u w x and x^2 (the gamma and beta derivatives of lnL).
[[gnu::noinline]] std::array<double, 5> index_at_fixed_n0_block(const EventColumns& c, double s,
                                                                double mu, std::size_t begin,
                                                                std::size_t end) {
  std::array<double, 5> r{};
  for (std::size_t i = begin; i < end; ++i) {
    const double sp = s * c.p[i];
    const double m = sp + mu * c.q[i];
    const double w = sp / m;
    const double x = c.q[i] / m;
    const double u = c.u[i];
    r[0] += u * w;
    r[1] += u * u * w;
    r[2] += u * u * w * w;
    r[3] += u * w * x;
    r[4] += x * x;
  }
  return r;
}

[[gnu::noinline]] std::array<double, 1> log_block(const double* p, const double* q, double s,
                                                  double mu, std::size_t begin, std::size_t end) {
  return {sum_log_over(begin, end, [&](std::size_t i) { return s * p[i] + mu * q[i]; })};
}

// Derivatives of g(f, gamma) in gamma, with v = ubar - u = d ln p / d gamma and
// d v / d gamma = -var: sums of (p-q)^2/m^2, p v/m, (p-q) p v/m^2, p (v^2-var)/m, p^2 v^2/m^2.
[[gnu::noinline]] std::array<double, 5> index_block(const EventColumns& c, double f, double ubar,
                                                    double var, std::size_t begin,
                                                    std::size_t end) {
  std::array<double, 5> s{};
  for (std::size_t i = begin; i < end; ++i) {
    const double p = c.p[i];
    const double d = p - c.q[i];
    const double m = c.q[i] + f * d;
    const double v = ubar - c.u[i];
    const double x = d / m;
    const double y = p * v / m;
    s[0] += x * x;
    s[1] += y;
    s[2] += x * y;
    s[3] += p * (v * v - var) / m;
    s[4] += y * y;
  }
  return s;
}

// The sums of the gradient and Hessian in (n0, gamma, beta), with x = a/m, y = b/m:
// x, u x, u^2 x, y, x^2, u x^2, u^2 x^2, x y, u x y, y^2 and, when asked, ln(T m).
template <bool WithLnl>
[[gnu::noinline]] std::array<double, 11> derivative_block(const EventColumns& c, double n0a,
                                                          double a, double betab, double b,
                                                          double livetime, std::size_t begin,
                                                          std::size_t end) {
  std::array<double, 11> s{};
  for (std::size_t i = begin; i < end; ++i) {
    const double m = n0a * c.p[i] + betab * c.q[i];
    const double x = a * c.p[i] / m;
    const double y = b * c.q[i] / m;
    const double u = c.u[i];
    s[0] += x;
    s[1] += u * x;
    s[2] += u * u * x;
    s[3] += y;
    s[4] += x * x;
    s[5] += u * x * x;
    s[6] += u * u * x * x;
    s[7] += x * y;
    s[8] += u * x * y;
    s[9] += y * y;
  }
  if constexpr (WithLnl) {
    s[10] = sum_log_over(begin, end,
                         [&](std::size_t i) { return livetime * (n0a * c.p[i] + betab * c.q[i]); });
  }
  return s;
}

// ---------------------------------------------------------------------------------------
// One-dimensional bracketed Newton.

struct Slope {
  double d = 0.0;      // first derivative of the function maximised
  double dd = 0.0;     // second derivative
  bool usable = true;  // false: the point lies beyond the optimum in a flat region
};

struct Argmax {
  double x = nan;
  int iterations = 0;
  bool converged = false;
};

// When a one-dimensional search stops: after a Newton step below newton * max(|x|, floor)
// (the error left is of the order of its square) or when the bracket is below `bracket`.
struct Tolerance {
  double newton = newton_tolerance;
  double floor = 0.0;
  double bracket = 0.0;
};

// Maximises a smooth function with a single maximum on [lo, hi] from its derivatives:
// Newton steps inside the bracket of the sign change of the derivative, the untested bound
// when Newton leaves [lo, hi] (optima on a bound are found in one step), bisection otherwise.
template <class Eval>
Argmax maximise_1d(const Eval& eval, double lo, double hi, double x0, const Tolerance& tol) {
  double a = lo;
  double b = hi;
  double x = std::clamp(x0, lo, hi);
  double good = nan;  // the last usable point
  bool lo_tested = false;
  bool hi_tested = false;
  for (int it = 1; it <= max_iterations; ++it) {
    const Slope s = eval(x);
    if (!s.usable) {
      if (std::isnan(good)) return {x, it, true};
      (x > good ? b : a) = x;
      if (std::abs(x - good) <= tol.bracket) return {good, it, true};
      x = 0.5 * (good + x);
      continue;
    }
    if (std::isnan(s.d)) return {x, it, false};
    good = x;
    lo_tested = lo_tested || x == lo;
    hi_tested = hi_tested || x == hi;
    if (s.d == 0.0 || (s.d > 0.0 && x == hi) || (s.d < 0.0 && x == lo)) return {x, it, true};
    (s.d > 0.0 ? a : b) = x;
    double next = s.dd < 0.0 && std::isfinite(s.d) && std::isfinite(s.dd) ? x - s.d / s.dd : nan;
    // Before the bracket test: a step below one ulp leaves next == x == a bracket end.
    if (std::abs(next - x) <= tol.newton * std::max(std::abs(x), tol.floor)) {
      return {std::clamp(next, lo, hi), it, true};
    }
    if (!(next > a && next < b)) {
      const bool test_bound = s.d > 0.0 ? b == hi && !hi_tested : a == lo && !lo_tested;
      next = test_bound ? (s.d > 0.0 ? hi : lo) : 0.5 * (a + b);
    }
    if (b - a <= tol.bracket) return {next, it, true};
    x = next;
  }
  return {x, max_iterations, false};
}

// ---------------------------------------------------------------------------------------
// The events of one bin in the form the fit uses.

SourceIntegral source_integral(const FitTables& t, const ModelIntegrals& m, double gamma) {
  if (gamma == t.settings.gamma_ref && m.reference.a > 0.0) return m.reference;
  double s0 = 0.0;
  double s1 = 0.0;
  double s2 = 0.0;
  for (std::size_t k = 0; k < t.node_u.size(); ++k) {
    const double u = t.node_u[k];
    const double w = m.node_w[k] * std::exp(-gamma * u);
    s0 += w;
    s1 += w * u;
    s2 += w * u * u;
  }
  if (!(s0 > 0.0)) return {0.0, nan, nan};
  const double ubar = s1 / s0;
  return {s0 * t.simpson_factor, ubar, s2 / s0 - ubar * ubar};
}

// The parts of a bin's events: one of observation 0 when it has none.
std::vector<RoiEvents::Part> parts_of(const RoiEvents& events) {
  if (!events.parts.empty()) return events.parts;
  return {{0, events.energy.size(), events.livetime}};
}

// The integrals of a bin's model: those of the one observation, or the sum over the
// observations of the bin weighted by their livetime share T_o / T.
ModelIntegrals bin_model(const FitTables& t, const RoiEvents& events) {
  if (!t.per_observation()) return t.model;
  ModelIntegrals m;
  m.node_w.assign(t.node_u.size(), 0.0);
  if (!(events.livetime > 0.0)) return m;
  for (const RoiEvents::Part& part : parts_of(events)) {
    const double weight = part.livetime / events.livetime;
    if (weight == 0.0) continue;
    const ModelIntegrals& o = t.observation_models[part.observation];
    for (std::size_t k = 0; k < m.node_w.size(); ++k) m.node_w[k] += weight * o.node_w[k];
    m.bkg_integral += weight * o.bkg_integral;
  }
  m.reference = source_integral(t, m, t.settings.gamma_ref);
  return m;
}

// d/dgamma of Int_emin^emax E^-gamma dE = -Int u e^(g u) du over [ln emin, ln emax], g = 1 - gamma.
double power_law_integral_dgamma(double gamma, double emin, double emax) {
  const double g = 1.0 - gamma;
  const double ua = std::log(emin);
  const double ub = std::log(emax);
  if (std::abs(g) * std::max(std::abs(ua), std::abs(ub)) < 1e-3) {
    // Series in g: the closed form cancels catastrophically near gamma = 1.
    double sum = 0.0;
    double term = 1.0;  // g^k / k!
    for (int k = 0; k < 12; ++k) {
      sum += term * (std::pow(ub, k + 2) - std::pow(ua, k + 2)) / (k + 2);
      term *= g / (k + 1);
    }
    return -sum;
  }
  const auto primitive = [g](double u) { return std::exp(g * u) * (u / g - 1.0 / (g * g)); };
  return -(primitive(ub) - primitive(ua));
}

// One bin's events and model during its fit. `model` (bin_model) must outlive the Bin.
class Bin {
public:
  Bin(const FitTables& t, const ModelIntegrals& model, const RoiEvents& events, int threads)
      : t_(t), model_(model), livetime_(events.livetime), roi_events_(events.energy.size()) {
    c_.resize(events.energy.size());
    const auto sums = t.per_observation() ? prepare_observations(events, threads)
                                          : prepare_one(events, threads);
    outside_ = static_cast<std::size_t>(sums[0]);
    if (outside_ > 0) drop_outside();
    blocks_ = Blocks(c_.u.size(), threads);
    sum_log_q_ = sums[1] - count() * std::log(bkg_integral());
  }

  [[nodiscard]] std::size_t n() const { return c_.u.size(); }
  [[nodiscard]] double count() const { return static_cast<double>(n()); }
  [[nodiscard]] std::size_t outside() const { return outside_; }
  [[nodiscard]] std::size_t roi_events() const { return roi_events_; }
  [[nodiscard]] double livetime() const { return livetime_; }
  [[nodiscard]] double bkg_integral() const { return model_.bkg_integral; }
  [[nodiscard]] const SourceIntegral& source() const { return source_; }
  [[nodiscard]] double gamma() const { return gamma_; }

  void set_gamma(double gamma) {
    if (gamma == gamma_) return;
    gamma_ = gamma;
    source_ = source_integral(t_, model_, gamma);
    if (!(source_.a > 0.0)) return;
    const double inv_a = 1.0 / source_.a;
    blocks_.each(
        [&](std::size_t b, std::size_t e) { source_density_block(c_, gamma, inv_a, b, e); });
  }

  [[nodiscard]] Slope fraction_slope(double f) const {
    const auto s = blocks_.sum<2>([&](std::size_t b, std::size_t e) {
      return fraction_block(c_.p.data(), c_.q.data(), f, b, e);
    });
    return {s[0], -s[1]};
  }

  [[nodiscard]] Argmax solve_fraction(double f0) const {
    return maximise_1d([this](double f) { return fraction_slope(f); }, 0.0, 1.0, f0,
                       {newton_tolerance, 0.0, bracket_tolerance});
  }

  // The background counts maximising lnL at fixed source counts s (bracket [0, n]: the
  // score sum q/(s p + mu q) - 1 is <= n/mu - 1).
  [[nodiscard]] Argmax solve_background(double s, double mu0) const {
    const auto slope = [&](double mu) {
      const auto r = blocks_.sum<2>([&](std::size_t b, std::size_t e) {
        return background_block(c_.p.data(), c_.q.data(), s, mu, b, e);
      });
      return Slope{r[0] - 1.0, -r[1]};
    };
    return maximise_1d(slope, 0.0, count(), mu0,
                       {newton_tolerance, 0.0, bracket_tolerance * count()});
  }

  // Derivatives in gamma of h(gamma) = max_f g(f, gamma) at the optimum f of this gamma.
  [[nodiscard]] Slope index_slope(double f) const {
    const auto s = blocks_.sum<5>([&](std::size_t b, std::size_t e) {
      return index_block(c_, f, source_.ubar, source_.var, b, e);
    });
    const double g_gamma = f * s[1];
    const double g_gg = f * s[3] - f * f * s[4];
    if (f >= 1.0) return {g_gamma, g_gg};
    const double g_fg = s[1] - f * s[2];
    return {g_gamma, g_gg + g_fg * g_fg / s[0]};  // g_ff = -s[0]
  }

  [[nodiscard]] double sum_log(double s, double mu) const {
    return blocks_.sum<1>([&](std::size_t b, std::size_t e) {
      return log_block(c_.p.data(), c_.q.data(), s, mu, b, e);
    })[0];
  }

  // 2 (lnL_best - lnL_null) from lnL_best: the null (s = 0) has mu = n, so
  // lnL_null = sum ln(n q) - n. Exactly 0 when the best fit is the null hypothesis.
  [[nodiscard]] double ts(double f, double lnl) const {
    if (f == 0.0) return 0.0;
    const double n = count();
    return std::max(0.0, 2.0 * (lnl + n - n * std::log(n) - sum_log_q_));
  }

  [[nodiscard]] std::array<double, 2> limit_terms(double s, double mu, double s_hat,
                                                  double mu_hat) const {
    return blocks_.sum<2>([&](std::size_t b, std::size_t e) {
      return limit_block(c_.p.data(), c_.q.data(), s, mu, s_hat, mu_hat, b, e);
    });
  }

  // d/dgamma and d2/dgamma2 of the profile over mu of lnL at fixed source counts per unit
  // exposure: s = T N0 A(gamma) follows gamma (ds/dgamma = -s ubar, d ubar/dgamma = -var),
  // mu at its optimum for this gamma (the envelope theorem gives the first derivative; the
  // second subtracts the gamma-mu coupling).
  [[nodiscard]] Slope index_slope_at_fixed_n0(double s, double mu) const {
    const auto r = blocks_.sum<5>(
        [&](std::size_t b, std::size_t e) { return index_at_fixed_n0_block(c_, s, mu, b, e); });
    const double d1 = s * source_.ubar - r[0];
    const double h_gg = r[1] - r[2] - s * (source_.ubar * source_.ubar + source_.var);
    const double h_gm = r[3];
    const double h_mm = -r[4];
    // mu on its bound 0 (no background left) does not follow gamma: no coupling then.
    return {d1, mu > 0.0 && h_mm < 0.0 ? h_gg - h_gm * h_gm / h_mm : h_gg};
  }

  // with_lnl = false leaves lnl at 0 (the fit has it already).
  [[nodiscard]] LikelihoodDerivatives derivatives(double n0, double beta, bool with_lnl) const;

private:
  std::array<double, 2> prepare_one(const RoiEvents& events, int threads) {
    const double* energy = events.energy.data();
    const double* theta = events.theta.data();
    const double inv_bkg = 1.0 / bkg_integral();
    return Blocks(events.energy.size(), threads).sum<2>([&](std::size_t b, std::size_t e) {
      return prepare_block(t_, inv_bkg, energy, theta, c_, b, e);
    });
  }

  // Part by part, each with its own blocks (sums added in part order: deterministic).
  std::array<double, 2> prepare_observations(const RoiEvents& events, int threads) {
    std::array<double, 2> total{};
    const double inv_bkg = 1.0 / bkg_integral();
    std::size_t offset = 0;
    for (const RoiEvents::Part& part : parts_of(events)) {
      const dl3::ObservationResponse& r = t_.observations[part.observation];
      const double weight = part.livetime / livetime_;
      const double* energy = events.energy.data() + offset;
      const double* theta = events.theta.data() + offset;
      const auto sums = Blocks(part.count, threads).sum<2>([&](std::size_t b, std::size_t e) {
        return prepare_observation_block(r, weight, inv_bkg, energy, theta, c_, offset, b, e);
      });
      total[0] += sums[0];
      total[1] += sums[1];
      offset += part.count;
    }
    return total;
  }

  void drop_outside() {
    std::size_t k = 0;
    for (std::size_t i = 0; i < c_.u.size(); ++i) {
      if (c_.lc[i] == -inf && c_.q[i] == 0.0) continue;
      c_.u[k] = c_.u[i];
      c_.lc[k] = c_.lc[i];
      c_.norm[k] = c_.norm[i];
      c_.q[k] = c_.q[i];
      ++k;
    }
    c_.resize(k);
  }

  const FitTables& t_;
  const ModelIntegrals& model_;
  double livetime_;
  std::size_t roi_events_;
  std::size_t outside_ = 0;
  double sum_log_q_ = 0.0;
  EventColumns c_;
  Blocks blocks_{0, 1};
  double gamma_ = nan;
  SourceIntegral source_;
};

LikelihoodDerivatives Bin::derivatives(double n0, double beta, bool with_lnl) const {
  const double a = source_.a;
  const double b = bkg_integral();
  const double tl = livetime_;
  const auto s = blocks_.sum<11>([&](std::size_t bb, std::size_t e) {
    return with_lnl ? derivative_block<true>(c_, n0 * a, a, beta * b, b, tl, bb, e)
                    : derivative_block<false>(c_, n0 * a, a, beta * b, b, tl, bb, e);
  });
  const double da = -a * source_.ubar;                                 // A'
  const double dda = a * (source_.var + source_.ubar * source_.ubar);  // A''
  LikelihoodDerivatives d;
  d.lnl = s[10] - tl * (n0 * a + beta * b);
  d.gradient = {s[0] - tl * a, -n0 * s[1] - tl * n0 * da, s[3] - tl * b};
  auto& h = d.hessian;
  h[0][0] = -s[4];
  h[0][1] = -s[1] + n0 * s[5] - tl * da;
  h[0][2] = -s[7];
  h[1][1] = n0 * s[2] - n0 * n0 * s[6] - tl * n0 * dda;
  h[1][2] = n0 * s[8];
  h[2][2] = -s[9];
  h[1][0] = h[0][1];
  h[2][0] = h[0][2];
  h[2][1] = h[1][2];
  return d;
}

// ---------------------------------------------------------------------------------------
// The fit.

struct Optimum {
  double f = nan;
  int iterations = 0;
  bool converged = false;
  std::string message;
};

// Start from the excess over the background model at beta = 1 (T B expected counts).
double start_fraction(const Bin& bin) {
  const double background = bin.livetime() * bin.bkg_integral();
  return std::clamp(1.0 - background / bin.count(), 0.05, 0.95);
}

Optimum fit_fixed(Bin& bin, const FitTables& t) {
  bin.set_gamma(t.settings.gamma_ref);
  const Argmax r = bin.solve_fraction(start_fraction(bin));
  Optimum o{r.x, r.iterations, r.converged, ""};
  if (!r.converged) {
    o.message = fmt::format("the source fraction did not converge in {} iterations", r.iterations);
  }
  return o;
}

// h(gamma) = max_f g(f, gamma) by a bracketed Newton in gamma; where the optimal f is 0 the
// index has no effect (h is flat), which the Newton steps treat as overshooting.
Optimum fit_free(Bin& bin, const FitTables& t) {
  const FitSettings& s = t.settings;
  double f = start_fraction(bin);
  bool inner_failed = false;
  int evaluations = 0;
  const auto eval = [&](double gamma) {
    ++evaluations;
    bin.set_gamma(gamma);
    const Argmax r = bin.solve_fraction(f == 0.0 ? 0.5 : f);
    if (!r.converged) {
      inner_failed = true;
      return Slope{0.0, 0.0, true};  // a zero slope ends the search
    }
    if (r.x == 0.0) {
      if (evaluations == 1) f = 0.0;
      return Slope{0.0, 0.0, false};
    }
    f = r.x;
    return bin.index_slope(f);
  };
  const Argmax g = maximise_1d(eval, s.gamma_min, s.gamma_max, s.gamma_ref,
                               {newton_tolerance, 1.0, bracket_tolerance});
  Optimum o{0.0, g.iterations, g.converged && !inner_failed, ""};
  if (inner_failed) {
    o.message =
        fmt::format("the source fraction did not converge in {} iterations", max_iterations);
    return o;
  }
  if (!g.converged) {
    o.message = fmt::format("the index did not converge in {} iterations", g.iterations);
    return o;
  }
  if (f == 0.0 && evaluations == 1) return o;  // N0 = 0 at gamma_ref: the index is irrelevant
  // The returned index is the last Newton step, not yet evaluated.
  bin.set_gamma(g.x);
  const Argmax r = bin.solve_fraction(f);
  o.f = r.x;
  if (!r.converged) {
    o.converged = false;
    o.message =
        fmt::format("the source fraction did not converge in {} iterations", max_iterations);
  }
  return o;
}

// Covariance from the inverse observed information over the free parameters; false when
// the information is singular or not positive definite.
bool covariance(const LikelihoodDerivatives& d, const std::array<bool, 3>& free,
                Eigen::Matrix3d& cov) {
  std::vector<std::size_t> index;
  for (std::size_t i = 0; i < 3; ++i) {
    if (free[i]) index.push_back(i);
  }
  const auto k = static_cast<Eigen::Index>(index.size());
  Eigen::MatrixXd info(k, k);
  for (Eigen::Index i = 0; i < k; ++i) {
    for (Eigen::Index j = 0; j < k; ++j) info(i, j) = -d.hessian[index[i]][index[j]];
  }
  if (!info.allFinite() || (info.diagonal().array() <= 0.0).any()) return false;
  // Scale to unit diagonal: N0 (1e-11) and beta (1) differ by 22 orders in the information.
  const Eigen::VectorXd scale = info.diagonal().cwiseSqrt().cwiseInverse();
  const Eigen::MatrixXd unit = scale.asDiagonal() * info * scale.asDiagonal();
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(unit);
  const Eigen::VectorXd& values = eigen.eigenvalues();
  // A condition number of 1e12 is singular for the errors' purpose (one event, or a
  // parameter the data do not constrain).
  if (eigen.info() != Eigen::Success || !(values.minCoeff() > 1e-12 * values.maxCoeff())) {
    return false;
  }
  const Eigen::MatrixXd inverse =
      eigen.eigenvectors() * values.cwiseInverse().asDiagonal() * eigen.eigenvectors().transpose();
  cov.setConstant(nan);
  for (Eigen::Index i = 0; i < k; ++i) {
    for (Eigen::Index j = 0; j < k; ++j) {
      cov(static_cast<Eigen::Index>(index[i]), static_cast<Eigen::Index>(index[j])) =
          scale(i) * inverse(i, j) * scale(j);
    }
  }
  return true;
}

void set_errors(const LikelihoodDerivatives& d, const FitTables& t, FitResult& r) {
  const bool index_free = t.settings.free_index && r.n0 > 0.0;
  Eigen::Matrix3d cov;
  if (!covariance(d, {true, index_free, true}, cov)) {
    r.n0_err = r.beta_err = r.flux_err = nan;
    return;
  }
  r.n0_err = std::sqrt(cov(0, 0));
  r.beta_err = std::sqrt(cov(2, 2));
  const double flux_n0 = power_law_integral(1.0, r.gamma, t.settings.emin, t.settings.emax);
  double var = flux_n0 * flux_n0 * cov(0, 0);
  if (index_free) {
    r.gamma_err = std::sqrt(cov(1, 1));
    const double flux_gamma =
        r.n0 * power_law_integral_dgamma(r.gamma, t.settings.emin, t.settings.emax);
    var += 2.0 * flux_n0 * flux_gamma * cov(0, 1) + flux_gamma * flux_gamma * cov(1, 1);
  }
  r.flux_err = std::sqrt(std::max(var, 0.0));
}

// Where the limit's search starts: the parabola of the profile at the optimum, from the
// information in (N0, beta) at fixed index, and the slope d mu / d s of the profiled
// background counts there (implicit function of d lnL / d beta = 0).
struct LimitStart {
  double s = nan;
  double mu_slope = 0.0;
};

LimitStart limit_start(const LikelihoodDerivatives& d, const Bin& bin, double s_hat,
                       double delta) {
  const auto& h = d.hessian;
  const double det = h[0][0] * h[2][2] - h[0][2] * h[0][2];
  const double to_counts = bin.livetime() * bin.source().a;  // ds / dN0
  LimitStart start;
  if (det > 0.0 && h[2][2] < 0.0) {
    start.s = s_hat + std::sqrt(delta * -h[2][2] / det) * to_counts;
    start.mu_slope = -h[0][2] / h[2][2] * bin.bkg_integral() / bin.source().a;
  }
  return start;
}

// Source counts s > s_hat where lnL_best - lnL_profile(s) = delta / 2. The left side is
// convex and increasing in s beyond s_hat (the profile of a concave function is concave),
// so Newton from either side lands right of the root and then decreases monotonically;
// the bracket catches what rounding might do otherwise.
double limit_counts(const Bin& bin, double f_hat, double delta, const LimitStart& start) {
  const double n = bin.count();
  const double s_hat = f_hat * n;
  const double mu_hat = (1.0 - f_hat) * n;
  const double target = 0.5 * delta;
  double lo = s_hat;
  double hi = inf;
  double s = start.s > s_hat && std::isfinite(start.s)
                 ? start.s
                 : s_hat + target + std::sqrt(2.0 * delta * (s_hat + 1.0));
  double mu = mu_hat;
  double s_mu = s_hat;  // where mu was solved
  for (int it = 0; it < max_iterations; ++it) {
    const double mu0 = std::clamp(mu + start.mu_slope * (s - s_mu), 0.0, n);
    const Argmax m = bin.solve_background(s, mu0);
    s_mu = s;
    if (!m.converged) return nan;
    mu = m.x;
    const auto terms = bin.limit_terms(s, mu, s_hat, mu_hat);
    const double excess = terms[0] - n + s + mu - target;
    const double slope = 1.0 - terms[1];
    (excess > 0.0 ? hi : lo) = s;
    double next = slope > 0.0 ? s - excess / slope : nan;
    if (!(next > lo && next < hi)) next = std::isfinite(hi) ? 0.5 * (lo + hi) : lo + 2.0 * (s - lo);
    const double step = std::abs(next - s);
    if ((slope > 0.0 && step <= limit_newton_tolerance * s) || hi - lo <= bracket_tolerance * s) {
      return next;
    }
    s = next;
  }
  return nan;
}

// The profile of lnL at fixed N0 over gamma (and mu) for a free index, as ctools' ctulimit and
// Gammapy's reoptimize do: each gamma sets the source counts s = T N0 A(gamma), mu is
// solved at that s, and gamma maximises the result within [gamma_min, gamma_max].
struct IndexProfile {
  double lnl = nan;
  double gamma = nan;
  double s = nan;
  double mu = nan;
  bool converged = false;
};

IndexProfile profile_over_index(Bin& bin, const FitTables& t, double n0, double gamma0,
                                double mu0) {
  const FitSettings& set = t.settings;
  double mu = mu0;
  bool inner_failed = false;
  const auto slope = [&](double gamma) {
    bin.set_gamma(gamma);
    const double s = bin.livetime() * n0 * bin.source().a;
    const Argmax m = bin.solve_background(s, mu);
    if (!m.converged) {
      inner_failed = true;
      return Slope{0.0, 0.0, true};
    }
    mu = m.x;
    return bin.index_slope_at_fixed_n0(s, mu);
  };
  const Argmax g = maximise_1d(slope, set.gamma_min, set.gamma_max, gamma0,
                               {newton_tolerance, 1.0, bracket_tolerance});
  IndexProfile out;
  if (!g.converged || inner_failed) return out;
  // The returned index is the last Newton step, not yet evaluated.
  bin.set_gamma(g.x);
  out.gamma = g.x;
  out.s = bin.livetime() * n0 * bin.source().a;
  const Argmax m = bin.solve_background(out.s, mu);
  if (!m.converged) return out;
  out.mu = m.x;
  out.lnl = bin.sum_log(out.s, out.mu) - out.s - out.mu;
  out.converged = true;
  return out;
}

// N0 > n0_start where lnL_best - lnL_profile(N0) = delta / 2 with the index profiled too.
// n0_start is the limit with the index held at its best value, which lies at or below the
// root (profiling over one more parameter can only raise the profile). Newton in N0 with
// d lnL_profile / d N0 = (sum p / m - 1) T A(gamma) (envelope theorem), bracketed.
double limit_free_index(Bin& bin, const FitTables& t, double lnl_best, double gamma_hat,
                        double mu_hat, double n0_start) {
  const double target = 0.5 * t.ul_delta;
  double lo = 0.0;
  double hi = inf;
  double n0 = n0_start;
  double gamma = gamma_hat;
  double mu = mu_hat;
  for (int it = 0; it < max_iterations; ++it) {
    const IndexProfile p = profile_over_index(bin, t, n0, gamma, mu);
    if (!p.converged) return nan;
    gamma = p.gamma;
    mu = p.mu;
    const double excess = lnl_best - p.lnl - target;
    const double sum_p_over_m = bin.limit_terms(p.s, p.mu, p.s, p.mu)[1];
    const double slope = (1.0 - sum_p_over_m) * bin.livetime() * bin.source().a;
    (excess > 0.0 ? hi : lo) = n0;
    double next = slope > 0.0 ? n0 - excess / slope : nan;
    if (!(next > lo && next < hi)) next = std::isfinite(hi) ? 0.5 * (lo + hi) : 2.0 * n0;
    const double step = std::abs(next - n0);
    if ((slope > 0.0 && step <= newton_tolerance * n0) || hi - lo <= bracket_tolerance * n0) {
      return next;
    }
    n0 = next;
  }
  return nan;
}

FitResult empty_result(const FitTables& t, const ModelIntegrals& model, const RoiEvents& events,
                       std::string message) {
  const FitSettings& s = t.settings;
  FitResult r;
  r.status = std::string(bin_status::empty);
  r.message = std::move(message);
  r.livetime = events.livetime;
  r.n_events = static_cast<std::int64_t>(events.energy.size());
  r.gamma = s.gamma_ref;
  r.n0_err = r.beta_err = r.gamma_err = r.flux_err = nan;
  r.n0_ul = r.flux_ul = nan;
  // With no events lnL = -s - mu, so the profile limit is s = delta / 2 counts.
  const double a = source_integral(t, model, s.gamma_ref).a;
  if (s.calc_ulim && events.livetime > 0.0 && a > 0.0) {
    r.n0_ul = 0.5 * t.ul_delta / (events.livetime * a);
    r.flux_ul = power_law_integral(r.n0_ul, s.gamma_ref, s.emin, s.emax);
  }
  return r;
}

void check_columns(const FitTables& t, const RoiEvents& events) {
  if (events.energy.size() != events.theta.size()) {
    throw InternalError(fmt::format("RoiEvents has {} energies but {} offsets",
                                    events.energy.size(), events.theta.size()));
  }
  const std::size_t observations = t.per_observation() ? t.observations.size() : 1;
  std::size_t count = 0;
  for (const RoiEvents::Part& part : parts_of(events)) {
    if (part.observation >= observations || !(part.livetime >= 0.0)) {
      throw InternalError(fmt::format("RoiEvents part of observation {} (livetime {}) for a "
                                      "fitter of {} observations",
                                      part.observation, part.livetime, observations));
    }
    count += part.count;
  }
  if (count != events.energy.size()) {
    throw InternalError(fmt::format("RoiEvents parts hold {} events of {}", count,
                                    events.energy.size()));
  }
}

// Parameters, lnL and flux at the optimum; status failed (with errors, TS and limit NaN)
// when the search did not converge.
FitResult best_fit(const Bin& bin, const FitTables& t, const Optimum& o) {
  const FitSettings& s = t.settings;
  const double n = bin.count();
  const double src = o.f * n;
  const double bkg = (1.0 - o.f) * n;
  FitResult r;
  r.livetime = bin.livetime();
  r.n_events = static_cast<std::int64_t>(bin.n());
  r.iterations = o.iterations;
  r.gamma = bin.gamma();
  r.n0 = src / (r.livetime * bin.source().a);
  r.beta = bkg / (r.livetime * bin.bkg_integral());
  r.npred = src + bkg;
  r.lnl = bin.sum_log(src, bkg) - r.npred;
  r.flux = power_law_integral(r.n0, r.gamma, s.emin, s.emax);
  r.gamma_err = r.n0_err = r.beta_err = r.flux_err = r.ts = r.n0_ul = r.flux_ul = nan;
  if (bin.outside() > 0) {
    r.message = fmt::format("{} events outside the response grid ignored", bin.outside());
  }
  if (!o.converged) {
    r.status = std::string(bin_status::failed);
    r.message = o.message;
  }
  return r;
}

void add_errors_ts_limit(Bin& bin, const FitTables& t, double f, FitResult& r) {
  const FitSettings& s = t.settings;
  const LikelihoodDerivatives d = bin.derivatives(r.n0, r.beta, false);
  set_errors(d, t, r);
  if (s.calc_ts) r.ts = bin.ts(f, r.lnl);
  if (!s.calc_ulim) return;
  const double s_hat = f * bin.count();
  const double counts = limit_counts(bin, f, t.ul_delta, limit_start(d, bin, s_hat, t.ul_delta));
  r.n0_ul = counts / (r.livetime * bin.source().a);
  r.flux_ul = power_law_integral(r.n0_ul, r.gamma, s.emin, s.emax);
  if (std::isnan(counts)) {
    r.message = "the upper limit did not converge";
    return;
  }
  if (!s.free_index) return;
  // The index is a nuisance parameter of the limit like beta (SCIENCE.md section 3): from the
  // limit at the best index, the profile refits it at every N0. The flux limit is that of the
  // best-fit spectrum scaled to N0_ul (as Gammapy's flux_ul: norm_ul times the best model).
  const double mu_hat = (1.0 - f) * bin.count();
  r.n0_ul = limit_free_index(bin, t, r.lnl, r.gamma, mu_hat, r.n0_ul);
  bin.set_gamma(r.gamma);
  r.flux_ul = power_law_integral(r.n0_ul, r.gamma, s.emin, s.emax);
  if (std::isnan(r.n0_ul)) r.message = "the upper limit did not converge";
}

void require(bool ok, std::string_view parameter, double value, std::string_view rule) {
  if (!ok) throw UsageError(fmt::format("parameter {} = {} {}", parameter, value, rule));
}

void validate(const FitSettings& s) {
  require(std::isfinite(s.emin) && s.emin > 0.0, "emin", s.emin, "must be finite and > 0");
  require(std::isfinite(s.emax) && s.emax > s.emin, "emax", s.emax, "must be finite and > emin");
  require(std::isfinite(s.ra), "ra", s.ra, "must be finite");
  require(std::abs(s.dec) <= 90.0, "dec", s.dec, "must be in [-90, 90]");
  require(s.theta_max > 0.0 && s.theta_max < 180.0, "theta_max", s.theta_max,
          "must be in (0, 180) deg");
  require(std::isfinite(s.gamma_min) && std::isfinite(s.gamma_max) && s.gamma_min < s.gamma_max,
          "gamma_min", s.gamma_min, "must be finite and < gamma_max");
  require(std::isfinite(s.gamma_ref) &&
              (!s.free_index || (s.gamma_ref >= s.gamma_min && s.gamma_ref <= s.gamma_max)),
          "gamma_ref", s.gamma_ref, "must be finite and within [gamma_min, gamma_max]");
  require(s.confidence > 0.5 && s.confidence < 1.0, "confidence", s.confidence,
          "must be in (0.5, 1)");
}

// Standard normal quantile: Acklam's rational approximation (relative error 1.2e-9)
// refined by one Halley step on erfc, which brings it to full double precision.
double normal_quantile(double p) {
  static constexpr std::array<double, 6> a{-3.969683028665376e+01, 2.209460984245205e+02,
                                           -2.759285104469687e+02, 1.383577518672690e+02,
                                           -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr std::array<double, 5> b{-5.447609879822406e+01, 1.615858368580409e+02,
                                           -1.556989798598866e+02, 6.680131188771972e+01,
                                           -1.328068155288572e+01};
  static constexpr std::array<double, 6> c{-7.784894002430293e-03, -3.223964580411365e-01,
                                           -2.400758277161838e+00, -2.549732539343734e+00,
                                           4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr std::array<double, 4> d{7.784695709041462e-03, 3.224671290700398e-01,
                                           2.445134137142996e+00, 3.754408661907416e+00};
  if (p <= 0.0) return -inf;
  if (p >= 1.0) return inf;
  const auto tail = [&](double r) {
    const double q = std::sqrt(-2.0 * std::log(r));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
  };
  double x = 0.0;
  if (p < 0.02425) {
    x = tail(p);
  } else if (p > 1.0 - 0.02425) {
    x = -tail(1.0 - p);
  } else {
    const double q = p - 0.5;
    const double r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
  }
  const double e = 0.5 * std::erfc(-x / std::numbers::sqrt2) - p;
  const double u = e * std::sqrt(2.0 * std::numbers::pi) * std::exp(0.5 * x * x);
  return x - u / (1.0 + 0.5 * x * u);
}

}  // namespace

// ---------------------------------------------------------------------------------------

namespace detail {

FitTables::FitTables(const Response& response, const FitSettings& s) : settings(s) {
  validate(s);
  const IrfTables& irf = response.tables();
  const std::size_t k = irf.energy.size();
  for (const double e : irf.energy) log_energy.push_back(std::log(e));
  const auto log_pair = [](double v0, double v1) {
    if (v0 <= 0.0 || v1 <= 0.0) return std::pair{-inf, 0.0};  // zero on either side: zero
    return std::pair{std::log(v0), std::log(v1) - std::log(v0)};
  };
  for (std::size_t i = 0; i + 1 < k; ++i) {
    const auto [la, dla] = log_pair(irf.aeff[i], irf.aeff[i + 1]);
    const auto [lb, dlb] = log_pair(irf.bkg_rate[i], irf.bkg_rate[i + 1]);
    cells.push_back({log_energy[i], log_energy[i + 1] - log_energy[i], la, dla, lb, dlb,
                     irf.psf_sigma[i], irf.psf_sigma[i + 1] - irf.psf_sigma[i]});
  }
  cells.push_back({0.0, 1.0, -inf, 0.0, -inf, 0.0, irf.psf_sigma.front(), 0.0});
  cells.push_back({0.0, 1.0, -inf, 0.0, -inf, 0.0, irf.psf_sigma.back(), 0.0});
  u_lo = log_energy.front();
  u_hi = log_energy.back();
  tol_lo = grid_tolerance * std::max(1.0, std::abs(u_lo));
  tol_hi = grid_tolerance * std::max(1.0, std::abs(u_hi));
  const std::size_t buckets = 8 * (k - 1);
  bucket_scale = static_cast<double>(buckets) / (u_hi - u_lo);
  for (std::size_t j = 0; j < buckets; ++j) {
    const double edge = u_lo + static_cast<double>(j) / bucket_scale;
    const auto it = std::upper_bound(log_energy.begin(), log_energy.end(), edge);
    const auto cell = std::clamp<std::ptrdiff_t>(it - log_energy.begin() - 2, 0,
                                                 static_cast<std::ptrdiff_t>(k) - 2);
    bucket_cell.push_back(static_cast<int>(cell));
  }

  set_nodes();
  // The response at the nodes from the cell table (the same rule as Response, without a
  // round trip through E; fit_bin builds these tables for every bin).
  const double t2 = s.theta_max * s.theta_max;
  double bkg_sum = 0.0;
  for (std::size_t i = 0; i < node_u.size(); ++i) {
    const double u = node_u[i];
    const double e = std::exp(u);
    const double weight = simpson_weight(i);
    const Interpolated r = interpolate(u);
    const double containment = -std::expm1(-t2 / (2.0 * r.sigma * r.sigma));
    model.node_w.push_back(weight * std::exp(r.log_aeff) * containment * e);
    bkg_sum += weight * std::exp(r.log_bkg) * e;
  }
  model.bkg_integral = std::numbers::pi * t2 * bkg_sum * simpson_factor;
  model.reference = source_integral(*this, model, s.gamma_ref);
}

FitTables::FitTables(std::vector<dl3::ObservationResponse> responses, const FitSettings& s)
    : settings(s), observations(std::move(responses)) {
  validate(s);
  if (observations.empty()) throw InternalError("BinFitter: no observations");
  set_nodes();
  std::vector<double> energy(node_u.size());
  std::transform(node_u.begin(), node_u.end(), energy.begin(), [](double u) { return std::exp(u); });
  const double t2 = s.theta_max * s.theta_max;
  for (const dl3::ObservationResponse& r : observations) {
    const dl3::ResponseTable table = r.tabulate(energy, s.theta_max);
    ModelIntegrals m;
    double bkg_sum = 0.0;
    for (std::size_t i = 0; i < energy.size(); ++i) {
      const double weight = simpson_weight(i);
      m.node_w.push_back(weight * table.aeff[i] * table.psf_containment[i] * energy[i]);
      bkg_sum += weight * table.bkg_rate[i] * energy[i];
    }
    m.bkg_integral = std::numbers::pi * t2 * bkg_sum * simpson_factor;
    m.reference = source_integral(*this, m, s.gamma_ref);
    observation_models.push_back(std::move(m));
  }
}

// The nodes of simpson_log over [emin, emax] and the limit's quantile.
void FitTables::set_nodes() {
  const double ua = std::log(settings.emin);
  const double h = (std::log(settings.emax) - ua) / simpson_intervals;
  for (int i = 0; i <= simpson_intervals; ++i) node_u.push_back(ua + h * i);
  simpson_factor = h / 3.0;
  ul_delta = chi2_quantile_1dof(2.0 * settings.confidence - 1.0);
}

Interpolated FitTables::interpolate(double u) const {
  const std::size_t k = log_energy.size();
  std::size_t cell = 0;
  double uc = u;
  if (u < u_lo - tol_lo) {
    cell = k - 1;
  } else if (u > u_hi + tol_hi) {
    cell = k;
  } else {
    uc = std::clamp(u, u_lo, u_hi);
    const auto bucket =
        std::min(static_cast<std::size_t>((uc - u_lo) * bucket_scale), bucket_cell.size() - 1);
    cell = static_cast<std::size_t>(bucket_cell[bucket]);
    while (cell + 2 < k && log_energy[cell + 1] <= uc) ++cell;
    while (cell > 0 && log_energy[cell] > uc) --cell;
  }
  const Cell& c = cells[cell];
  const double frac = (uc - c.u0) / c.du;
  return {c.log_aeff + frac * c.dlog_aeff, c.log_bkg + frac * c.dlog_bkg,
          c.sigma + frac * c.dsigma};
}

}  // namespace detail

// ---------------------------------------------------------------------------------------

void RoiEvents::append_part(std::size_t observation, const RoiEvents& more) {
  energy.insert(energy.end(), more.energy.begin(), more.energy.end());
  theta.insert(theta.end(), more.theta.begin(), more.theta.end());
  livetime += more.livetime;
  parts.push_back({observation, more.energy.size(), more.livetime});
}

double chi2_quantile_1dof(double p) {
  if (!(p >= 0.0 && p < 1.0)) {
    throw UsageError(fmt::format("chi^2 quantile: probability {} is not in [0, 1)", p));
  }
  // (Phi^-1((1 + p) / 2))^2, from the lower tail (1 - p) / 2 to keep digits as p -> 1.
  const double z = normal_quantile(0.5 * (1.0 - p));
  return z * z;
}

BinFitter::BinFitter(const Response& response, const FitSettings& settings)
    : tables_(std::make_shared<const detail::FitTables>(response, settings)) {}

BinFitter::BinFitter(const std::vector<dl3::ObservationResponse>& responses,
                     const FitSettings& settings)
    : tables_(std::make_shared<const detail::FitTables>(responses, settings)) {}

const FitSettings& BinFitter::settings() const { return tables_->settings; }

std::size_t BinFitter::observations() const {
  return tables_->per_observation() ? tables_->observations.size() : 1;
}

FitResult BinFitter::fit(const RoiEvents& events, int threads) const {
  const FitTables& t = *tables_;
  check_columns(t, events);
  const ModelIntegrals model = bin_model(t, events);
  if (events.energy.empty() || !(events.livetime > 0.0)) {
    return empty_result(t, model, events, "");
  }
  if (!(model.bkg_integral > 0.0) || !(model.reference.a > 0.0)) {
    FitResult r = empty_result(t, model, events, "");
    r.status = std::string(bin_status::failed);
    r.n0_ul = r.flux_ul = nan;
    r.message = "the model predicts no source or no background counts in [emin, emax]";
    return r;
  }
  Bin bin(t, model, events, threads);
  if (bin.n() == 0) {
    FitResult r = empty_result(
        t, model, events, fmt::format("all {} events lie outside the response grid", bin.outside()));
    r.n_events = 0;
    return r;
  }
  const Optimum o = t.settings.free_index ? fit_free(bin, t) : fit_fixed(bin, t);
  FitResult r = best_fit(bin, t, o);
  if (o.converged) add_errors_ts_limit(bin, t, o.f, r);
  return r;
}

double BinFitter::log_likelihood(const RoiEvents& events, double n0, double gamma, double beta,
                                 int threads) const {
  check_columns(*tables_, events);
  const ModelIntegrals model = bin_model(*tables_, events);
  Bin bin(*tables_, model, events, threads);
  bin.set_gamma(gamma);
  const double src = bin.livetime() * n0 * bin.source().a;
  const double bkg = bin.livetime() * beta * bin.bkg_integral();
  return bin.sum_log(src, bkg) - src - bkg;
}

LikelihoodDerivatives BinFitter::derivatives(const RoiEvents& events, double n0, double gamma,
                                             double beta, int threads) const {
  check_columns(*tables_, events);
  const ModelIntegrals model = bin_model(*tables_, events);
  Bin bin(*tables_, model, events, threads);
  bin.set_gamma(gamma);
  return bin.derivatives(n0, beta, true);
}

double BinFitter::profile_log_likelihood(const RoiEvents& events, double n0, double gamma,
                                         int threads) const {
  check_columns(*tables_, events);
  const ModelIntegrals model = bin_model(*tables_, events);
  Bin bin(*tables_, model, events, threads);
  bin.set_gamma(gamma);
  const double src = bin.livetime() * n0 * bin.source().a;
  const Argmax m = bin.solve_background(src, 0.5 * bin.count());
  if (!m.converged) return nan;
  return bin.sum_log(src, m.x) - src - m.x;
}

FitResult fit_bin(const Response& response, const RoiEvents& events, const FitSettings& settings,
                  int threads) {
  return BinFitter(response, settings).fit(events, threads);
}

double log_likelihood(const Response& response, const RoiEvents& events,
                      const FitSettings& settings, double n0, double gamma, double beta,
                      int threads) {
  return BinFitter(response, settings).log_likelihood(events, n0, gamma, beta, threads);
}

}  // namespace binflow::science
