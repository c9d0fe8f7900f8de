// The nnlift commands: dispatch, synth, decompose.
// SPDX-License-Identifier: MIT
#include "cli/commands.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <sstream>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <nnlift/nnlift.hpp>

#include "cli/flags.hpp"
#include "cli/options.hpp"
#include "cli/shards.hpp"
#include "detail/collective.hpp"
#include "detail/columns.hpp"
#include "detail/input_map.hpp"
#include "detail/io.hpp"
#include "detail/sample.hpp"
#include "detail/scores.hpp"
#include "detail/text.hpp"
#include "detail/text_columns.hpp"

namespace nnlift::cli {
namespace {

// A stream that discards everything, for --quiet.
class NullBuffer : public std::streambuf {
 protected:
  int overflow(int c) override { return c; }
};

struct Context {
  std::ostream& out;
  std::ostream& err;
  const Processes* processes = nullptr;  ///< set under mpirun
};

const char* const kOverview =
    "nnlift: train two-layer neural networks without backpropagation, by the method of moments\n"
    "(NN-LIFT: Janzamin, Sedghi and Anandkumar 2015).\n"
    "\n"
    "usage: nnlift COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  synth       generate planted (teacher) data: train/test CSV and the true model as JSON\n"
    "  train       train a two-layer network from CSV (or .npy) by the method of moments\n"
    "              (no backprop)\n"
    "  predict     predict with a model file on a CSV (or .npy) file\n"
    "  evaluate    score a model on labelled CSV data, and against a planted (true) model\n"
    "  describe    read a CSV file as training would and summarise its columns\n"
    "  decompose   decompose a symmetric d x d x d tensor from a .npy file (CP, mixed signs)\n"
    "  convert     convert a CSV file to a .npy file in constant memory (for data larger\n"
    "              than memory: train --data X.npy --stream on reads it block by block)\n"
    "\n"
    "Run 'nnlift COMMAND --help' for a command's options and their defaults.\n"
    "Global options: --help, --version.\n"
    "Exit codes: 0 success, 1 runtime error (file, data), 2 usage error, 3 numerical failure\n"
    "(no network could be fitted; with --strict, any stage that did not converge).\n";

std::string format_seconds(double s) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(s < 10 ? 2 : 1) << s << " s";
  return o.str();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Diagnostics go to err unless --quiet.
std::ostream& diag(const CommonFlags& flags, std::ostream& err) {
  static NullBuffer null_buffer;
  static std::ostream null_stream(&null_buffer);
  return flags.quiet ? null_stream : err;
}

// The law of synth's inputs in words, for its summary.
std::string input_law_text(const SynthOptions& o) {
  std::ostringstream s;
  if (o.inputs == InputLaw::Mixture) {
    s << "from a mixture of " << o.mixture_components << " Gaussians (separation "
      << o.mixture_separation << ")";
  } else if (o.inputs != InputLaw::Gaussian) {
    s << to_string(o.inputs) << " (independent coordinates, mean 0, variance 1)";
  } else if (o.correlated) {
    s << "N(mu, Sigma)";
  } else if (o.ball_radius > 0) {
    s << "uniform on the ball of radius " << o.ball_radius;
  } else {
    s << "N(0, I)";
  }
  return s.str();
}

// ---------------------------------------------------------------------------------------------
int run_synth(const std::vector<std::string>& args, Context& ctx) {
  SynthFlags synth;
  CommonFlags flags;
  std::string out_path, test_out, truth_path;
  po::options_description desc("options");
  add_synth_flags(desc, synth);
  desc.add_options()("out", po::value(&out_path)->required(), "training CSV to write (required)")(
      "test-out", po::value(&test_out), "test CSV to write (needs --test-samples > 0)")(
      "truth", po::value(&truth_path)->required(), "model file of the teacher (required)");
  add_common(desc, flags, true);
  if (!parse_command("usage: nnlift synth --out train.csv --truth truth.json [options]\n\n"
                     "Draws a planted two-layer network (unit-norm first-layer rows, mixed-sign\n"
                     "output weights) and its inputs (Gaussian unless --inputs or --ball-radius\n"
                     "says otherwise), and writes data and the true model.",
                     args,
                     desc,
                     ctx.out)) {
    return kOk;
  }
  const SynthOptions o = to_synth_options(synth, flags.threads);
  if (!test_out.empty() && o.test_samples == 0) {
    throw UsageError("--test-out needs --test-samples > 0");
  }
  if (test_out.empty() && o.test_samples > 0) {
    throw UsageError("--test-samples needs --test-out FILE");
  }
  detail::check_paths({}, {out_path, test_out, truth_path});
  std::ostream& log = diag(flags, ctx.err);
  const auto t0 = std::chrono::steady_clock::now();
  const SynthData data = make_synthetic(o);
  std::vector<std::string> names = data.truth.inputs;
  names.push_back(data.truth.target);
  Matrix table(data.X_train.rows(), o.dim + 1);
  table << data.X_train, data.y_train;
  write_csv(out_path, names, table, o.num_threads);
  if (!test_out.empty()) {
    Matrix test_table(data.X_test.rows(), o.dim + 1);
    test_table << data.X_test, data.y_test;
    write_csv(test_out, names, test_table, o.num_threads);
  }
  save_model(truth_path, data.truth);

  const TwoLayerNetwork& t = data.truth;
  const Vector f = predict_value(t, data.X_train).col(0);
  const double var_f = (f.array() - f.mean()).square().mean();
  log << "nnlift synth: wrote " << out_path << " (" << o.samples << " rows x " << o.dim
      << " inputs + '" << t.target << "')";
  if (!test_out.empty()) {
    log << ", " << test_out << " (" << o.test_samples << " rows)";
  }
  log << " and " << truth_path << " in " << format_seconds(seconds_since(t0)) << "\n";
  log << "  teacher: k = " << o.hidden << " " << to_string(o.activation) << " units, "
      << to_string(o.task) << ", inputs " << input_law_text(o) << ", noise sd " << o.noise << "\n";
  log << "  Var f(x) on the training inputs = " << var_f;
  if (o.task == Task::Regression && o.noise > 0) {
    log << "  (signal-to-noise variance ratio " << var_f / (o.noise * o.noise) << ")";
  }
  // Gaussian inputs: E[σ'''] in closed form. Other inputs: its mean over the training rows,
  // which is the tensor weight under their exact score (the closed form would be wrong there);
  // ReLU's σ''' is a distribution, so for it the Gaussian form is the only one.
  const bool gaussian = o.inputs == InputLaw::Gaussian && o.ball_radius <= 0;
  const bool empirical = !gaussian && o.activation != Activation::Relu;
  log << "\n  unit  bias     out-weight  lambda_j = a2_j E[sigma'''(z_j)] (tensor weight"
      << (empirical  ? "; E over the training rows"
          : gaussian ? ""
                     : "; E for Gaussian inputs of the same mean and covariance")
      << ")\n";
  for (Index j = 0; j < o.hidden; ++j) {
    const Vector a = t.W1.row(j).transpose();
    double moment = 0;
    if (empirical) {
      const Vector z = (data.X_train * a).array() + t.b1(j);
      moment =
          z.unaryExpr([&](double v) { return activation_derivative(o.activation, 3, v); }).mean();
    } else {
      const double shift = t.b1(j) + a.dot(data.input_mean);
      moment = activation_moment(o.activation, 3, shift, std::sqrt(a.dot(data.input_cov * a)));
    }
    const double lambda = t.W2(0, j) * moment;
    log << "  " << std::setw(4) << j + 1 << "  " << std::setw(7) << std::fixed
        << std::setprecision(3) << t.b1(j) << "  " << std::setw(10) << t.W2(0, j) << "  "
        << std::setw(10) << std::setprecision(4) << lambda << "\n";
    log.unsetf(std::ios::fixed);
  }
  return kOk;
}

// Flags that choose the columns of a CSV file, shared by every command that reads one.
struct DataFlags {
  std::string path;
  std::string target;
  std::string features;
  std::string drop;
  std::string na_values;
};

void add_data_flags(po::options_description& desc, DataFlags& flags, bool shards = false) {
  desc.add_options()("data",
                     po::value(&flags.path)->required(),
                     shards ? "CSV file with a header row, or a comma-separated list of such files "
                              "and glob patterns ('part-*.csv', in name order) with the same "
                              "columns (required); under mpirun each process reads its share. "
                              "A 2-D .npy file (nnlift convert) is read as a table whose column "
                              "names are in its sidecar FILE.npy.json (else 1, 2, ...)"
                            : "CSV file with a header row, or a 2-D .npy file with its column "
                              "names in FILE.npy.json (required)")(
      "target", po::value(&flags.target), "target column (default: the last column)")(
      "features", po::value(&flags.features), "input columns a,b,c (default: all but the target)")(
      "drop", po::value(&flags.drop), "columns c,d to leave out of the inputs")(
      "na-values",
      po::value(&flags.na_values),
      "more spellings of a missing value, as written in the file: '.,-,-999' (beyond empty, NA, "
      "N/A, NaN, ?, null and, in numbers, None); stored in the model for predict");
}

CsvOptions csv_options(const DataFlags& flags, int threads) {
  CsvOptions o;
  o.target = flags.target;
  if (!flags.features.empty()) {
    o.features = split_list(flags.features, "features");
  }
  if (!flags.drop.empty()) {
    o.drop = split_list(flags.drop, "drop");
  }
  if (!o.features.empty() && !o.drop.empty()) {
    throw UsageError("give either --features or --drop, not both");
  }
  for (std::size_t i = 0; i < o.features.size(); ++i) {
    if (o.features[i] == o.target) {
      throw UsageError("--features: '" + o.target + "' is also the --target");
    }
    if (std::find(o.features.begin(),
                  o.features.begin() + static_cast<std::ptrdiff_t>(i),
                  o.features[i]) != o.features.begin() + static_cast<std::ptrdiff_t>(i)) {
      throw UsageError("--features: '" + o.features[i] + "' is listed twice");
    }
  }
  if (!flags.na_values.empty()) {
    for (std::string v : split_list(flags.na_values, "na-values")) {
      const std::size_t b = v.find_first_not_of(' '), e = v.find_last_not_of(' ');
      if (b == std::string::npos) {
        throw UsageError("--na-values: empty name in '" + flags.na_values + "'");
      }
      o.na_values.push_back(v.substr(b, e - b + 1));
    }
  }
  o.num_threads = threads;
  return o;
}

// ---------------------------------------------------------------------------------------------
// A .npy table is read a block of rows at a time by predict, evaluate and describe, in memory
// independent of its rows: f(block, index of its first row).
constexpr Index kNpyBlockRows = Index{1} << 16;

template <class Fn>
void for_npy_blocks(const std::string& path, const CsvOptions& csv, Fn&& f) {
  const Index n = NpyRows(path).rows();
  if (n == 0) {
    throw IoError(path + ": the array has no rows");
  }
  for (Index b = 0; b < n; b += kNpyBlockRows) {
    f(read_npy_rows(path, csv, b, std::min(n, b + kNpyBlockRows)), b);
  }
}

// One column's count, mean, standard deviation, min, max, excess kurtosis and missing values
// (NaN), summed over blocks of rows; moments about the first value seen, so that a large mean does
// not cancel.
class ColumnSummary {
 public:
  void add(const Vector& values) {
    for (Index i = 0; i < values.size(); ++i) {
      const double v = values(i);
      ++m_rows;
      if (std::isnan(v)) {
        ++m_missing;
        continue;
      }
      if (m_present == 0) {
        m_shift = v;
        m_min = m_max = v;
      }
      ++m_present;
      const double e = v - m_shift, e2 = e * e;
      m_s1 += e;
      m_s2 += e2;
      m_s3 += e2 * e;
      m_s4 += e2 * e2;
      // A third value: one unlike both ends of the (not single-valued) range seen so far.
      m_third = m_third || (m_min != m_max && v != m_min && v != m_max);
      m_min = std::min(m_min, v);
      m_max = std::max(m_max, v);
    }
  }
  Index rows() const { return m_rows; }
  /// Whether the excess kurtosis is above input_tails' threshold, for a column with more than
  /// two values (as train's --score adaptive counts them).
  bool heavy() const { return counted() && kurtosis() > kHeavyTailKurtosis; }
  /// More than two values: the columns --score adaptive counts.
  bool counted() const { return m_present > 0 && m_third; }
  void print(
      std::ostream& out, const std::string& name, int width, const char* role, bool input) const {
    out << std::left << std::setw(width) << name << std::right << std::setw(8) << role;
    if (m_present == 0) {
      out << "  no value (all " << m_missing << " missing)\n";
      return;
    }
    const auto m = static_cast<double>(m_present);
    const double mean = m_shift + m_s1 / m;
    const double ss = std::max(m_s2 - m_s1 * m_s1 / m, 0.0);
    const double sd = m_present > 1 ? std::sqrt(ss / (m - 1)) : 0.0;
    out << std::setw(14) << std::setprecision(6) << mean << std::setw(14) << sd << std::setw(14)
        << m_min << std::setw(14) << m_max;
    if (m_min == m_max) {
      out << std::setw(14) << "-"
          << "  constant: carries no information";
    } else {
      out << std::setw(14) << std::setprecision(3) << kurtosis() << std::setprecision(6);
    }
    if (input && heavy()) {
      out << "  heavy-tailed";
    }
    if (m_missing > 0) {
      out << "  " << m_missing << " missing";
    }
    out << "\n";
  }

  // The excess kurtosis m4 / m2² − 3 from the central moments (about the mean, from the sums
  // about the shift).
  double kurtosis() const {
    const auto m = static_cast<double>(m_present);
    const double a = m_s1 / m;
    const double m2 = m_s2 / m - a * a;
    const double m4 = m_s4 / m - 4 * a * m_s3 / m + 6 * a * a * m_s2 / m - 3 * a * a * a * a;
    return m2 > 0 ? m4 / (m2 * m2) - 3.0 : 0.0;
  }
  // |m3| / m2^{3/2}, from the same sums.
  double abs_skewness() const {
    const auto m = static_cast<double>(m_present);
    const double a = m_s1 / m;
    const double m2 = m_s2 / m - a * a;
    const double m3 = m_s3 / m - 3 * a * m_s2 / m + 2 * a * a * a;
    return m2 > 0 ? std::abs(m3) / (m2 * std::sqrt(m2)) : 0.0;
  }

 private:
  Index m_rows = 0, m_present = 0, m_missing = 0;
  double m_shift = 0, m_s1 = 0, m_s2 = 0, m_s3 = 0, m_s4 = 0, m_min = 0, m_max = 0;
  bool m_third = false;
};

int run_describe(const std::vector<std::string>& args, Context& ctx) {
  CommonFlags flags;
  DataFlags data_flags;
  po::options_description desc("options");
  add_data_flags(desc, data_flags);
  add_common(desc, flags, true);
  if (!parse_command(
          "usage: nnlift describe --data file.csv [--target y] [--features a,b | --drop c]\n\n"
          "Reads the file exactly as training does (same column choice, same checks) and\n"
          "prints one line per column: mean, standard deviation, min, max and excess kurtosis\n"
          "(0 for a Gaussian); then how many inputs are heavy-tailed (excess kurtosis above\n"
          "5) or leptokurtic and symmetric, which decides whether train's default --score\n"
          "adaptive tries the rank-Gauss map or the Gaussian-mixture score.",
          args,
          desc,
          ctx.out)) {
    return kOk;
  }
  require_one_file(data_flags.path, "describe");
  CsvOptions options = csv_options(data_flags, flags.threads);
  options.detect_text_columns = true;  // shown as text columns, as train --categorical auto
  options.allow_missing = true;        // counted, as train --missing mean would see them
  options.detect_text_target = true;   // class labels, as train reads them
  const auto t0 = std::chrono::steady_clock::now();
  // The columns' summaries as sums over blocks of rows: a .npy table is read a block at a time.
  Dataset shape;  // names, and text columns (CSV only)
  std::vector<ColumnSummary> columns;
  const auto add = [&](const Dataset& block) {
    if (columns.empty()) {
      shape.feature_names = block.feature_names;
      shape.target_name = block.target_name;
      shape.text = block.text;
      shape.target_text = block.target_text;
      // Text labels mixed with numbers are refused, as train refuses them.
      Dataset labels;
      labels.target_name = block.target_name;
      labels.target_text = block.target_text;
      encode_text_target(labels, data_flags.path);
      columns.resize(block.feature_names.size() + 1);
    }
    for (Index j = 0; j < block.X.cols(); ++j) {
      columns[static_cast<std::size_t>(j)].add(block.X.col(j));
    }
    columns.back().add(block.y);
  };
  if (is_npy_path(data_flags.path)) {
    for_npy_blocks(data_flags.path, options, [&](const Dataset& block, Index) { add(block); });
  } else {
    add(read_csv(data_flags.path, options));
  }
  const double elapsed = seconds_since(t0);
  std::ostream& out = ctx.out;
  out << data_flags.path << ": " << columns.back().rows() << " rows, " << shape.feature_names.size()
      << " inputs, target '" << detail::excerpt(shape.target_name) << "' (read in "
      << format_seconds(elapsed) << ")\n";
  // The name column as wide as the longest name (at least 16, at most 40 characters), and a
  // space before the role.
  std::size_t longest = 15;
  for (const std::string& name : shape.feature_names) {
    longest = std::max(longest, detail::excerpt(name).size());
  }
  longest = std::max(longest, detail::excerpt(shape.target_name).size());
  const int width = static_cast<int>(std::min<std::size_t>(longest, 39)) + 1;
  out << std::left << std::setw(width) << "column" << std::right << std::setw(8) << "role"
      << std::setw(14) << "mean" << std::setw(14) << "sd" << std::setw(14) << "min" << std::setw(14)
      << "max" << std::setw(14) << "kurtosis"
      << "\n";
  InputTails tails;                        // counted as train counts them, on all rows
  std::vector<double> kurtosis, skewness;  // of the columns counted
  tails.threshold = kHeavyTailKurtosis;
  // A text column: its distinct values, and what train does with them.
  const auto print_text = [&](const std::string& name,
                              const std::vector<std::string>& values,
                              const char* role,
                              const char* what) {
    std::map<std::string, Index> distinct;
    Index missing = 0;
    for (const std::string& v : values) {
      if (v.empty()) {
        ++missing;
      } else {
        ++distinct[v];
      }
    }
    const std::size_t most = EncodeOptions().max_categories;
    out << std::left << std::setw(width) << detail::excerpt(name) << std::right << std::setw(8)
        << role << "  text: " << distinct.size() << " "
        << (distinct.size() > most && std::string(role) == "input"
                ? "categories (more than the " + std::to_string(most) +
                      " train accepts: --drop it, or fix its values)"
                : std::string(what));
    if (const std::string kind = detail::text_column_kind(distinct); !kind.empty()) {
      out << "; " << kind;
    }
    if (missing > 0) {
      out << "  " << missing << " missing";
    }
    out << "\n";
  };
  for (std::size_t c = 0; c < shape.feature_names.size(); ++c) {
    if (c < shape.text.size() && !shape.text[c].empty()) {
      print_text(shape.feature_names[c],
                 shape.text[c],
                 "input",
                 "categories (train --categorical auto one-hot encodes them)");
    } else {
      columns[c].print(out, detail::excerpt(shape.feature_names[c]), width, "input", true);
      tails.columns += columns[c].counted() ? 1 : 0;
      tails.heavy += columns[c].heavy() ? 1 : 0;
      if (columns[c].counted()) {
        kurtosis.push_back(columns[c].kurtosis());
        skewness.push_back(columns[c].abs_skewness());
      }
    }
  }
  if (!kurtosis.empty()) {  // the medians, as input_tails takes them
    tails.median_kurtosis = detail::median_of(kurtosis);
    tails.median_abs_skewness = detail::median_of(skewness);
  }
  const bool mixture = tails.scale_mixture() && columns.back().rows() >= kMixtureRows;
  if (!shape.target_text.empty()) {
    print_text(shape.target_name, shape.target_text, "target", "labels (train classifies them)");
  } else {
    columns.back().print(out, detail::excerpt(shape.target_name), width, "target", false);
  }
  out << "heavy-tailed inputs: " << tails.heavy << " of the " << tails.columns
      << " numeric inputs with more than two values (excess kurtosis above " << tails.threshold
      << ")";
  if (mixture) {
    out << "; their median excess kurtosis " << std::setprecision(3) << tails.median_kurtosis
        << " is above " << kMixtureKurtosis << " and their median |skewness| "
        << tails.median_abs_skewness << " below " << kMixtureSkewness << std::setprecision(6)
        << " (leptokurtic and symmetric)";
  }
  const char* tries =
      tails.heavy_tailed()
          ? (mixture ? "the rank-Gauss map and the Gaussian-mixture score" : "the rank-Gauss map")
          : (mixture ? "the Gaussian-mixture score" : nullptr);
  out << (tries != nullptr
              ? std::string(": train's default --score adaptive tries ") + tries + " as well"
              : std::string(": train's default --score adaptive uses the Gaussian "
                            "score"))
      << " (train decides on a strided sample of at most " << kInputSampleRows << " rows)\n";
  return kOk;
}

// ---------------------------------------------------------------------------------------------
// --task auto: a target with exactly two distinct integer values (0/1, -1/1, 1/2, ...) is a
// classification target; anything else is regression. `reason` explains a classification.
// Classification for a two-valued integer target, over the rows of every process.
Task auto_task(const Vector& y, const RowReducer& reducer, std::string& reason) {
  constexpr std::size_t kFewValues = 20;  // integer targets with this many values get a hint
  std::set<double> local;
  for (Index i = 0; i < y.size() && local.size() <= kFewValues; ++i) {
    local.insert(y(i));
  }
  Vector values(static_cast<Index>(local.size()));
  std::copy(local.begin(), local.end(), values.data());
  const Matrix gathered = reducer.gather_rows(values);
  std::set<double> distinct(gathered.data(), gathered.data() + gathered.size());
  const bool integers =
      std::all_of(distinct.begin(), distinct.end(), [](double v) { return v == std::round(v); });
  if (distinct.size() == 2 && integers) {
    std::ostringstream why;
    why << ": two-valued integer target {" << *distinct.begin() << ", " << *distinct.rbegin()
        << "}; --task regression to override";
    reason = why.str();
    return Task::Classification;
  }
  reason.clear();
  if (integers && distinct.size() > 2 && distinct.size() <= kFewValues) {
    // Iris as 0/1/2, ratings 1-5: counts or classes, which only the user knows.
    reason = ": " + std::to_string(distinct.size()) +
             " distinct integer values; --task classification if they are classes";
  }
  return Task::Regression;
}

// Regression targets far from the rest (a typo such as 1e6 for 1.0, or a heavy tail) dominate a
// squared-error fit: a warning counts the values more than kFar median absolute deviations from
// the median (both from a strided sample of every process's rows) and names the farthest.
void warn_target_outliers(const Vector& y,
                          const RowReducer& reducer,
                          const std::string& target,
                          std::ostream& log) {
  constexpr double kFar = 1000;
  constexpr Index kSample = 20000;
  const Vector sample = detail::strided_sample(Matrix(y), ExecutionContext(reducer, 1), kSample);
  if (sample.size() < 10) {
    return;
  }
  const auto median = [](Vector v) {
    const auto mid = v.data() + v.size() / 2;
    std::nth_element(v.data(), mid, v.data() + v.size());
    return *mid;
  };
  const double centre = median(sample);
  const double mad = median((sample.array() - centre).abs().matrix());
  if (!(mad > 0)) {
    return;  // half the values equal: no scale to measure against
  }
  Matrix local = Matrix::Zero(1, 2);  // the count beyond kFar MADs, the farthest value
  double farthest = -1;
  for (Index i = 0; i < y.size(); ++i) {
    const double distance = std::abs(y(i) - centre);
    if (distance > kFar * mad) {
      local(0, 0) += 1;
      if (distance > farthest) {
        farthest = distance;
        local(0, 1) = y(i);
      }
    }
  }
  const Matrix all = reducer.gather_rows(local);
  Index count = 0;
  double value = 0;
  for (Index r = 0; r < all.rows(); ++r) {
    if (all(r, 0) > 0 && (count == 0 || std::abs(all(r, 1) - centre) > std::abs(value - centre))) {
      value = all(r, 1);
    }
    count += static_cast<Index>(all(r, 0));
  }
  if (count > 0) {
    log << "nnlift: warning: target '" << detail::excerpt(target) << "': " << count
        << " value(s) lie more than " << kFar << " median absolute deviations from its median "
        << centre << " (farthest " << value
        << "); a squared-error fit follows them: check them for typos, or transform the "
        << "target (e.g. its log)\n";
  }
}

// A target of text labels (codes 0, 1, ... in data.y, the labels in class_names): always
// classification, of at least two classes among the rows kept.
void text_label_task(const Dataset& data,
                     const std::vector<std::string>& class_names,
                     const std::string& task,
                     const std::string& path,
                     const RowReducer& reducer,
                     std::string& reason) {
  if (task == "regression") {
    throw DataError(path + ": target '" + data.target_name + "' holds text (e.g. '" +
                    detail::excerpt(class_names.front()) +
                    "'); a regression target must be numeric (--task auto reads text labels as "
                    "classes)");
  }
  // The labels present in the rows of every process.
  Vector counts = Vector::Zero(static_cast<Index>(class_names.size()));
  for (Index i = 0; i < data.y.size(); ++i) {
    counts(static_cast<Index>(data.y(i))) += 1;
  }
  counts = detail::sum_counts(reducer, counts);
  std::vector<std::string> labels;
  for (Index c = 0; c < counts.size(); ++c) {
    if (counts(c) > 0) {
      labels.push_back(detail::excerpt(class_names.at(static_cast<std::size_t>(c)), 40));
    }
  }
  if (labels.size() < 2) {
    throw DataError(
        path + ": target '" + data.target_name + "' holds " +
        (labels.empty() ? std::string("no label") : "a single label ('" + labels[0] + "')") +
        ": there is nothing to classify");
  }
  reason = ": " + std::to_string(labels.size()) + " text labels " + detail::name_list(labels, 5);
}

// The moment stages' summary: how the labels were residualised, each unit's lambda and what
// became of the weak and degenerate units.
void print_moment_report(const TrainOptions& o, const TrainResult& r, std::ostream& log) {
  const MomentReport& m = r.moments;
  if (m.lambda.size() == 0) {
    return;
  }
  log << "  labels residualised: " << to_string(m.residualize_used)
      << (m.quadratic_in_subspace ? " (+ quadratic in the subspace)" : "")
      << (m.cubic_in_subspace ? " (+ cubic in the subspace, for the core)" : "")
      << "; subspace sweeps " << m.subspace_sweeps;
  if (m.subspace_sample_rows > 0) {
    log << " over all rows, after " << m.subspace_sample_sweeps << " on a sample of "
        << m.subspace_sample_rows << " rows";
  }
  log << " (gap sigma_k/sigma_k+1 = " << m.subspace_gap << "); route " << to_string(m.route)
      << ", core residual " << m.decomposition_residual << "; biases " << to_string(r.bias_used)
      << "\n";
  log << "  unit  lambda_j  (noise level of the moment tensor: " << std::setprecision(4)
      << m.noise_level << ")\n";
  for (Index j = 0; j < m.lambda.size(); ++j) {
    const auto has = [j](const std::vector<Index>& v) {
      return std::find(v.begin(), v.end(), j) != v.end();
    };
    log << "  " << std::setw(4) << j + 1 << "  " << std::setw(10) << m.lambda(j)
        << (has(m.weak_units) ? "  within noise" : "")
        << (has(m.degenerate_units) ? "  degenerate: nearly parallel to a stronger unit, "
                                      "merged into it; direction from the second moment"
                                    : "")
        << (has(m.second_order_units) ? "; direction from the second moment" : "") << "\n";
  }
  log << "  units with |lambda| above " << o.moments.noise_threshold << " x the noise level: "
      << m.lambda.size() - static_cast<Index>(m.weak_units.size() + m.degenerate_units.size())
      << " of " << m.lambda.size();
  // (With every unit a candidate there is no strong share to take from M2: nothing is tried.)
  const auto tried = static_cast<Index>(m.second_order_candidates.size());
  if (tried > 0 && tried < m.lambda.size() && o.moments.weak_units != WeakUnits::Keep) {
    // (The candidates are the weak units alone when the wider level would take every unit.)
    const double level =
        tried == static_cast<Index>(m.weak_units.size())
            ? o.moments.noise_threshold
            : std::max(o.moments.noise_threshold, o.moments.second_order_threshold);
    log << "; second-moment directions tried for the " << tried << " unit(s) below " << level
        << " x: ";
    if (m.second_order_units.empty()) {
      log << "the tensor's kept";
    } else {
      log << "taken for " << m.second_order_units.size();
    }
    if (o.moments.weak_units == WeakUnits::Auto) {
      log << (o.refine.enabled && r.validation.rows > 0 && r.validation.folds <= 1 &&
                      !m.weak_units.empty()
                  ? " (the lower validation loss after refinement)"
                  : " (the better training fit)");
    }
  }
  log << "\n";
}

// The refinement's summary (with --refine lbfgs).
void print_refine_report(const TrainOptions& o, const TrainResult& r, std::ostream& log) {
  if (!o.refine.enabled) {
    return;
  }
  if (r.units_left_out) {
    log << "  L-BFGS refinement: " << r.refine.stop_reason << "\n";
    return;
  }
  log << "  L-BFGS refinement: " << r.refine.iterations << " iterations (" << r.refine.stop_reason
      << "), weight decay " << r.refine.weight_decay << ", training loss " << r.refine.loss_before
      << " -> " << r.train_loss;
  if (r.validation.rows > 0) {
    log << ", validation loss " << r.refine.validation_before << " -> "
        << r.refine.validation_after;
  }
  log << "\n";
  if (r.refine.start_kept && r.validation.rows > 0) {
    log << "  the refinement did not beat the moment model "
        << (r.validation.folds > 1 ? "in cross-validation" : "on the validation rows");
    if (r.refine.improvement > 0) {
      log << " by " << o.refine.min_improvement << " standard error(s) (improvement "
          << r.refine.improvement << ", standard error " << r.refine.improvement_se << ")";
    }
    log << ": the moment model is kept, refitted on all rows\n";
  }
  if (r.refine.all_rows) {
    log << "  then trained on all rows (--refine-all-rows): " << r.refine.all_rows_iterates
        << " iterates (" << r.refine.all_rows_stop << ")\n";
  }
  if (r.refine.random_start) {
    log << "  the refinement from a seeded random start beat the moment start's on the "
           "validation rows: its network is kept (--refine-random-start)\n";
  } else if (r.refine.random_tried) {
    log << "  a refinement from a seeded random start was tried and did not beat the moment "
           "start's on the validation rows\n";
  }
}

// The validation rows' (or folds') scores, and the candidates chosen among on them.
void print_validation_report(const TrainOptions& o, const TrainResult& r, std::ostream& log) {
  if (r.validation.rows > 0) {
    if (r.validation.folds > 1) {
      log << "  validation (" << r.validation.folds << "-fold cross-validation, "
          << r.validation.rows << " rows held out in turn): ";
    } else {
      log << "  validation (" << r.validation.rows << " rows held out): ";
    }
    if (o.labels.task == Task::Regression) {
      log << "R^2 " << r.validation.r2 << ", MSE " << r.validation.mse;
    } else {
      log << "accuracy " << r.validation.accuracy << ", log-loss " << r.validation.log_loss;
    }
    if (r.validation.folds > 1) {
      log << (o.refine.enabled && !r.refine.start_kept
                  ? " (then trained on all rows, refined for the chosen iterates)"
                  : " (then trained on all rows)");
    } else if (!o.refine.enabled || r.refine.start_kept) {
      log << " (then refitted on all rows)";
    } else if (r.refine.all_rows) {
      log << " (then trained on all rows)";
    }
    log << "\n";
  }
  if (!r.candidates.empty()) {
    log << "  chosen "
        << (r.validation.folds > 1 ? "by cross-validation" : "on the validation rows") << ": ";
    if (r.units_left_out) {
      log << "the linear term alone (no network beat it by " << kLinearCandidateMargin
          << (kLinearCandidateMargin == 1.0 ? " standard error" : " standard errors")
          << " of the paired held-out losses; the units get no output weights)";
    } else {
      log << "hidden " << r.network.num_hidden() << ", score " << to_string(r.score_used);
    }
    log << "; validation " << (o.labels.task == Task::Regression ? "MSE" : "log-loss")
        << " per candidate:";
    for (const CandidateScore& c : r.candidates) {
      if (c.hidden_units) {
        log << " " << c.hidden << "/" << to_string(c.score) << " " << c.loss << ";";
      } else {
        log << " linear " << c.loss << ";";
      }
    }
    log << "\n";
  }
}

// The per-stage summary of a training run on the diagnostics stream.
void print_train_report(const TrainOptions& o, const TrainResult& r, std::ostream& log) {
  log << "  stage times:";
  double total = 0;
  for (const StageTime& s : r.stages) {
    log << " " << s.name << " " << format_seconds(s.seconds) << ";";
    total += s.seconds;
  }
  log << " total " << format_seconds(total) << "\n";
  print_moment_report(o, r, log);
  if (r.extra_units > 0) {
    const Index k = r.network.num_hidden(), first = k - r.extra_units + 1;
    log << "  unit" << (r.extra_units > 1 ? "s " + std::to_string(first) + "-" : " ") << k << " of "
        << k << ": extra (the inputs have " << first - 1
        << " independent directions, and the moments give at most one unit per direction): "
           "seeded random directions and biases, fitted by the bias estimator and the output "
           "layer"
        << (o.refine.enabled ? " and trained by the refinement" : "; --refine lbfgs trains them")
        << "\n";
  }
  if (r.input_tails.heavy_tailed()) {
    log << "  inputs: " << r.input_tails.heavy << " of " << r.input_tails.columns
        << " columns heavy-tailed (excess kurtosis above " << r.input_tails.threshold << "; median "
        << r.input_tails.median_kurtosis << ")"
        << (r.candidates.empty() ? ": the rank-Gauss map needs validation rows to be tried"
                                 : ": the rank-Gauss map was tried as well (--score adaptive)")
        << "\n";
  }
  const bool mixture_tried =
      std::any_of(r.candidates.begin(), r.candidates.end(), [](const CandidateScore& c) {
        return c.score == ScoreModel::Mixture;
      });
  if (o.score == ScoreModel::Adaptive && mixture_tried) {
    log << "  inputs: median excess kurtosis " << r.input_tails.median_kurtosis
        << " and |skewness| " << r.input_tails.median_abs_skewness << " over "
        << r.input_tails.columns
        << " columns with more than two values (leptokurtic and symmetric, as a scale mixture of "
           "Gaussians): the Gaussian-mixture score was tried as well (--score adaptive)\n";
  }
  if (r.mixture.components() > 0) {
    log << "  input mixture (score gmm): " << r.mixture.components() << " component(s), "
        << to_string(r.mixture_fit.covariance) << " covariance, mean log-likelihood "
        << r.mixture_fit.log_likelihood << ", BIC " << r.mixture_fit.bic << " ("
        << r.mixture_fit.iterations << " EM iterations)\n";
  }
  log << "  output layer: ridge " << r.output_ridge << (o.output.ridge ? "" : " (chosen)")
      << (r.network.C.size() > 0 ? ", with a linear term" : ", no linear term")
      << (r.output_linear_only
              ? " (the hidden units did not help in cross-validation: the model is linear)"
              : "")
      << "\n";
  print_refine_report(o, r, log);
  print_validation_report(o, r, log);
  if (o.labels.task == Task::Regression) {
    log << "  training MSE " << r.train_loss << "\n";
  } else {
    log << "  training accuracy " << r.train_accuracy << ", log-loss " << r.train_loss << "\n";
  }
  for (const std::string& w : r.warnings) {
    log << "nnlift: warning: " << detail::clamp_message(w) << "\n";
  }
}

// One line per finished stage; on a terminal, long stages (the L-BFGS refinement) also show a
// percentage that is rewritten in place.
ProgressFn stage_progress(std::ostream& log, bool terminal) {
  struct State {
    int stage = 0;
    int shown_percent = -1;
  };
  auto state = std::make_shared<State>();
  return [&log, terminal, state](const std::string& name, double fraction) {
    if (fraction < 1.0) {
      const int percent = static_cast<int>(100 * fraction);
      if (terminal && percent != state->shown_percent) {
        state->shown_percent = percent;
        log << "\r  [" << state->stage + 1 << "] " << name << " ... " << percent << "% "
            << std::flush;
      }
      return;
    }
    log << (state->shown_percent >= 0 ? "\r" : "") << "  [" << ++state->stage << "] " << name
        << " done     \n"
        << std::flush;
    state->shown_percent = -1;
  };
}

// The data files of --data, and the model path checked (by rank 0): the same checks on every
// process, one answer, so that no process starts work another refused.
std::vector<std::string> checked_files(const std::string& data,
                                       const std::string& model,
                                       int rank,
                                       const RowReducer& reducer) {
  std::vector<std::string> files;
  std::string refused;
  try {
    files = expand_data_paths(data);
    if (rank == 0) {
      detail::check_paths(files, {model});
    }
  } catch (const std::exception& e) {
    refused = e.what();
  }
  throw_first(reducer, refused);  // alone: the local reducer gives back this process's error
  return files;
}

// The end of a training run: the model written (by rank 0), the report, and the exit code.
template <class Extra>
int finish_train(const TrainResult& r,
                 const TrainOptions& o,
                 const std::string& model_path,
                 bool strict,
                 int rank,
                 std::ostream& log,
                 Context& ctx,
                 Extra&& extra_report) {
  if (r.network.W2.size() == 0) {
    ctx.err << "nnlift train: error: " << detail::clamp_message(r.message) << "\n";
    return kNumericalError;
  }
  // --strict: a stage that did not succeed is an error, and an error writes nothing (a model
  // file already there stays as it was).
  const bool refused = strict && r.status != Status::Success;
  if (rank == 0 && !refused) {
    save_model(model_path, r.network);
  }
  print_train_report(o, r, log);
  extra_report();
  if (refused) {
    ctx.err << "nnlift train: error: " << detail::clamp_message(r.message) << " (--strict; "
            << model_path << " not written)\n";
    return kNumericalError;
  }
  if (r.status != Status::Success) {
    log << "nnlift: warning: " << detail::clamp_message(r.message) << "\n";
  }
  log << "  wrote " << model_path << "\n";
  return kOk;
}

// Whether a .npy file's values, as doubles, would take more than a quarter of the physical
// memory.
bool too_large_to_load(const std::string& path) {
  const NpyRows file(path);
  const double bytes = 8.0 * static_cast<double>(file.rows()) * static_cast<double>(file.cols());
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  // Training in memory holds the inputs up to three times (X; the standardised X, stored for
  // the refinement, the mixture score and the quadratic control variate; the per-row work of
  // the stages): a quarter of the memory as doubles is the most it can load.
  return pages > 0 && page > 0 &&
         bytes > 0.25 * static_cast<double>(pages) * static_cast<double>(page);
}

// Whether progress may redraw its line: diagnostics go to a terminal.
bool is_terminal(const CommonFlags& flags, const Context& ctx) {
  return &ctx.err == &std::cerr && !flags.quiet && isatty(STDERR_FILENO) == 1;
}

// train --stream: the rows of one .npy file read block by block in every pass.
// A data error that training finds (the library does not know the file) names the file: `path`
// goes in front of its message, unless the message already starts with it.
template <class Fn>
TrainResult naming_data_file(const std::string& path, Fn&& fn) {
  try {
    return fn();
  } catch (const DataError& e) {
    const std::string what = e.what();
    if (what.rfind(path, 0) == 0) {
      throw;
    }
    // "train: 1 rows are too few ..." reads "FILE: 1 rows are too few ...".
    const std::string prefix = "train: ";
    throw DataError(path + ": " + (what.rfind(prefix, 0) == 0 ? what.substr(prefix.size()) : what));
  }
}

int train_streamed_file(const std::string& path,
                        const DataFlags& data_flags,
                        bool task_auto,
                        TrainOptions o,
                        const CommonFlags& flags,
                        bool strict,
                        const std::string& model_path,
                        std::ostream& log,
                        Context& ctx) {
  validate_as_flags(train_flag_names(), [&] { validate_streamed(o); });
  const auto t0 = std::chrono::steady_clock::now();
  const NpyRows file(path);
  const std::vector<std::string> names = npy_column_names(path, file.cols());
  Dataset chosen;  // names only
  const std::vector<int> dest =
      detail::choose_columns(path, names, csv_options(data_flags, flags.threads), chosen);
  StreamedColumns columns;
  columns.features.resize(chosen.feature_names.size());
  for (std::size_t c = 0; c < dest.size(); ++c) {
    if (dest[c] == detail::kTarget) {
      columns.target = static_cast<Index>(c);
    } else if (dest[c] != detail::kSkip) {
      columns.features[static_cast<std::size_t>(dest[c])] = static_cast<Index>(c);
    }
  }
  columns.feature_names = chosen.feature_names;
  columns.target_name = chosen.target_name;
  const Index d = static_cast<Index>(columns.features.size());
  if (o.hidden > d) {
    throw UsageError("--hidden " + std::to_string(o.hidden) + " exceeds the " + std::to_string(d) +
                     " input columns of " + path +
                     " (--stream needs k <= d; without it, units beyond the inputs' directions "
                     "start from random directions)");
  }
  o.inputs.drop_degenerate = !strict;
  std::string task_reason;
  if (task_auto) {
    // --task auto as for rows in memory, on the target of 1,000 rows spread over the file.
    const Index m = std::min<Index>(file.rows(), 1000);
    Vector y(m);
    Matrix row;
    for (Index i = 0; i < m; ++i) {
      file.read(i * file.rows() / m, 1, row);
      y(i) = row(0, columns.target);
    }
    o.labels.task = auto_task(y, LocalReducer(), task_reason);
    if (!task_reason.empty()) {
      task_reason = " in a sample of " + std::to_string(m) + " rows" + task_reason;
    }
  }
  log << "nnlift train: " << path << ": " << file.rows() << " rows, " << d << " inputs, target '"
      << detail::excerpt(columns.target_name) << "' (" << to_string(o.labels.task) << task_reason
      << "), streamed in blocks (" << (file.float32() ? "float32" : "float64") << ", opened in "
      << format_seconds(seconds_since(t0)) << ")\n";
  o.progress = stage_progress(log, is_terminal(flags, ctx));
  const CountingSource counted(file);
  const TrainResult r = naming_data_file(
      path, [&] { return train_streamed(counted, columns, o, ExecutionContext(flags.threads)); });
  return finish_train(r, o, model_path, strict, 0, log, ctx, [&] {
    const double rows = static_cast<double>(counted.rows_read());
    log << "  rows read: " << counted.rows_read() << " = " << std::setprecision(3)
        << rows / static_cast<double>(file.rows()) << " passes over the " << file.rows()
        << " rows\n";
  });
}

// Whether train streams its --data (--stream, and for auto the file's size); the flags a
// streamed .npy file cannot honour are refused.
bool streams(const std::string& stream,
             const std::vector<std::string>& files,
             const Processes& procs,
             const std::string& missing,
             const std::string& categorical) {
  if (stream != "auto" && stream != "on" && stream != "off") {
    throw UsageError("--stream '" + stream + "': expected auto, on or off");
  }
  const bool one_npy = files.size() == 1 && is_npy_path(files[0]);
  if (stream == "on" && !one_npy) {
    throw UsageError("--stream on reads one .npy file (nnlift convert writes one from CSV)");
  }
  if (!one_npy || stream == "off" || (stream == "auto" && !too_large_to_load(files[0]))) {
    return false;
  }
  if (procs.size > 1) {
    throw UsageError(
        "--stream: a streamed .npy file is read by one process; run without "
        "mpirun, or give each process a share (CSV shards)");
  }
  if (missing != "error") {
    throw UsageError("--missing " + missing +
                     ": a streamed .npy file's values must all be finite (--missing error)");
  }
  if (categorical != "auto" && categorical != "none") {
    throw UsageError("--categorical: a .npy file holds numbers only");
  }
  return true;
}

// This process's training rows, with text and missing values encoded as --categorical and
// --missing say (the encoding, to store in the model, in `encoding`).
Dataset read_encoded_rows(const std::vector<std::string>& files,
                          const DataFlags& data_flags,
                          int threads,
                          bool strict,
                          const std::string& missing,
                          const std::string& categorical,
                          const Processes& procs,
                          std::ostream& log,
                          InputEncoding& encoding,
                          std::vector<std::string>& class_names) {
  CsvOptions csv = csv_options(data_flags, threads);
  // A column constant in one share (a process's, or a file of a list) need not be in all:
  // --strict's check is then the standardiser's, over all rows
  // (TrainOptions::inputs.drop_degenerate).
  csv.reject_constant_features = strict && procs.size <= 1 && files.size() == 1;
  csv.detect_text_target = true;  // class labels such as yes/no or species names
  EncodeOptions encode;
  try {
    encode.missing = parse_missing_policy(missing);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--missing: ") + e.what());
  }
  csv.allow_missing = encode.missing != MissingPolicy::Error;
  if (categorical == "auto") {
    csv.detect_text_columns = true;
  } else if (categorical != "none") {
    csv.text_columns = split_list(categorical, "categorical");
  }
  csv.text_hint = " (a text column? --categorical auto reads it as categories)";
  const LocalReducer alone;
  const RowReducer& reducer = procs.reducer != nullptr ? *procs.reducer : alone;
  // Among several processes each encodes its own rows with what all rows have (categories,
  // labels, fill values), then the rows move so that each process holds whole blocks.
  Dataset data = read_training_rows(files, csv, procs);
  class_names = encode_text_target(data, data_flags.path, reducer);
  Vector text = Vector::Constant(1, data.text.empty() ? 0.0 : 1.0);  // on any process
  if (detail::sum_counts(reducer, text)(0) > 0 || !class_names.empty() ||
      encode.missing != MissingPolicy::Error) {
    Encoded encoded = fit_encoding(data, encode, data_flags.path, reducer);
    for (const std::string& w : encoded.warnings) {
      log << "nnlift: warning: " << detail::clamp_message(w) << "\n";
    }
    for (const ColumnEncoding& c : encoded.encoding.columns) {
      if (c.categorical()) {
        log << "  categorical column '" << c.name << "': " << c.categories.size()
            << " categories, one input each\n";
      }
    }
    data = std::move(encoded.data);
    encoding = std::move(encoded.encoding);
    encoding.na_values = csv.na_values;
  }
  align_training_rows(data, procs);
  return data;
}

int run_train(const std::vector<std::string>& args, Context& ctx) {
  TrainFlags train_flags;
  CommonFlags flags;
  DataFlags data_flags;
  std::string model_path;
  bool strict = false;
  std::string categorical = "auto", missing = "error", stream = "auto";
  po::options_description desc("options");
  add_data_flags(desc, data_flags, true);
  desc.add_options()("model", po::value(&model_path)->required(), "model file to write (required)")(
      "categorical",
      po::value(&categorical)->default_value(categorical),
      "auto | none | a,b: input columns one-hot encoded by category (the categories are stored "
      "in the model; unseen ones predict as all-zero). auto: the columns whose values are not "
      "all numbers")(
      "missing",
      po::value(&missing)->default_value(missing),
      "error | mean | drop-rows: missing values (empty, NA, NaN, ?, null; None in a column of "
      "numbers, a category in a text column). mean: the "
      "column's training mean (a category's share), stored in the model for predict; "
      "drop-rows: leave such rows out of training");
  add_train_flags(desc, train_flags);
  desc.add_options()(
      "stream",
      po::value(&stream)->default_value(stream),
      "auto | on | off: read a .npy --data file block by block in every pass instead of "
      "loading it, in memory independent of its rows (data larger than memory; regression "
      "and classification with --hidden K, no refinement: docs/benchmarks.md). auto: on when its "
      "values as doubles would fill more than a quarter of this machine's memory")(
      "strict",
      po::bool_switch(&strict),
      "exit 3, writing no model (one already there is left as it was), unless every stage "
      "succeeded; refuse constant and collinear input columns instead of dropping them");
  add_common(desc, flags, true);
  if (!parse_command(
          "usage: nnlift train --data train.csv --hidden k --model model.json [options]\n\n"
          "Fits f(x) = W2 act(W1 x + b1) + C x + b2 by the method of moments (NN-LIFT): the\n"
          "third-order score moment of the data is decomposed to find W1; biases and\n"
          "the output layer follow in closed form. No backpropagation.",
          args,
          desc,
          ctx.out)) {
    return kOk;
  }
  TrainOptions o = to_train_options(train_flags);
  const Processes alone;
  const Processes& procs = ctx.processes != nullptr ? *ctx.processes : alone;
  const LocalReducer local_reducer;
  const RowReducer& reducer = procs.reducer != nullptr ? *procs.reducer : local_reducer;
  const std::vector<std::string> files =
      checked_files(data_flags.path, model_path, procs.rank, reducer);
  std::ostream& log = diag(flags, ctx.err);
  if (streams(stream, files, procs, missing, categorical)) {
    return train_streamed_file(
        files[0], data_flags, train_flags.task == "auto", o, flags, strict, model_path, log, ctx);
  }
  o.inputs.drop_degenerate = !strict;
  const auto t0 = std::chrono::steady_clock::now();
  InputEncoding encoding;
  std::vector<std::string> class_names;
  Dataset data = read_encoded_rows(files,
                                   data_flags,
                                   flags.threads,
                                   strict,
                                   missing,
                                   categorical,
                                   procs,
                                   log,
                                   encoding,
                                   class_names);
  if (o.hidden > max_hidden_units(data.X.cols())) {
    throw UsageError("--hidden " + std::to_string(o.hidden) + " exceeds max(d, " +
                     std::to_string(kMaxHiddenUnits) + ") for the " +
                     std::to_string(data.X.cols()) + " input columns of " + data_flags.path +
                     ": units beyond the inputs' directions are extra units, at most " +
                     std::to_string(kMaxHiddenUnits) + " units in all");
  }
  std::string task_reason;
  if (!class_names.empty()) {
    text_label_task(data, class_names, train_flags.task, data_flags.path, reducer, task_reason);
    o.labels.task = Task::Classification;
  } else if (train_flags.task == "auto") {
    o.labels.task = auto_task(data.y, reducer, task_reason);
  }
  log << "nnlift train: " << data_flags.path << ": " << reducer.global_rows(data.X.rows())
      << " rows, " << data.X.cols() << " inputs, target '" << detail::excerpt(data.target_name)
      << "' (" << to_string(o.labels.task) << task_reason << "), read in "
      << format_seconds(seconds_since(t0));
  if (procs.size > 1) {
    log << " by " << procs.size << " processes";
  }
  log << "\n";
  if (!data.unused_columns.empty()) {
    log << "  columns not read: " << detail::name_list(data.unused_columns) << "\n";
  }
  if (o.labels.task == Task::Regression) {
    warn_target_outliers(data.y, reducer, data.target_name, log);
  }
  o.progress = stage_progress(log, is_terminal(flags, ctx));
  // Among several processes: the communication time of each stage, from the stage ends.
  std::vector<std::pair<std::string, double>> communication;
  if (procs.communication_seconds) {
    o.progress = [&, show = o.progress, last = procs.communication_seconds()](
                     const std::string& stage, double fraction) mutable {
      if (fraction >= 1.0) {
        const double now = procs.communication_seconds();
        communication.emplace_back(stage, now - last);
        last = now;
      }
      show(stage, fraction);
    };
  }
  o.inputs.one_hot_groups = encoding.one_hot_groups();
  TrainResult r = naming_data_file(
      data_flags.path, [&] { return train(data, o, ExecutionContext(reducer, flags.threads)); });
  r.network.encoding = std::move(encoding);
  for (const double code : class_names.empty() ? std::vector<double>{} : r.network.classes) {
    // The names of the classes left in training, by their codes.
    r.network.class_names.push_back(class_names.at(static_cast<std::size_t>(code)));
  }
  return finish_train(r, o, model_path, strict, procs.rank, log, ctx, [&] {
    if (!communication.empty()) {
      log << "  communication (rank 0, waiting included):";
      for (const auto& [stage, seconds] : communication) {
        log << " " << stage << " " << format_seconds(seconds) << ";";
      }
      log << "\n";
    }
  });
}

// A class label as a column-name suffix: "3" for 3.0, "0.5" for 0.5.
std::string nnlift_label(double value) {
  std::ostringstream o;
  o << value;
  return o.str();
}

// Class k's label as printed: its name (text labels), else its number.
std::string class_label(const TwoLayerNetwork& net, std::size_t k) {
  return net.class_names.empty() ? nnlift_label(detail::class_values(net)[k]) : net.class_names[k];
}

// The columns a model reads from a table by name: its inputs (or, with an input encoding, its
// raw columns, text and missing values allowed) and, if asked, its target.
CsvOptions model_columns(const TwoLayerNetwork& net, bool with_target, int threads) {
  CsvOptions csv;
  csv.features = net.inputs;
  csv.has_target = with_target;
  csv.target = net.target;
  csv.text_target = with_target && !net.class_names.empty();
  csv.num_threads = threads;
  csv.text_hint = " (the model was trained on numbers in this column)";
  if (!net.encoding.empty()) {
    csv.features.clear();
    for (const ColumnEncoding& c : net.encoding.columns) {
      csv.features.push_back(c.name);
    }
    csv.text_columns = net.encoding.categorical_names();
    csv.allow_missing = true;
    csv.na_values = net.encoding.na_values;
  }
  return csv;
}

// Raw rows (the first of them row `first` + 1 of the file) encoded as the model's encoding says;
// warnings not yet in `seen` go to `log`.
Dataset encode_for_model(Dataset raw,
                         const TwoLayerNetwork& net,
                         const std::string& path,
                         Index first,
                         std::ostream& log,
                         std::set<std::string>& seen) {
  if (!raw.target_text.empty()) {
    const Index unknown = apply_class_names(raw, net.class_names, net.classes, path, first);
    if (unknown > 0) {
      log << "nnlift: warning: " << path << ": " << unknown << " row(s) from data row " << first + 1
          << " on hold a label the model was not trained on; they count as wrong\n";
    }
  }
  if (net.encoding.empty()) {
    return raw;
  }
  for (Index i = 0; i < raw.y.size(); ++i) {
    if (std::isnan(raw.y(i))) {
      throw DataError(path + ": target '" + raw.target_name + "' is missing in data row " +
                      std::to_string(first + i + 1));
    }
  }
  std::vector<std::string> warnings;
  Dataset data = apply_encoding(raw, net.encoding, path, warnings);
  for (const std::string& w : warnings) {
    if (seen.insert(w).second) {
      log << "nnlift: warning: " << detail::clamp_message(w) << "\n";
    }
  }
  return data;
}

// Reads the model's input columns (and, if asked, its target) from a table by name; a model
// with an input encoding reads its raw columns and encodes them (warnings go to `log`).
Dataset read_for_model(const std::string& path,
                       const TwoLayerNetwork& net,
                       bool with_target,
                       int threads,
                       std::ostream& log) {
  std::set<std::string> seen;
  return encode_for_model(
      read_table(path, model_columns(net, with_target, threads)), net, path, 0, log, seen);
}

// The prediction columns of a model for rows X: the prediction, or the class probabilities and
// the most probable class under its own label value.
Matrix prediction_table(const TwoLayerNetwork& net,
                        const Matrix& X,
                        std::vector<std::string>& names) {
  const Matrix p = predict(net, X);
  names.clear();
  if (net.link == OutputLink::Identity) {
    names = {"prediction"};
    return p;
  }
  const std::vector<double> classes = detail::class_values(net);
  const bool binary = net.link == OutputLink::Logistic;
  const Index columns = binary ? 1 : p.cols();
  for (Index c = 0; c < columns; ++c) {
    names.push_back(binary ? std::string("probability")
                           : "probability_" + class_label(net, static_cast<std::size_t>(c)));
  }
  names.push_back("class");
  Matrix table(p.rows(), columns + 1);
  table.leftCols(columns) = p.leftCols(columns);
  for (Index i = 0; i < p.rows(); ++i) {
    const Index best = detail::predicted_class(net, p, i);
    // With text labels the class column holds the class's index, written as its name.
    table(i, columns) = net.class_names.empty() ? classes[static_cast<std::size_t>(best)]
                                                : static_cast<double>(best);
  }
  return table;
}

// A CSV field: quoted (quotes doubled) when it holds a comma, a quote, a line break or spaces at
// either end.
std::string csv_field(const std::string& text) {
  const bool plain = text.find_first_of(",\"\r\n") == std::string::npos &&
                     (text.empty() || (text.front() != ' ' && text.back() != ' '));
  if (plain) {
    return text;
  }
  std::string out = "\"";
  for (const char c : text) {
    out += c == '"' ? std::string("\"\"") : std::string(1, c);
  }
  return out + "\"";
}

// CSV rows of a prediction table, each number in its shortest form that reads back exactly;
// with text labels, the last (class) column as the class names.
void write_rows(std::ostream& out, const TwoLayerNetwork& net, const Matrix& table) {
  std::string text;
  if (net.class_names.empty()) {
    detail::append_csv_rows(table, 0, table.rows(), text);
  } else {
    const Index columns = table.cols() - 1;
    for (Index i = 0; i < table.rows(); ++i) {
      detail::append_csv_rows(table.row(i).head(columns), 0, 1, text);
      text.back() = ',';
      text += csv_field(net.class_names[static_cast<std::size_t>(table(i, columns))]);
      text += '\n';
    }
  }
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
}

void write_header(std::ostream& out, const std::vector<std::string>& names) {
  for (std::size_t j = 0; j < names.size(); ++j) {
    out << (j ? "," : "") << csv_field(names[j]);
  }
  out << "\n";
}

// predict on a .npy table: block by block, the predictions written as they are made.
int predict_npy(const TwoLayerNetwork& net,
                const std::string& data_path,
                const std::string& out_path,
                const CommonFlags& flags,
                Context& ctx) {
  std::ostream& log = diag(flags, ctx.err);
  std::set<std::string> seen;
  Index rows = 0;
  const auto emit = [&](std::ostream& out) {
    std::vector<std::string> names;
    prediction_table(net, Matrix(0, static_cast<Index>(net.inputs.size())), names);
    write_header(out, names);
    for_npy_blocks(
        data_path, model_columns(net, false, flags.threads), [&](const Dataset& raw, Index first) {
          const Dataset data = encode_for_model(raw, net, data_path, first, log, seen);
          write_rows(out, net, prediction_table(net, data.X, names));
          rows += data.X.rows();
        });
  };
  if (out_path.empty()) {
    emit(ctx.out);
  } else {
    detail::write_atomically(out_path, emit);
    log << "nnlift predict: wrote " << rows << " predictions to " << out_path << "\n";
  }
  return kOk;
}

int run_predict(const std::vector<std::string>& args, Context& ctx) {
  CommonFlags flags;
  std::string model_path, data_path, out_path;
  po::options_description desc("options");
  desc.add_options()("model", po::value(&model_path)->required(), "model file (required)")(
      "data", po::value(&data_path)->required(), "CSV with the model's input columns (required)")(
      "out", po::value(&out_path), "predictions CSV to write (default, or -: stdout)");
  add_common(desc, flags, true);
  if (!parse_command("usage: nnlift predict --model model.json --data x.csv [--out pred.csv]\n\n"
                     "Columns are matched by name; other columns are ignored (and named on\n"
                     "stderr).",
                     args,
                     desc,
                     ctx.out)) {
    return kOk;
  }
  if (out_path == "-") {
    out_path.clear();  // standard output, as by convention (it wrote a file named '-' before)
  }
  require_one_file(data_path, "predict");
  detail::check_paths({model_path, data_path}, {out_path});
  const TwoLayerNetwork net = load_model(model_path);
  if (is_npy_path(data_path)) {
    return predict_npy(net, data_path, out_path, flags, ctx);
  }
  const Dataset data = read_for_model(data_path, net, false, flags.threads, diag(flags, ctx.err));
  if (!data.unused_columns.empty()) {
    diag(flags, ctx.err) << "nnlift predict: columns of " << data_path
                         << " the model does not use: " << detail::name_list(data.unused_columns)
                         << "\n";
  }
  std::vector<std::string> names;
  const Matrix table = prediction_table(net, data.X, names);
  const auto emit = [&](std::ostream& out) {
    write_header(out, names);
    write_rows(out, net, table);
  };
  if (out_path.empty()) {
    emit(ctx.out);
  } else {
    if (net.class_names.empty()) {
      write_csv(out_path, names, table, flags.threads);  // formatted in parallel
    } else {
      detail::write_atomically(out_path, emit);
    }
    diag(flags, ctx.err) << "nnlift predict: wrote " << table.rows() << " predictions to "
                         << out_path << "\n";
  }
  return kOk;
}

// Sums over blocks of labelled rows for evaluate: squared errors and the target's moments
// (regression), or the classification scores weighted by rows; with a planted truth, the
// squared distance to its noise-free values and their moments. Moments are taken about the
// first value seen, so that a large mean does not cancel the variance.
class EvaluationSums {
 public:
  EvaluationSums(const TwoLayerNetwork& net, const TwoLayerNetwork* truth)
      : m_net(net), m_truth(truth) {}

  void add(const Dataset& data) {
    const Index c = data.X.rows();
    if (c == 0) {
      return;
    }
    if (m_rows == 0) {
      m_y0 = data.y(0);
    }
    m_rows += c;
    if (m_net.link == OutputLink::Identity) {
      const Vector p = predict(m_net, data.X).col(0);
      m_sse += (p - data.y).squaredNorm();
      m_sae += (p - data.y).cwiseAbs().sum();
      m_y1 += (data.y.array() - m_y0).sum();
      m_y2 += (data.y.array() - m_y0).square().sum();
    } else {
      // One prediction for the scores and the counts by class.
      const Matrix p = predict(m_net, data.X);
      const Matrix sums = detail::class_score_sums(m_net, p, data.y);
      m_correct += sums(0, 0);
      m_loss += sums(1, 0);
      count_by_class(p, data.y);
    }
    if (m_truth != nullptr) {
      const Vector f = predict_value(*m_truth, data.X).col(0);
      const Vector g = predict_value(m_net, data.X).col(0);
      if (m_rows == c) {
        m_f0 = f(0);
      }
      m_truth_sse += (f - g).squaredNorm();
      m_f1 += (f.array() - m_f0).sum();
      m_f2 += (f.array() - m_f0).square().sum();
    }
  }

  Index rows() const { return m_rows; }
  Scores scores() const {
    Scores s;
    const auto n = static_cast<double>(m_rows);
    s.mse = m_sse / n;
    const double var = m_y2 / n - (m_y1 / n) * (m_y1 / n);
    s.r2 = var > 0 ? 1.0 - s.mse / var : 0.0;
    s.accuracy = m_correct / n;
    s.log_loss = m_loss / n;
    return s;
  }
  double mae() const { return m_sae / static_cast<double>(m_rows); }
  /// Each class's label (its name, or its number), rows and rows predicted right.
  struct ClassCount {
    std::string label;
    Index rows = 0, right = 0;
  };
  const std::vector<ClassCount>& by_class() const { return m_by_class; }
  double truth_mse() const { return m_truth_sse / static_cast<double>(m_rows); }
  double truth_variance() const {
    const auto n = static_cast<double>(m_rows);
    return m_f2 / n - (m_f1 / n) * (m_f1 / n);
  }

 private:
  // Rows and right predictions by true class (a label outside the classes counts in neither).
  void count_by_class(const Matrix& p, const Vector& y) {
    const std::vector<double> classes = detail::class_values(m_net);
    if (m_by_class.empty()) {
      for (std::size_t k = 0; k < classes.size(); ++k) {
        m_by_class.push_back({class_label(m_net, k), 0, 0});
      }
    }
    for (Index i = 0; i < y.size(); ++i) {
      const auto truth = std::find(classes.begin(), classes.end(), y(i));
      if (truth == classes.end()) {
        continue;
      }
      ClassCount& count = m_by_class[static_cast<std::size_t>(truth - classes.begin())];
      ++count.rows;
      count.right += detail::predicted_class(m_net, p, i) == truth - classes.begin() ? 1 : 0;
    }
  }

  const TwoLayerNetwork& m_net;
  const TwoLayerNetwork* m_truth;
  Index m_rows = 0;
  double m_y0 = 0, m_y1 = 0, m_y2 = 0, m_sse = 0, m_sae = 0, m_correct = 0, m_loss = 0;
  std::vector<ClassCount> m_by_class;
  double m_f0 = 0, m_f1 = 0, m_f2 = 0, m_truth_sse = 0;
};

// The balanced accuracy (the mean recall over the classes present) and, for up to 20 classes,
// each class's recall and rows.
void print_recalls(const std::vector<EvaluationSums::ClassCount>& by_class, std::ostream& out) {
  double sum = 0;
  Index present = 0;
  for (const auto& c : by_class) {
    if (c.rows > 0) {
      sum += static_cast<double>(c.right) / static_cast<double>(c.rows);
      ++present;
    }
  }
  if (present == 0) {
    return;
  }
  out << "balanced accuracy " << sum / static_cast<double>(present) << "\n";
  if (by_class.size() <= 20) {
    out << "recall by class:";
    for (std::size_t k = 0; k < by_class.size(); ++k) {
      const auto& c = by_class[k];
      out << (k ? ", " : " ") << detail::excerpt(c.label, 40) << ": ";
      if (c.rows > 0) {
        out << std::setprecision(4) << static_cast<double>(c.right) / static_cast<double>(c.rows)
            << std::setprecision(6);
      } else {
        out << "-";
      }
      out << " (" << c.rows << " rows)";
    }
    out << "\n";
  }
}

int run_evaluate(const std::vector<std::string>& args, Context& ctx) {
  CommonFlags flags;
  std::string model_path, data_path, truth_path;
  po::options_description desc("options");
  desc.add_options()("model", po::value(&model_path)->required(), "model file (required)")(
      "data",
      po::value(&data_path)->required(),
      "labelled CSV with the model's input and target columns (required)")(
      "truth",
      po::value(&truth_path),
      "planted model: also report recovery (|cos| per unit after Hungarian matching) and the "
      "error against the noise-free truth");
  add_common(desc, flags, true);
  if (!parse_command(
          "usage: nnlift evaluate --model model.json --data test.csv [--truth truth.json]\n\n"
          "Scores the model on labelled rows: MSE, R2, RMSE and MAE (regression), or accuracy,\n"
          "log-loss, balanced accuracy (the mean recall over the classes present) and each\n"
          "class's recall (classification).",
          args,
          desc,
          ctx.out)) {
    return kOk;
  }
  require_one_file(data_path, "evaluate");
  detail::check_paths({model_path, data_path, truth_path}, {});
  const TwoLayerNetwork net = load_model(model_path);
  TwoLayerNetwork truth;
  if (!truth_path.empty()) {
    truth = load_model(truth_path);
    if (truth.inputs != net.inputs) {
      throw IoError(truth_path + ": its inputs differ from those of " + model_path);
    }
  }
  // The scores as sums over blocks of rows: a .npy table is read a block at a time.
  EvaluationSums sums(net, truth_path.empty() ? nullptr : &truth);
  if (is_npy_path(data_path)) {
    std::set<std::string> seen;
    for_npy_blocks(
        data_path, model_columns(net, true, flags.threads), [&](const Dataset& raw, Index first) {
          sums.add(encode_for_model(raw, net, data_path, first, diag(flags, ctx.err), seen));
        });
  } else {
    sums.add(read_for_model(data_path, net, true, flags.threads, diag(flags, ctx.err)));
  }
  const Scores s = sums.scores();
  std::ostream& out = ctx.out;
  out << "data: " << data_path << " (" << sums.rows() << " rows)\n";
  if (net.link == OutputLink::Identity) {
    out << "MSE " << s.mse << "\nR2 " << s.r2 << "\nRMSE " << std::sqrt(s.mse) << "\nMAE "
        << sums.mae() << "\n";
  } else {
    out << "accuracy " << s.accuracy << "\nlog-loss " << s.log_loss << "\n";
    print_recalls(sums.by_class(), out);
  }
  if (!truth_path.empty()) {
    const Recovery rec = recovery(truth, net);
    out << "recovery (|cos| of first-layer rows after Hungarian matching):";
    for (Index j = 0; j < rec.cosine.size(); ++j) {
      out << " " << std::setprecision(4) << rec.cosine(j);
    }
    out << "\nmin |cos| " << rec.min_cosine << "\nmean |cos| " << rec.mean_cosine << "\n";
    if (net.input_map.x != truth.input_map.x || net.input_map.z != truth.input_map.z) {
      out << "(not comparable: the two first layers act on different inputs, rank-Gauss-mapped "
             "by one and not the other or by different maps; --score gaussian trains on the raw "
             "inputs)\n";
    }
    const double err = sums.truth_mse(), var_f = sums.truth_variance();
    out << std::setprecision(6) << "MSE vs noise-free truth " << err << "\nrelative to Var f "
        << (var_f > 0 ? err / var_f : 0.0) << "\n";
  }
  return kOk;
}

// ---------------------------------------------------------------------------------------------
int run_convert(const std::vector<std::string>& args, Context& ctx) {
  CommonFlags flags;
  std::string data_path, out_path, dtype = "float64", drop;
  double chunk_mb = 64;
  po::options_description desc("options");
  desc.add_options()(
      "data", po::value(&data_path)->required(), "CSV file with a header row (required)")(
      "out",
      po::value(&out_path)->required(),
      "the .npy file to write (required); its column names go to OUT.json")(
      "dtype",
      po::value(&dtype)->default_value(dtype),
      "float64 (exact) | float32 (half the size; about 7 significant digits)")(
      "drop", po::value(&drop), "columns c,d to leave out (e.g. text columns)")(
      "chunk-mb",
      po::value(&chunk_mb)->default_value(chunk_mb),
      "bytes of CSV read at a time, in MB: memory is about this plus its rows as doubles");
  add_common(desc, flags, true);
  if (!parse_command(
          "usage: nnlift convert --data big.csv --out big.npy [--dtype float32]\n\n"
          "Streams a numeric CSV file into a 2-D C-order .npy file, a chunk at a time, so that\n"
          "files larger than memory can be converted; every field is checked as train checks\n"
          "it (file:line:column on error). The column names go to the sidecar OUT.json, so\n"
          "that --target and --features keep working by name on the .npy file.",
          args,
          desc,
          ctx.out)) {
    return kOk;
  }
  if (!is_npy_path(out_path)) {
    throw UsageError("--out '" + out_path + "' must name a .npy file");
  }
  if (dtype != "float64" && dtype != "float32") {
    throw UsageError("--dtype '" + dtype + "': expected float64 or float32");
  }
  if (!(chunk_mb >= 1 && chunk_mb <= 1 << 16)) {
    throw UsageError("--chunk-mb must be in [1, 65536]");
  }
  const bool float32 = dtype == "float32";
  require_one_file(data_path, "convert");
  detail::check_paths({data_path}, {out_path, out_path + ".json"});
  CsvOptions csv;
  csv.has_target = false;
  if (!drop.empty()) {
    csv.drop = split_list(drop, "drop");
  }
  csv.num_threads = flags.threads;
  csv.text_hint =
      " (a text column? a .npy file holds numbers only: --drop it, or encode it as "
      "numbers first)";
  csv.missing_hint =
      " (a missing value; a .npy file holds numbers only: fill it in or leave its row out first, "
      "or train on the CSV file with --missing mean or drop-rows)";
  std::ostream& log = diag(flags, ctx.err);
  const auto t0 = std::chrono::steady_clock::now();
  // Equal byte shares of the body, each cut at line starts (as the processes of a distributed run
  // read theirs), numbered from the lines of the shares before for messages.
  const std::uint64_t bytes = std::filesystem::file_size(data_path);
  const auto chunk = static_cast<std::uint64_t>(chunk_mb * 1e6);
  const Index parts = static_cast<Index>(std::max<std::uint64_t>(1, (bytes + chunk - 1) / chunk));
  std::unique_ptr<NpyWriter> writer;
  std::vector<std::string> names;
  Index lines_before = 0;
  int reported = 0;
  for (Index part = 0; part < parts; ++part) {
    csv.share = {part, parts, lines_before};
    const Dataset d = read_csv(data_path, csv);
    if (!writer) {
      names = d.feature_names;
      writer = std::make_unique<NpyWriter>(out_path, d.X.cols(), float32);
    }
    if (float32) {
      // A value beyond float32's range would silently become infinite.
      for (Index j = 0; j < d.X.cols(); ++j) {
        const double m = d.X.col(j).cwiseAbs().maxCoeff();
        if (d.X.rows() > 0 && m > static_cast<double>(std::numeric_limits<float>::max())) {
          throw DataError(data_path + ": column '" + names[static_cast<std::size_t>(j)] +
                          "' holds a value beyond float32's range; use --dtype float64");
        }
      }
    }
    writer->append(d.X);
    lines_before += csv_share_lines(data_path, part, parts, flags.threads);
    const int percent = static_cast<int>(100 * (part + 1) / parts);
    if (parts > 1 && percent / 10 > reported / 10) {
      reported = percent;
      log << "  " << writer->rows() << " rows (" << percent << "%)\n";
    }
  }
  if (writer->rows() == 0) {
    throw IoError(data_path + ": no data rows after the header (header only)");
  }
  writer->finish();
  write_npy_column_names(out_path, names);
  log << "nnlift convert: wrote " << out_path << " (" << writer->rows() << " x " << names.size()
      << ", " << dtype << ") and " << out_path << ".json in " << format_seconds(seconds_since(t0))
      << "\n";
  return kOk;
}

const std::vector<std::pair<std::string, std::string>> kDecomposeFlagNames = {
    {"DecomposeOptions::rank", "--rank"},
    {"DecomposeOptions::power.num_restarts", "--restarts"},
    {"DecomposeOptions::power.max_iterations", "--iterations"},
    {"DecomposeOptions::jennrich.num_trials", "--trials"},
    {"DecomposeOptions::als.max_sweeps", "--sweeps"},
    {"PowerMethodOptions::num_restarts", "--restarts"},
    {"PowerMethodOptions::max_iterations", "--iterations"},
    {"JennrichOptions::num_trials", "--trials"},
    {"AlsOptions::max_sweeps", "--sweeps"},
    {"DecomposeOptions::seed", "--seed"},
    {"DecomposeOptions::num_threads", "--threads"},
};

// ---------------------------------------------------------------------------------------------
int run_decompose(const std::vector<std::string>& args, Context& ctx) {
  DecomposeOptions o;
  CommonFlags flags;
  std::string tensor_path, out_path, out_npy, method = to_string(o.method);
  double symmetry_tolerance = 1e-8;
  bool strict = false;
  po::options_description desc("options");
  desc.add_options()(
      "tensor", po::value(&tensor_path)->required(), "d x d x d float64 .npy file (required)")(
      "rank", po::value(&o.rank)->required(), "k, number of components, 1 <= k <= d (required)")(
      "method",
      with_default(&method),
      "auto | power | jennrich | als (auto: best residual of als and whitened power)")(
      "restarts",
      with_default(&o.power.num_restarts),
      "power method: random restarts per component")(
      "iterations", with_default(&o.power.max_iterations), "power method: iterations per restart")(
      "trials", with_default(&o.jennrich.num_trials), "jennrich/als: random slice pairs tried")(
      "sweeps", with_default(&o.als.max_sweeps), "als: refinement sweeps at most")(
      "symmetry-tol",
      with_default(&symmetry_tolerance),
      "largest accepted asymmetry, relative to max(1, max |T|)")(
      "seed", with_default(&o.seed), "random seed")(
      "out", po::value(&out_path)->required(), "result JSON to write (required)")(
      "out-npy", po::value(&out_npy), "also write the d x k component matrix as .npy")(
      "strict", po::bool_switch(&strict), "exit 3, writing nothing, unless the status is success");
  add_common(desc, flags, true);
  if (!parse_command("usage: nnlift decompose --tensor T.npy --rank k --out result.json "
                     "[options]\n\n"
                     "Finds T ~ sum_j lambda_j v_j (x) v_j (x) v_j with unit v_j and lambda_j > 0\n"
                     "(signs moved into v_j). Components need not be orthogonal.",
                     args,
                     desc,
                     ctx.out)) {
    return kOk;
  }
  try {
    o.method = parse_decompose_method(method);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--method: ") + e.what());
  }
  o.num_threads = flags.threads;
  validate_as_flags(kDecomposeFlagNames, [&] { validate(o); });
  if (!(symmetry_tolerance >= 0)) {
    throw UsageError("--symmetry-tol = " + std::to_string(symmetry_tolerance) + "; must be >= 0");
  }
  detail::check_paths({tensor_path}, {out_path, out_npy});
  std::ostream& log = diag(flags, ctx.err);
  const auto t0 = std::chrono::steady_clock::now();
  const NpyArray array = read_npy(tensor_path);
  if (array.shape.size() != 3 || array.shape[0] != array.shape[1] ||
      array.shape[0] != array.shape[2]) {
    std::ostringstream msg;
    msg << tensor_path << ": expected a d x d x d array, found shape (";
    for (std::size_t i = 0; i < array.shape.size(); ++i) {
      msg << (i ? ", " : "") << array.shape[i];
    }
    msg << ")";
    throw IoError(msg.str());
  }
  const Index d = array.shape[0];
  // C order (i*d + j)*d + l holds T_ijl; our storage is i + d(j + d l): for a symmetric tensor
  // these agree, and the symmetry check below rejects anything else.
  std::unique_ptr<DenseSymmetricTensor3> T;
  try {
    T = std::make_unique<DenseSymmetricTensor3>(d, array.data, symmetry_tolerance);
  } catch (const std::invalid_argument& e) {
    throw IoError(tensor_path + ": " + e.what());
  }
  if (o.rank > d) {
    throw UsageError("--rank " + std::to_string(o.rank) +
                     " exceeds the dimension d = " + std::to_string(d) + " of " + tensor_path);
  }
  const DecomposeResult r = decompose(*T, o);
  const double elapsed = seconds_since(t0);

  nlohmann::json doc;
  doc["format"] = "nnlift-decomposition";
  doc["version"] = 1;
  doc["tensor"] = tensor_path;
  doc["dim"] = d;
  doc["rank"] = o.rank;
  doc["method"] = to_string(o.method);
  doc["method_used"] = to_string(r.method_used);
  doc["seed"] = o.seed;
  doc["status"] = to_string(r.status);
  doc["message"] = r.message;
  doc["relative_residual"] = r.relative_residual;
  doc["lambda"] = std::vector<double>(r.lambda.data(), r.lambda.data() + r.lambda.size());
  doc["components"] = nlohmann::json::array();
  for (Index j = 0; j < r.components.cols(); ++j) {
    const Vector v = r.components.col(j);
    doc["components"].push_back(std::vector<double>(v.data(), v.data() + v.size()));
  }
  doc["iterations"] = r.iterations;
  doc["restart_gap"] =
      std::vector<double>(r.restart_gap.data(), r.restart_gap.data() + r.restart_gap.size());
  doc["subspace_sweeps"] = r.subspace_sweeps;
  doc["seconds"] = elapsed;
  const std::string text = doc.dump(2) + "\n";
  // --strict: a status other than success is an error, and an error writes nothing.
  const bool refused = strict && r.status != Status::Success;
  if (!refused) {
    detail::write_atomically(out_path, [&](std::ostream& s) { s << text; });
    if (!out_npy.empty() && r.components.size() > 0) {
      write_npy(out_npy, to_npy(r.components));
    }
  }
  log << "nnlift decompose: " << tensor_path << " (d = " << d << "), rank " << o.rank << ", method "
      << to_string(o.method);
  if (o.method == DecomposeMethod::Auto) {
    log << " -> " << to_string(r.method_used);
  }
  log << ": status " << to_string(r.status) << ", relative residual " << r.relative_residual << ", "
      << format_seconds(elapsed) << "\n";
  if (!r.message.empty()) {
    log << "  " << r.message << "\n";
  }
  for (Index j = 0; j < r.lambda.size(); ++j) {
    log << "  lambda_" << j + 1 << " = " << r.lambda(j) << "\n";
  }
  if (refused) {
    ctx.err << "nnlift: error: decomposition status " << to_string(r.status) << " (--strict; "
            << out_path << " not written)\n";
    return kNumericalError;
  }
  log << "  wrote " << out_path << (out_npy.empty() ? "" : " and " + out_npy) << "\n";
  if (r.status != Status::Success) {
    log << "nnlift: warning: decomposition status " << to_string(r.status) << "\n";
  }
  return kOk;
}

}  // namespace

std::optional<std::string> hugetlb_tunable() {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  const std::string all = tunables != nullptr ? tunables : "";
  const std::string key = "glibc.malloc.hugetlb=";
  const std::size_t at = all.find(key);
  if (at == std::string::npos) {
    return std::nullopt;
  }
  const std::size_t from = at + key.size();
  const std::size_t colon = all.find(':', from);
  return all.substr(from, colon == std::string::npos ? std::string::npos : colon - from);
}

namespace {

// How glibc's allocator was started (the executable restarts itself with huge pages: main.cpp).
std::string allocator_line() {
  const std::optional<std::string> value = hugetlb_tunable();
  if (!value) {
    return "allocator: huge pages not asked for (GLIBC_TUNABLES has no glibc.malloc.hugetlb)";
  }
  return "allocator: glibc.malloc.hugetlb=" + *value +
         (*value == "0" ? " (huge pages not asked for)" : " (transparent huge pages)");
}

int run_command(const std::vector<std::string>& args, Context& ctx) {
  std::ostream& out = ctx.out;
  std::ostream& err = ctx.err;
  const std::string& command = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "--help" || command == "-h" || command == "help") {
    if (command == "help" && !rest.empty()) {
      return run({rest[0], "--help"}, out, err);
    }
    out << kOverview;
    return kOk;
  }
  if (command == "--version") {
    out << "nnlift " << version_string() << "\n" << allocator_line() << "\n";
    return kOk;
  }
  try {
    using Command = int (*)(const std::vector<std::string>&, Context&);
    const std::pair<const char*, Command> commands[] = {{"synth", run_synth},
                                                        {"train", run_train},
                                                        {"predict", run_predict},
                                                        {"evaluate", run_evaluate},
                                                        {"describe", run_describe},
                                                        {"decompose", run_decompose},
                                                        {"convert", run_convert}};
    for (const auto& [name, fn] : commands) {
      if (command == name) {
        return fn(rest, ctx);
      }
    }
    err << "nnlift: error: unknown command '" << command << "'\n"
        << "Try 'nnlift --help' for the list of commands.\n";
    return kUsageError;
  } catch (const UsageError& e) {
    err << "nnlift " << command << ": error: " << detail::clamp_message(e.what()) << "\n"
        << "Try 'nnlift " << command << " --help'.\n";
    return kUsageError;
  } catch (const std::bad_alloc&) {
    err << "nnlift " << command << ": error: out of memory\n";
    return kRuntimeError;
  } catch (const std::exception& e) {
    // Data, files and anything else the library reports: a runtime error, no usage hint.
    err << "nnlift " << command << ": error: " << detail::clamp_message(e.what()) << "\n";
    return kRuntimeError;
  }
}

}  // namespace

int run(const std::vector<std::string>& args,
        std::ostream& out,
        std::ostream& err,
        const Processes* processes) {
  Context ctx{out, err, processes};
  if (processes != nullptr && processes->size > 1 && args.size() >= 2 && args[0] != "train" &&
      args[1] != "--help" && args[1] != "-h") {
    err << "nnlift " << args[0]
        << ": error: only 'nnlift train' runs on several processes; run this command without "
           "mpirun\n";
    return kUsageError;
  }
  if (args.empty()) {
    err << kOverview;
    return kUsageError;
  }
  const int code = run_command(args, ctx);
  // Output that could not be written is an error, not a silent success (e.g. stdout on a full
  // disk or /dev/full).
  out.flush();
  if (!out) {
    err << "nnlift: error: writing to standard output failed\n";
    return code == kOk ? kRuntimeError : code;
  }
  return code;
}

}  // namespace nnlift::cli
