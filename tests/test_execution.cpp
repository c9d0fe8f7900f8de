// The execution context: global blocks, and a reducer over parts that must give the same model.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <mutex>
#include <numeric>
#include <random>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <doctest/doctest.h>
#ifdef NNLIFT_TESTS_OPENMP
#include <omp.h>
#endif

#include <nnlift/encoding.hpp>
#include <nnlift/execution.hpp>
#include <nnlift/model.hpp>
#include <nnlift/moments.hpp>
#include <nnlift/synth.hpp>
#include <nnlift/train.hpp>

#include "detail/collective.hpp"
#include "detail/exact_sum.hpp"
#include "detail/parallel.hpp"
#include "detail/rng.hpp"
#include "detail/scratch.hpp"
#include "test_helpers.hpp"
#include "train/stages.hpp"

namespace {

using nnlift::ExecutionContext;

// An in-process stand-in for a communicator: P parts, each on its own thread, exchange lists of
// matrices; every part receives every part's list, in part order.
class Exchange {
 public:
  explicit Exchange(int parts) : m_parts(parts), m_slots(static_cast<std::size_t>(parts)) {}

  std::vector<std::vector<Matrix>> all_gather(int part, std::vector<Matrix> mine) {
    std::unique_lock<std::mutex> lock(m_mutex);
    const int generation = m_generation;
    m_slots[static_cast<std::size_t>(part)] = std::move(mine);
    if (++m_arrived == m_parts) {
      m_result = m_slots;
      m_arrived = 0;
      ++m_generation;
      m_changed.notify_all();
    } else {
      m_changed.wait(lock, [&] { return m_generation != generation; });
    }
    return m_result;
  }

 private:
  int m_parts;
  int m_arrived = 0;
  int m_generation = 0;
  std::vector<std::vector<Matrix>> m_slots, m_result;
  std::mutex m_mutex;
  std::condition_variable m_changed;
};

// A reducer for one part of an Exchange: the MPI reducer's logic without MPI. Partials are
// added in global block order (part 0's blocks, then part 1's, ...), as the contract requires.
class PartReducer final : public nnlift::RowReducer {
 public:
  PartReducer(Exchange& exchange, int part) : m_exchange(exchange), m_part(part) {}
  Index block_rows() const override { return 8192; }
  Index first_row(Index local_rows) const override {
    const auto counts = m_exchange.all_gather(m_part, {Matrix::Constant(1, 1, local_rows)});
    Index first = 0;
    for (int p = 0; p < m_part; ++p) {
      first += static_cast<Index>(counts[static_cast<std::size_t>(p)][0](0, 0));
    }
    return first;
  }
  Index global_rows(Index local_rows) const override {
    Index total = 0;
    for (const auto& c : m_exchange.all_gather(m_part, {Matrix::Constant(1, 1, local_rows)})) {
      total += static_cast<Index>(c[0](0, 0));
    }
    return total;
  }
  // Each part sums its whole nodes of the block tree; the total is finished from all of them.
  Matrix combine(const std::vector<Matrix>& partials, Index rows, Index cols) const override {
    const auto counts = m_exchange.all_gather(
        m_part, {Matrix::Constant(1, 1, static_cast<double>(partials.size()))});
    Index first = 0, blocks = 0;
    for (int p = 0; p < static_cast<int>(counts.size()); ++p) {
      const auto count = static_cast<Index>(counts[static_cast<std::size_t>(p)][0](0, 0));
      first += p < m_part ? count : 0;
      blocks += count;
    }
    std::vector<Matrix> mine;  // (level, index) then the sum, for each node
    for (const nnlift::BlockTreeNode& node : nnlift::block_tree::pieces(partials, first)) {
      mine.push_back((Matrix(1, 2) << node.level, static_cast<double>(node.index)).finished());
      mine.push_back(node.sum);
    }
    std::vector<nnlift::BlockTreeNode> nodes;
    for (const auto& part : m_exchange.all_gather(m_part, mine)) {
      for (std::size_t i = 0; i + 1 < part.size(); i += 2) {
        nodes.push_back(
            {static_cast<int>(part[i](0, 0)), static_cast<Index>(part[i](0, 1)), part[i + 1]});
      }
    }
    return nnlift::block_tree::total(nodes, blocks, rows, cols);
  }
  Matrix gather_rows(const Matrix& local) const override {
    const auto all = m_exchange.all_gather(m_part, {local});
    Index rows = 0;
    for (const auto& a : all) {
      rows += a[0].rows();
    }
    Matrix out(rows, local.cols());
    Index at = 0;
    for (const auto& a : all) {
      out.middleRows(at, a[0].rows()) = a[0];
      at += a[0].rows();
    }
    return out;
  }

 private:
  Exchange& m_exchange;
  int m_part;
};

// Runs fn(part, reducer) for each of `parts` parts, each on its own thread through a
// PartReducer of one Exchange; returns each part's error message ("" for none).
std::vector<std::string> in_parts(int parts,
                                  const std::function<void(int, const nnlift::RowReducer&)>& fn) {
  Exchange exchange(parts);
  std::vector<std::string> errors(static_cast<std::size_t>(parts));
  std::vector<std::thread> threads;
  for (int p = 0; p < parts; ++p) {
    threads.emplace_back([&, p] {
      try {
        const PartReducer reducer(exchange, p);
        fn(p, reducer);
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(p)] = e.what();
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  return errors;
}

// Rows [begin, end) of a raw table with text columns and a text target.
nnlift::Dataset raw_rows(const nnlift::Dataset& all, Index begin, Index end) {
  nnlift::Dataset part = all;
  part.X = all.X.middleRows(begin, end - begin);
  part.y = all.y.segment(begin, end - begin);
  for (std::size_t j = 0; j < all.text.size(); ++j) {
    part.text[j].clear();
    if (!all.text[j].empty() && end > begin) {
      part.text[j].assign(all.text[j].begin() + begin, all.text[j].begin() + end);
    }
  }
  part.target_text.assign(all.target_text.begin() + begin, all.target_text.begin() + end);
  return part;
}

nnlift::Dataset rows_of(const nnlift::Dataset& all, Index begin, Index count) {
  nnlift::Dataset part = all;
  part.X = all.X.middleRows(begin, count);
  part.y = all.y.segment(begin, count);
  return part;
}

// Trains on `data` split at `cuts` into parts, each part on its own thread through a
// PartReducer; returns every part's result.
std::vector<nnlift::TrainResult> train_in_parts(const nnlift::Dataset& data,
                                                const nnlift::TrainOptions& options,
                                                const std::vector<Index>& cuts) {
  const int parts = static_cast<int>(cuts.size()) + 1;
  Exchange exchange(parts);
  std::vector<nnlift::TrainResult> results(static_cast<std::size_t>(parts));
  std::vector<std::string> errors(static_cast<std::size_t>(parts));
  std::vector<std::thread> threads;
  for (int p = 0; p < parts; ++p) {
    threads.emplace_back([&, p] {
      const auto i = static_cast<std::size_t>(p);
      const Index begin = p == 0 ? 0 : cuts[i - 1];
      const Index end = i < cuts.size() ? cuts[i] : data.X.rows();
      try {
        const PartReducer reducer(exchange, p);
        results[i] =
            nnlift::train(rows_of(data, begin, end - begin), options, ExecutionContext(reducer, 1));
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  for (const std::string& e : errors) {
    REQUIRE(e.empty());
  }
  return results;
}

// y = sin(2 x1) + x2 x3 + noise, x uniform on [−2, 2]³.
nnlift::Dataset sine_rows(Index n, std::uint64_t seed, double noise) {
  nnlift::detail::Rng rng(seed);
  nnlift::Dataset data;
  data.X.resize(n, 3);
  data.y.resize(n);
  for (Index i = 0; i < n; ++i) {
    for (Index j = 0; j < 3; ++j) {
      data.X(i, j) = rng.uniform(-2.0, 2.0);
    }
    data.y(i) = std::sin(2 * data.X(i, 0)) + data.X(i, 1) * data.X(i, 2) + noise * rng.normal();
  }
  data.feature_names = {"x1", "x2", "x3"};
  data.target_name = "y";
  return data;
}

bool same_network(const nnlift::TwoLayerNetwork& a, const nnlift::TwoLayerNetwork& b) {
  return a.W1.rows() == b.W1.rows() && (a.W1.array() == b.W1.array()).all() &&
         (a.b1.array() == b.b1.array()).all() && (a.W2.array() == b.W2.array()).all() &&
         (a.b2.array() == b.b2.array()).all() && a.classes == b.classes &&
         a.metadata_json == b.metadata_json;
}

// Parts that start on block boundaries (8192 rows), two and three of them: bitwise the model
// trained on all rows in one place, `whole`, on every part.
void check_parts_match(const nnlift::Dataset& data,
                       const nnlift::TrainOptions& o,
                       const nnlift::TrainResult& whole) {
  for (const nnlift::TrainResult& r : train_in_parts(data, o, {8192})) {
    CHECK(same_network(r.network, whole.network));
    CHECK(r.train_loss == whole.train_loss);
  }
  const std::vector<nnlift::TrainResult> three = train_in_parts(data, o, {8192, 16384});
  CHECK(same_network(three[2].network, whole.network));
}

nnlift::Dataset planted_set(nnlift::Task task, std::uint64_t seed, Index dim = 6) {
  nnlift::SynthOptions so;
  so.dim = dim;
  so.hidden = 2;
  so.samples = 20003;
  so.noise = 0.05;
  so.task = task;
  so.seed = seed;
  return nnlift::training_set(nnlift::make_synthetic(so));
}

}  // namespace

TEST_SUITE("execution") {
#ifdef NNLIFT_TESTS_OPENMP
  TEST_CASE("execution: a single block runs on the calling thread, several in a team") {
    // A parallel region around one block is only overhead (on a busy machine, milliseconds per
    // pass of a small set's fits); it failed before parallel_for skipped it. Not even an
    // inactive region (an if-clause false, or one thread): libgomp ends each with a futex
    // system call, tens of thousands in a small set's L-BFGS fits. omp_get_level counts
    // inactive regions too; the level checks failed before parallel_for ran such loops itself.
    const nnlift::LocalReducer blocks_of_100(100);
    for (const int threads : {1, 2}) {
      for (const Index n : {Index{100}, Index{400}}) {
        std::vector<int> inside(static_cast<std::size_t>(n / 100), -1);
        std::vector<int> level(static_cast<std::size_t>(n / 100), -1);
        (void)ExecutionContext(blocks_of_100, threads).sum(n, 1, 1, [&](Index b, Index) {
          inside[static_cast<std::size_t>(b / 100)] = omp_in_parallel();
          level[static_cast<std::size_t>(b / 100)] = omp_get_level();
          return Matrix(Matrix::Zero(1, 1));
        });
        const bool team = n == 400 && threads == 2;
        for (std::size_t b = 0; b < inside.size(); ++b) {
          CHECK(inside[b] == (team ? 1 : 0));
          CHECK(level[b] == (team ? 1 : 0));
        }
      }
    }
    // A product too small to be worth a second thread (parallel_product runs its blocks in turn):
    // each block has the bits of its own product, as in a parallel run.
    nnlift::detail::Rng rng(3);
    const Matrix A = rng.normal_matrix(100, 10), B = rng.normal_matrix(10, 10);
    int level = -1;
    nnlift::detail::parallel_for(1, 2, [&](Index) { level = omp_get_level(); });
    CHECK(level == 0);
    const Matrix small = nnlift::detail::parallel_product(A, B, 2, 16);
    for (Index b = 0; b < 100; b += 16) {
      const Index rows = std::min<Index>(16, 100 - b);
      CHECK(small.middleRows(b, rows) == Matrix(A.middleRows(b, rows) * B));
    }
  }
#endif

  TEST_CASE("execution: the block tree gives the same bits for any split of the blocks") {
    // Partials whose sum depends on the order of addition: sequential order, the tree on one
    // part and the tree finished from the pieces of any split must be told apart by rounding.
    nnlift::detail::Rng rng(9);
    for (const Index blocks : {Index{1}, Index{2}, Index{7}, Index{13}, Index{64}, Index{100}}) {
      std::vector<Matrix> partials;
      for (Index b = 0; b < blocks; ++b) {
        partials.push_back(rng.normal_matrix(2, 3) * std::pow(10.0, static_cast<double>(b % 9)));
      }
      const Matrix whole =
          nnlift::block_tree::total(nnlift::block_tree::pieces(partials, 0), blocks, 2, 3);
      CHECK((whole - std::accumulate(partials.begin(), partials.end(), Matrix(Matrix::Zero(2, 3))))
                .norm() < 1e-6 * whole.norm());
      CHECK(nnlift::LocalReducer().combine(partials, 2, 3) == whole);
      for (const Index cut1 : {Index{0}, Index{1}, blocks / 3, blocks / 2}) {
        for (const Index cut2 : {cut1, (blocks + cut1) / 2, blocks}) {
          std::vector<nnlift::BlockTreeNode> nodes;
          const Index cuts[] = {0, cut1, cut2, blocks};
          for (int p = 0; p < 3; ++p) {
            const std::vector<Matrix> part(partials.begin() + cuts[p],
                                           partials.begin() + cuts[p + 1]);
            const auto pieces = nnlift::block_tree::pieces(part, cuts[p]);
            CHECK(static_cast<double>(pieces.size()) <=
                  2 * std::log2(static_cast<double>(blocks)) + 2);
            nodes.insert(nodes.end(), pieces.begin(), pieces.end());
          }
          INFO("blocks " << blocks << ", cuts " << cut1 << ", " << cut2);
          CHECK(nnlift::block_tree::total(nodes, blocks, 2, 3) == whole);
        }
      }
    }
    CHECK(nnlift::block_tree::total({}, 0, 2, 2) == Matrix::Zero(2, 2));
    const auto some = nnlift::block_tree::pieces({Matrix::Ones(1, 1), Matrix::Ones(1, 1)}, 0);
    CHECK_THROWS_WITH_AS(nnlift::block_tree::total(some, 3, 1, 1),
                         doctest::Contains("do not tile"),
                         std::invalid_argument);
  }

  TEST_CASE("execution: a local sum builds the block tree in waves with the stored tree's bits") {
    // One-row blocks, so that the waves (at least 64 blocks each) cut the tree at many places;
    // partials of wildly different scales tell any other order of addition apart.
    nnlift::detail::Rng rng(4);
    const Matrix rows = rng.normal_matrix(1000, 3);
    const nnlift::LocalReducer one_row(1);
    for (const Index n : {Index{1}, Index{63}, Index{64}, Index{65}, Index{200}, Index{1000}}) {
      std::vector<Matrix> partials;
      for (Index i = 0; i < n; ++i) {
        partials.push_back(rows.row(i).transpose() * std::pow(10.0, static_cast<double>(i % 11)));
      }
      const Matrix stored = one_row.combine(partials, 3, 1);
      for (const int threads : {1, 2}) {
        const Matrix waved = ExecutionContext(one_row, threads).sum(n, 3, 1, [&](Index b, Index) {
          return partials[static_cast<std::size_t>(b)];
        });
        INFO("n " << n << ", threads " << threads);
        CHECK(waved == stored);
      }
    }
  }

#if !defined(__SANITIZE_ADDRESS__)
  TEST_CASE("execution: a local sum holds a wave of partials, not one per block") {
    // 4096 one-row blocks of 320 kB partials: 1.3 GB if every partial were kept (as before the
    // waves, which made streamed training on 2e8 rows hold 785 MB). A child process whose address
    // space may grow by only 512 MB must finish the sum.
    std::ifstream statm("/proc/self/statm");
    long pages = 0;
    statm >> pages;
    const pid_t child = ::fork();
    if (child == 0) {
      const rlim_t limit =
          static_cast<rlim_t>(pages) * static_cast<rlim_t>(::sysconf(_SC_PAGESIZE)) + (512L << 20);
      const rlimit rl{limit, limit};
      ::setrlimit(RLIMIT_AS, &rl);
      try {
        const nnlift::LocalReducer one_row(1);
        const Matrix total = ExecutionContext(one_row, 1).sum(4096, 200, 200, [](Index, Index) {
          return Matrix(Matrix::Ones(200, 200));
        });
        ::_exit(total(0, 0) == 4096.0 ? 0 : 2);
      } catch (...) {
        ::_exit(1);
      }
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
#endif

  TEST_CASE("execution: a block scratch keeps one matrix for each of a pass's two block sizes") {
    // The fits' block functions take their temporaries from here (detail/scratch.hpp): a pass
    // over full blocks and a shorter last one, repeated, must not allocate again.
    nnlift::detail::BlockScratch<> scratch;
    Matrix& full = scratch.get(8192, 3);
    const double* full_data = full.data();
    Matrix& last = scratch.get(100, 3);
    const double* last_data = last.data();
    CHECK(&full != &last);
    for (int pass = 0; pass < 3; ++pass) {
      Matrix& again = scratch.get(8192, 3);
      CHECK(&again == &full);
      CHECK(again.data() == full_data);
      CHECK(scratch.get(100, 3).data() == last_data);
    }
    // A third size takes the slot the previous call did not return.
    Matrix& other = scratch.get(50, 4);
    CHECK(&other == &full);
    CHECK(other.rows() == 50);
    CHECK(other.cols() == 4);
    CHECK(scratch.get(100, 3).data() == last_data);
    nnlift::detail::BlockScratch<Vector> vectors;
    CHECK(vectors.get(7).size() == 7);
    CHECK(vectors.get(7).data() == vectors.get(7).data());
  }

  TEST_CASE("execution: sums over global blocks, in parallel, independent of the thread count") {
    nnlift::detail::Rng rng(4);
    const Matrix X = rng.normal_matrix(20000, 3);
    auto column_sums = [&](Index b, Index c) {
      return Matrix(X.middleRows(b, c).colwise().sum().transpose());
    };
    const Matrix one = ExecutionContext(1).sum(X.rows(), 3, 1, column_sums);
    const Matrix two = ExecutionContext(2).sum(X.rows(), 3, 1, column_sums);
    CHECK((one.array() == two.array()).all());
    CHECK((one - X.colwise().sum().transpose()).norm() < 1e-9);
    CHECK(ExecutionContext(2).mean(X.rows(), 3, 1, column_sums).isApprox(one / 20000.0));
    // An exception inside a block reaches the caller, after the parallel region.
    CHECK_THROWS_WITH_AS(ExecutionContext(2).sum(X.rows(),
                                                 1,
                                                 1,
                                                 [](Index b, Index) -> Matrix {
                                                   if (b >= 8192) {
                                                     throw nnlift::DataError("block failed");
                                                   }
                                                   return Matrix::Zero(1, 1);
                                                 }),
                         "block failed",
                         nnlift::DataError);
    CHECK_THROWS_WITH_AS(ExecutionContext(-1),
                         doctest::Contains("ExecutionContext::num_threads = -1"),
                         std::invalid_argument);
  }

  TEST_CASE("execution: a model trained on rows split into parts is bitwise the single model") {
    // Every pass of train() goes through the reducer; a pass that read only its local rows
    // (a mean, a count, a random stream keyed by block position) would change the model.
    struct Case {
      const char* name;
      nnlift::Task task;
      std::function<void(nnlift::TrainOptions&)> set;
    };
    const std::vector<Case> cases = {
        {"regression, lsq biases, quadratic residual", nnlift::Task::Regression, nullptr},
        // (The refinement without a validation split: see the next case for the split.)
        {"regression, linear residual + quadratic in the subspace, refine",
         nnlift::Task::Regression,
         [](nnlift::TrainOptions& o) {
           o.moments.residualize = nnlift::Residualize::Linear;
           o.refine.enabled = true;
           o.refine.max_iterations = 15;
           o.validation.fraction = 0.0;
         }},
        {"classification, ratio biases, refine",
         nnlift::Task::Classification,
         [](nnlift::TrainOptions& o) {
           o.refine.enabled = true;
           o.refine.max_iterations = 10;
           o.validation.fraction = 0.0;
         }},
        {"random init + refine",
         nnlift::Task::Regression,
         [](nnlift::TrainOptions& o) {
           o.init = nnlift::Init::Random;
           o.refine.enabled = true;
           o.refine.max_iterations = 10;
           o.validation.fraction = 0.0;
         }},
        {"mixture score (EM on a gathered sample, a moment per component)",
         nnlift::Task::Regression,
         [](nnlift::TrainOptions& o) {
           o.score = nnlift::ScoreModel::Mixture;
           o.mixture.components = 2;
           o.mixture.covariance = nnlift::MixtureCovariance::Full;
         }},
        {"Fourier biases (random frequencies per global row)",
         nnlift::Task::Regression,
         [](nnlift::TrainOptions& o) { o.bias.method = nnlift::BiasMethod::Fourier; }},
    };
    for (const Case& c : cases) {
      INFO(c.name);
      const nnlift::Dataset data = planted_set(c.task, 3);
      nnlift::TrainOptions o;
      o.hidden = 2;
      o.seed = 5;
      o.labels.task = c.task;
      if (c.set) {
        c.set(o);
      }
      const nnlift::TrainResult whole = nnlift::train(data, o, ExecutionContext(2));
      // Parts that start on block boundaries (8192 rows): bitwise the same model on every part.
      check_parts_match(data, o, whole);
    }
  }

  TEST_CASE("execution: a subspace found on a sample of the rows gives the same bits in parts") {
    // d = 45 is too wide for the quadratic control variate in all inputs at n = 20,003, so the
    // one in z = Qᵀx̃ is used and both HOOIs may run on a strided sample (by global row index,
    // blocked where all rows are): the same sample and the same bits on every partition.
    const nnlift::Dataset data = planted_set(nnlift::Task::Regression, 4, 45);
    nnlift::TrainOptions o;
    o.hidden = 2;
    o.seed = 5;
    o.moments.subspace_sample_rows = 3000;
    const nnlift::TrainResult whole = nnlift::train(data, o, ExecutionContext(2));
    REQUIRE(whole.status == nnlift::Status::Success);
    CHECK(whole.moments.quadratic_in_subspace);
    CHECK(whole.moments.subspace_sample_rows == 2858);  // every 7th row
    check_parts_match(data, o, whole);
    // A sample of the fit rows of a validation split (a subset of a subset, blocked as all rows).
    o.refine.enabled = true;
    o.refine.max_iterations = 5;
    o.validation.fraction = 0.1;
    o.moments.subspace_sample_rows = 4506;  // every 4th of the 18,024 fit rows
    const nnlift::TrainResult split = nnlift::train(data, o, ExecutionContext(2));
    REQUIRE(split.status == nnlift::Status::Success);
    CHECK(split.validation.rows > 1500);
    CHECK(split.moments.subspace_sample_rows == 4506);
    for (const nnlift::TrainResult& r : train_in_parts(data, o, {8192})) {
      CHECK(same_network(r.network, split.network));
      CHECK(r.validation.r2 == split.validation.r2);
    }
  }

  TEST_CASE(
      "execution: with a validation split, any partition on block boundaries gives the "
      "single model bitwise") {
    // The split is keyed by global row index and its subsets' blocks are cut where the full
    // set's are, so every part sees the same rows in the same blocks. The subsets' local
    // matrices differ in length (20003 rows: not a multiple of the vector width), so a sum that
    // depended on a column's address would round differently on each part (it did, before
    // detail::sum_of and detail::column_sums).
    const nnlift::Dataset data = planted_set(nnlift::Task::Regression, 6);
    nnlift::TrainOptions o;
    o.hidden = 2;
    o.seed = 2;
    o.refine.enabled = true;
    o.refine.max_iterations = 15;
    o.validation.fraction = 0.25;
    const nnlift::TrainResult whole = nnlift::train(data, o, ExecutionContext(2));
    const std::vector<nnlift::TrainResult> parts = train_in_parts(data, o, {8192});
    REQUIRE(parts.size() == 2);
    CHECK(whole.validation.rows > 4500);
    CHECK(whole.validation.rows < 5500);
    for (const nnlift::TrainResult& r : parts) {
      CHECK(same_network(r.network, whole.network));
      CHECK(r.validation.rows == whole.validation.rows);
      CHECK(r.validation.r2 == whole.validation.r2);
    }
  }

  TEST_CASE("execution: the adaptive score on heavy-tailed inputs gives the same bits in parts") {
    // Its tails and the rank-Gauss map come from one strided sample gathered from every part:
    // every part decides to try the map, fits the same one and chooses the same candidate.
    nnlift::Dataset data = planted_set(nnlift::Task::Regression, 7);
    data.X = data.X.array().exp().matrix();
    nnlift::TrainOptions o;
    o.hidden = 2;
    o.seed = 3;
    REQUIRE(o.score == nnlift::ScoreModel::Adaptive);
    const nnlift::TrainResult whole = nnlift::train(data, o, ExecutionContext(2));
    REQUIRE(whole.candidates.size() == 2);  // the rank-Gauss map was tried
    const std::vector<nnlift::TrainResult> parts = train_in_parts(data, o, {8192});
    for (const nnlift::TrainResult& r : parts) {
      CHECK(same_network(r.network, whole.network));
      CHECK(r.network.input_map.x == whole.network.input_map.x);
      CHECK(r.network.input_map.z == whole.network.input_map.z);
      CHECK(r.input_tails.median_kurtosis == whole.input_tails.median_kurtosis);
    }
  }

  TEST_CASE("execution: the adaptive score on leptokurtic inputs gives the same bits in parts") {
    // The mixture candidate: its tails, its EM sample and its choice are the same on every part.
    nnlift::SynthOptions so;
    so.dim = 5;
    so.hidden = 2;
    so.samples = 20003;
    so.noise = 0.05;
    so.inputs = nnlift::InputLaw::Laplace;
    so.seed = 4;
    const nnlift::Dataset data = nnlift::training_set(nnlift::make_synthetic(so));
    nnlift::TrainOptions o;
    o.hidden = 2;
    o.seed = 3;
    REQUIRE(o.score == nnlift::ScoreModel::Adaptive);
    const nnlift::TrainResult whole = nnlift::train(data, o, ExecutionContext(2));
    REQUIRE(whole.candidates.size() == 2);  // the mixture score was tried
    CHECK(whole.candidates[1].score == nnlift::ScoreModel::Mixture);
    const std::vector<nnlift::TrainResult> parts = train_in_parts(data, o, {8192});
    for (const nnlift::TrainResult& r : parts) {
      CHECK(same_network(r.network, whole.network));
      CHECK(r.score_used == whole.score_used);
      CHECK(r.mixture.components() == whole.mixture.components());
      CHECK(r.network.metadata_json == whole.network.metadata_json);
    }
  }

  TEST_CASE(
      "execution: the quadratic residual of a row subset has the same bits for any partition") {
    // A validation split's fit rows: the subset's blocks start at local rows whose alignment
    // differs between one process and two; a row sum evaluated straight into the output would
    // be grouped by that alignment (it was, in the quadratic control variate's O(d²) form).
    const Index n = 20003, d = 5;
    nnlift::detail::Rng rng(8);
    const Matrix X = rng.normal_matrix(n, d);
    const Vector y = (X.col(0).array() * X.col(1).array() + X.col(2).array().cube() -
                      (X.col(3).array() + 0.5).abs())
                         .matrix();
    const auto kept = [](Index begin, Index count) {
      std::vector<Index> rows;
      for (Index i = 0; i < count; ++i) {
        if ((begin + i) % 7 != 0) {
          rows.push_back(i);
        }
      }
      return rows;
    };
    const auto residual = [&](const nnlift::RowReducer& parent, Index begin, Index count) {
      const std::vector<Index> rows = kept(begin, count);
      const nnlift::SubsetReducer subset(parent, count, rows);
      const Matrix Xp = X.middleRows(begin, count)(rows, Eigen::all);
      const Vector yp = y.segment(begin, count)(rows);
      return nnlift::residualize(
          Xp, yp, nnlift::Residualize::Quadratic, ExecutionContext(subset, 2));
    };
    const nnlift::LocalReducer one(8192);
    const Vector whole = residual(one, 0, n);
    Exchange exchange(2);
    std::vector<Vector> parts(2);
    std::vector<std::thread> threads;
    for (int p = 0; p < 2; ++p) {
      threads.emplace_back([&, p] {
        const PartReducer reducer(exchange, p);
        parts[static_cast<std::size_t>(p)] =
            p == 0 ? residual(reducer, 0, 8192) : residual(reducer, 8192, n - 8192);
      });
    }
    for (std::thread& t : threads) {
      t.join();
    }
    REQUIRE(parts[0].size() + parts[1].size() == whole.size());
    CHECK((parts[0].array() == whole.head(parts[0].size()).array()).all());
    CHECK((parts[1].array() == whole.tail(parts[1].size()).array()).all());
    // In-sample, the quadratic residual is orthogonal to the quadratic features.
    const std::vector<Index> rows = kept(0, n);
    const Matrix Xk = X(rows, Eigen::all);
    double worst = std::abs(whole.sum());
    for (Index a = 0; a < d; ++a) {
      worst = std::max(worst, std::abs(Xk.col(a).dot(whole)));
      for (Index b = a; b < d; ++b) {
        worst = std::max(worst, std::abs(Xk.col(a).cwiseProduct(Xk.col(b)).dot(whole)));
      }
    }
    CHECK(worst < 1e-7 * static_cast<double>(rows.size()));
  }

  TEST_CASE(
      "execution: the classes' cross-validation (gathered rows, chains of fits in parallel) gives "
      "one model for any thread count and partition") {
    // 9,000 rows: the output layer's cross-validation runs on all of them (no subsample). Every
    // part gathers the rows and runs the (fold, factor) chains on its own copy, one thread each;
    // the single process runs them on 2 threads. (Two trainings, not three: 10.7 s under the
    // sanitizers with a third on 1 thread.)
    nnlift::Dataset data = rows_of(planted_set(nnlift::Task::Regression, 4), 0, 9000);
    for (Index i = 0; i < data.y.size(); ++i) {  // three classes: the softmax path
      data.y(i) = data.y(i) < -0.2 ? 0.0 : (data.y(i) < 0.2 ? 1.0 : 2.0);
    }
    nnlift::TrainOptions o;
    o.hidden = 2;
    o.labels.task = nnlift::Task::Classification;
    o.validation.fraction = 0.0;
    const nnlift::TrainResult two = nnlift::train(data, o, ExecutionContext(2));
    REQUIRE(two.network.classes.size() == 3);
    const std::vector<nnlift::TrainResult> parts = train_in_parts(data, o, {8192});
    REQUIRE(parts.size() == 2);
    for (const nnlift::TrainResult& r : parts) {
      CHECK(same_network(r.network, two.network));
    }
  }

  TEST_CASE("execution: a part with a class-less fold still takes the three-class path") {
    // The second part holds 2 rows, so one of the output layer's three folds has none of its
    // rows there. Whether the classes are many must not depend on a part's rows (it did: an
    // empty one-hot block read as "two classes", and that part ran other collective passes).
    nnlift::Dataset data = planted_set(nnlift::Task::Regression, 7);
    const Vector sorted = [&] {
      Vector v = data.y;
      std::sort(v.begin(), v.end());
      return v;
    }();
    const double low = sorted(sorted.size() / 3), high = sorted(2 * sorted.size() / 3);
    for (Index i = 0; i < data.y.size(); ++i) {
      data.y(i) = data.y(i) < low ? 0.0 : (data.y(i) < high ? 1.0 : 2.0);
    }
    nnlift::TrainOptions o;
    o.hidden = 2;
    o.labels.task = nnlift::Task::Classification;
    o.validation.fraction = 0.0;
    const std::vector<nnlift::TrainResult> parts = train_in_parts(data, o, {data.X.rows() - 2});
    REQUIRE(parts.size() == 2);
    CHECK(parts[0].network.classes.size() == 3);
    CHECK(same_network(parts[0].network, parts[1].network));
  }

  TEST_CASE(
      "execution: the linear term alone weighed against the network on few rows: one choice for "
      "any partition") {
    // 600 rows: five folds, each candidate's held-out losses paired row by row and summed
    // through the folds' reducers; the choice and the network are the same for two parts.
    // (Rows of seed 32: on those of 31 the network with the cubic control variate in the
    // subspace beat the linear term alone on the linear teacher by the margin, by chance; on
    // those of 32 to 35 neither teacher's choice changed.)
    for (const bool linear_teacher : {true, false}) {
      nnlift::detail::Rng rng(32);
      nnlift::Dataset data;
      data.X = rng.normal_matrix(600, 3);
      const Vector noise = rng.normal_matrix(600, 1).col(0);
      data.y = linear_teacher ? Vector(data.X.col(0) - data.X.col(2) + noise)
                              : Vector((2.0 * data.X.col(1).array()).sin().matrix() + 0.1 * noise);
      data.feature_names = {"a", "b", "c"};
      data.target_name = "y";
      nnlift::TrainOptions o;
      o.hidden = 0;  // auto: candidates cross-validated
      const nnlift::TrainResult whole = nnlift::train(data, o, ExecutionContext(2));
      CHECK(whole.units_left_out == linear_teacher);
      const std::vector<nnlift::TrainResult> parts = train_in_parts(data, o, {250});
      for (const nnlift::TrainResult& r : parts) {
        CHECK(r.units_left_out == whole.units_left_out);
        CHECK(same_network(r.network, parts[0].network));
      }
    }
  }

  TEST_CASE("execution: parts not on block boundaries agree with each other and nearly with one") {
    const nnlift::Dataset data = planted_set(nnlift::Task::Regression, 4);
    nnlift::TrainOptions o;
    o.hidden = 2;
    const nnlift::TrainResult whole = nnlift::train(data, o);
    const std::vector<nnlift::TrainResult> parts = train_in_parts(data, o, {5000});
    CHECK(same_network(parts[0].network, parts[1].network));
    const double diff = (parts[0].network.W1 - whole.network.W1).cwiseAbs().maxCoeff();
    INFO("max |W1 difference| " << diff);
    CHECK(diff < 1e-6);
  }

  TEST_CASE("execution: independent jobs run together only where every row is here") {
    // run_independent: at the same time (job 0 alone reports progress) with two threads and a
    // single part; one after another (each reports) with one thread or rows on other parts.
    const auto reports = [](const ExecutionContext& c, const ExecutionContext* other) {
      std::vector<int> seen(3, -1);
      nnlift::detail::run_independent(
          3, c, other, [&](Index i, bool r) { seen[static_cast<std::size_t>(i)] = r ? 1 : 0; });
      return seen;
    };
    const nnlift::LocalReducer local;
    CHECK(local.single_part());
    const nnlift::SubsetReducer subset(local, 10, {1, 4, 7});
    CHECK(subset.single_part());
    const ExecutionContext two(2), one(1), subset_two(subset, 2);
    CHECK(reports(two, nullptr) == std::vector<int>{1, 0, 0});
    CHECK(reports(two, &subset_two) == std::vector<int>{1, 0, 0});
    CHECK(reports(one, nullptr) == std::vector<int>{1, 1, 1});
    Exchange exchange(1);
    const PartReducer part(exchange, 0);
    CHECK(!part.single_part());
    const ExecutionContext elsewhere(part, 2);
    CHECK(reports(elsewhere, nullptr) == std::vector<int>{1, 1, 1});
    CHECK(reports(two, &elsewhere) == std::vector<int>{1, 1, 1});
  }

  TEST_CASE("execution: the refinement's runs give the same bits together as one after another") {
    // With weak or extra units and 200 validation rows or more, the refinement runs from the
    // moment start, the weak units' alternative and a random start, each over the weight
    // decays; with two threads and every row here they run at the same time (their passes over
    // a few thousand rows are one block each), else one after another.
    const nnlift::Dataset data = sine_rows(3000, 9, 0.1);
    nnlift::TrainOptions o;
    o.hidden = 5;  // two extra units
    o.seed = 4;
    o.refine.enabled = true;
    o.refine.max_iterations = 40;
    const nnlift::TrainResult one = nnlift::train(data, o, ExecutionContext(1));
    CHECK(one.refine.random_tried);
    CHECK(one.validation.rows >= 200);
    const nnlift::TrainResult two = nnlift::train(data, o, ExecutionContext(2));
    CHECK(same_network(one.network, two.network));
    CHECK(one.refine.weight_decay == two.refine.weight_decay);
    CHECK(one.validation.mse == two.validation.mse);
    const std::vector<nnlift::TrainResult> parts = train_in_parts(data, o, {2000});
    for (const nnlift::TrainResult& r : parts) {
      CHECK(same_network(r.network, parts[0].network));
    }
  }

  TEST_CASE("execution: cross-validation gives the same bits in parts and on any thread count") {
    // Folds keyed by global row index, each fold's passes through subset reducers, the curves
    // summed in fold order: any partition of the rows and any thread count choose the same
    // decay and iterate count, and train the same network. (Parts cut where the blocks are, as
    // this test's reducer needs: so more rows, with the folds asked for.)
    nnlift::TrainOptions o;
    o.hidden = 3;
    o.seed = 4;
    o.refine.enabled = true;
    o.refine.max_iterations = 40;
    const nnlift::Dataset few = sine_rows(400, 12, 0.3);
    const nnlift::TrainResult one = nnlift::train(few, o, ExecutionContext(1));
    REQUIRE(one.validation.folds == nnlift::kCrossValidationFolds);
    CHECK(one.validation.rows == 400);
    const nnlift::TrainResult two = nnlift::train(few, o, ExecutionContext(2));
    CHECK(same_network(one.network, two.network));
    CHECK(one.validation.mse == two.validation.mse);
    CHECK(one.refine.best_iterate == two.refine.best_iterate);
    CHECK(one.refine.best_iterate > 0);  // refined: the chosen iterate count is the same
    // The random start was cross-validated too (weak units), and chose the same way.
    CHECK(one.refine.random_tried);
    CHECK(two.refine.random_tried);
    CHECK(one.refine.random_start == two.refine.random_start);

    const nnlift::Dataset many = sine_rows(9000, 13, 0.3);
    o.validation.folds = 3;
    o.refine.max_iterations = 10;
    const nnlift::TrainResult whole = nnlift::train(many, o, ExecutionContext(2));
    REQUIRE(whole.validation.folds == 3);
    CHECK(whole.refine.best_iterate > 0);
    const std::vector<nnlift::TrainResult> parts = train_in_parts(many, o, {8192});
    for (const nnlift::TrainResult& r : parts) {
      CHECK(same_network(r.network, whole.network));
      CHECK(r.validation.mse == whole.validation.mse);
      CHECK(r.refine.weight_decay == whole.refine.weight_decay);
      CHECK(r.refine.best_iterate == whole.refine.best_iterate);
      CHECK(r.refine.random_start == whole.refine.random_start);
    }
  }

  TEST_CASE(
      "execution: a row's projections have the same bits wherever it sits and on any threads") {
    // The biases' sample rows are projected on every part and gathered: a row's numbers must not
    // depend on the rows around it, the chunk it falls in, or the thread count.
    const Index n = 5000, d = 37, k = 6;
    nnlift::detail::Rng rng(8);
    const Matrix X = rng.normal_matrix(n, d);
    const Matrix A = rng.normal_matrix(k, d);
    std::vector<Index> rows;
    for (Index i = 3; i < n; i += 2) {
      rows.push_back(i);
    }
    const Matrix one = nnlift::detail::row_projections(A, X, rows, 1);
    const Matrix two = nnlift::detail::row_projections(A, X, rows, 2);
    CHECK((one.array() == two.array()).all());
    CHECK((one - X(rows, Eigen::all) * A.transpose()).cwiseAbs().maxCoeff() < 1e-12);
    // Every 7th row on its own, and the rows from the 1000th on (another chunking), in a copy of
    // X whose rows lie elsewhere.
    const Matrix shifted = X.bottomRows(n - 1);
    for (std::size_t i = 0; i < rows.size(); i += 7) {
      const Matrix alone = nnlift::detail::row_projections(A, shifted, {rows[i] - 1}, 1);
      CHECK((alone.row(0).array() == one.row(static_cast<Index>(i)).array()).all());
    }
    const std::vector<Index> tail(rows.begin() + 1000, rows.end());
    const Matrix later = nnlift::detail::row_projections(A, X, tail, 2);
    CHECK((later.array() == one.bottomRows(later.rows()).array()).all());
  }
  TEST_CASE("execution: strings gathered from parts keep every byte, in part order") {
    // Bytes above 127 (UTF-8, Latin-1) went through a double and back to a signed char: out of
    // range, undefined (UBSan, on a fuzzed file's category).
    const std::vector<std::vector<std::string>> mine = {
        {"caf\xc3\xa9", ""}, {}, {"\xff\x80\x01", "plain"}};
    std::vector<std::vector<std::string>> got(mine.size());
    const std::vector<std::string> errors =
        in_parts(static_cast<int>(mine.size()), [&](int p, const auto& reducer) {
          got[static_cast<std::size_t>(p)] =
              nnlift::detail::gather_strings(reducer, mine[static_cast<std::size_t>(p)]);
        });
    const std::vector<std::string> all = {"caf\xc3\xa9", "", "\xff\x80\x01", "plain"};
    for (std::size_t p = 0; p < mine.size(); ++p) {
      CHECK(errors[p].empty());
      CHECK(got[p] == all);
    }
    CHECK(nnlift::detail::first_message(nnlift::LocalReducer(), "\xe9t\xe9") == "\xe9t\xe9");
  }

  TEST_CASE("execution: an exact sum has the same bits for any order and split of its terms") {
    // Terms whose naive sums depend on their order: large ones that cancel, small ones, mixed
    // signs, subnormals.
    std::vector<double> terms = {1e16, 1.0, -1e16, 0.1, 0.2, 0.3, -1e-300, 4.9e-324, 3.5, -2.25};
    nnlift::detail::Rng rng(11);
    for (int i = 0; i < 500; ++i) {
      terms.push_back(rng.normal() * std::pow(10.0, static_cast<double>(i % 30 - 15)));
    }
    const auto exact = [](const std::vector<double>& t) {
      nnlift::detail::ExactSum s;
      for (const double v : t) {
        s.add(v);
      }
      return s;
    };
    const double once = exact(terms).value();
    std::vector<double> shuffled = terms;
    for (int round = 0; round < 5; ++round) {
      std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(static_cast<unsigned>(round)));
      CHECK(exact(shuffled).value() == once);
      // Split in three, each part's limbs added as doubles (as a reducer adds them).
      const std::size_t a = shuffled.size() / 3, b = 2 * shuffled.size() / 3;
      Vector limbs = exact({shuffled.begin(), shuffled.begin() + a}).limbs();
      limbs += exact({shuffled.begin() + a, shuffled.begin() + b}).limbs();
      limbs += exact({shuffled.begin() + b, shuffled.end()}).limbs();
      CHECK(nnlift::detail::ExactSum::from_limbs(limbs).value() == once);
    }
    // Exact where a naive sum is not: 1e16 + 1 − 1e16 is 1, and 0.1 + 0.2 − 0.3 is the exact
    // difference of the three doubles (2^-55 + 2^-57 ... : 2.7755575615628914e-17).
    CHECK(exact({1e16, 1.0, -1e16}).value() == 1.0);
    CHECK(exact({0.1, 0.2, -0.3}).value() == 2.7755575615628914e-17);
    CHECK(exact({-5.5, 2.0}).value() == -3.5);
    CHECK(exact({4.9e-324, 4.9e-324}).value() == 2 * 4.9e-324);
    CHECK(exact({1.7976931348623157e308, -1.7976931348623157e308, -1.0}).value() == -1.0);
    CHECK(exact({}).value() == 0.0);
  }

  TEST_CASE("execution: an encoding fitted over parts is one part's, bit for bit") {
    // 40 rows: a text column whose category "violet" appears in the last part only, a numeric
    // column with missing values and terms whose sum depends on its order, text class labels
    // with "maybe" only in the first part; part 1 holds no row.
    nnlift::Dataset raw;
    raw.feature_names = {"colour", "amount"};
    raw.target_name = "answer";
    const Index n = 40;
    raw.X = Matrix::Constant(n, 2, std::numeric_limits<double>::quiet_NaN());
    raw.y = Vector::Constant(n, std::numeric_limits<double>::quiet_NaN());
    raw.text.assign(2, {});
    for (Index i = 0; i < n; ++i) {
      raw.text[0].push_back(i >= 30 && i % 3 == 0 ? "violet"
                            : i % 11 == 5         ? ""
                            : i % 2 == 0          ? "red"
                                                  : "blue");
      raw.X(i, 1) = i % 7 == 3 ? std::numeric_limits<double>::quiet_NaN()
                               : (i % 2 == 0 ? 1e15 : -1e15) + 0.1 * static_cast<double>(i);
      raw.target_text.push_back(i == 2 ? "maybe" : i == 17 ? "" : i % 3 == 0 ? "yes" : "no");
    }
    const auto encode = [](nnlift::Dataset data,
                           nnlift::MissingPolicy missing,
                           const nnlift::RowReducer& reducer,
                           std::vector<std::string>& classes) {
      classes = nnlift::encode_text_target(data, "t.csv", reducer);
      nnlift::EncodeOptions eo;
      eo.missing = missing;
      return nnlift::fit_encoding(data, eo, "t.csv", reducer);
    };
    const std::vector<Index> cuts = {0, 12, 12, 29, n};  // part 1: no rows
    for (const auto missing : {nnlift::MissingPolicy::Mean, nnlift::MissingPolicy::DropRows}) {
      CAPTURE(nnlift::to_string(missing));
      std::vector<std::string> classes;
      const nnlift::Encoded one = encode(raw, missing, nnlift::LocalReducer(), classes);
      REQUIRE(classes == std::vector<std::string>{"maybe", "no", "yes"});
      REQUIRE(one.encoding.columns[0].categories ==
              std::vector<std::string>{"blue", "red", "violet"});
      if (missing == nnlift::MissingPolicy::Mean) {
        // The mean of the present values from their exact sum.
        nnlift::detail::ExactSum sum;
        Index present = 0;
        for (Index i = 0; i < n; ++i) {
          if (i != 17 && !std::isnan(raw.X(i, 1))) {
            sum.add(raw.X(i, 1));
            ++present;
          }
        }
        CHECK(one.encoding.columns[1].fill[0] == sum.value() / static_cast<double>(present));
      }
      const int parts = static_cast<int>(cuts.size()) - 1;
      std::vector<nnlift::Encoded> each(static_cast<std::size_t>(parts));
      std::vector<std::vector<std::string>> labels(each.size());
      const std::vector<std::string> errors = in_parts(parts, [&](int p, const auto& reducer) {
        const auto i = static_cast<std::size_t>(p);
        each[i] = encode(raw_rows(raw, cuts[i], cuts[i + 1]), missing, reducer, labels[i]);
      });
      for (std::size_t p = 0; p < each.size(); ++p) {
        CAPTURE(p);
        REQUIRE(errors[p].empty());
        CHECK(labels[p] == classes);
        CHECK(each[p].dropped_rows == one.dropped_rows);
        CHECK(each[p].warnings == one.warnings);
        for (std::size_t j = 0; j < 2; ++j) {
          CHECK(each[p].encoding.columns[j].categories == one.encoding.columns[j].categories);
          CHECK(each[p].encoding.columns[j].fill == one.encoding.columns[j].fill);
        }
      }
      // The parts' encoded rows, stacked, are the one part's.
      Index at = 0;
      for (const nnlift::Encoded& e : each) {
        const Index rows = e.data.X.rows();
        CHECK((e.data.X.array() == one.data.X.middleRows(at, rows).array()).all());
        CHECK((e.data.y.array() == one.data.y.segment(at, rows).array()).all());
        at += rows;
      }
      CHECK(at == one.data.X.rows());
    }
    // Under --missing error a missing value in one part stops every part with its message, the
    // data row counted over all parts, and the one a single part would name: targets first
    // (row 17's, in part 2), though part 0 holds a missing colour (row 5).
    nnlift::Dataset no_label = raw;
    const std::vector<std::string> errors = in_parts(4, [&](int p, const auto& reducer) {
      const auto i = static_cast<std::size_t>(p);
      std::vector<std::string> classes;
      encode(
          raw_rows(no_label, cuts[i], cuts[i + 1]), nnlift::MissingPolicy::Error, reducer, classes);
    });
    for (const std::string& e : errors) {
      CHECK(e ==
            "t.csv: column 'answer', data row 18: missing target value (--missing mean or "
            "drop-rows leave such rows out)");
    }
  }
}
