// CSV reading throughput: read_csv on a rows×cols numeric file, 1 and 2 threads, best of N.
// SPDX-License-Identifier: MIT
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nnlift/csv.hpp>
#include <nnlift/experimental.hpp>

namespace {

// Writes a file of Gaussian values printed with `digits` significant digits (like "%.6g").
void make_file(const std::string& path, long rows, long cols, int digits) {
  std::ofstream out(path, std::ios::binary);
  for (long j = 0; j < cols; ++j) {
    out << (j ? "," : "") << (j + 1 == cols ? std::string("y") : "x" + std::to_string(j + 1));
  }
  out << '\n';
  nnlift::experimental::Rng rng(1);
  std::string line;
  char buffer[64];
  for (long i = 0; i < rows; ++i) {
    line.clear();
    for (long j = 0; j < cols; ++j) {
      const auto r = std::to_chars(
          buffer, buffer + sizeof buffer, rng.normal(), std::chars_format::general, digits);
      if (j) {
        line.push_back(',');
      }
      line.append(buffer, r.ptr);
    }
    line.push_back('\n');
    out.write(line.data(), static_cast<std::streamsize>(line.size()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  long rows = 1000000, cols = 101;
  int digits = 6, repeats = 3;
  std::string path = "/tmp/nnlift_bench_csv.csv";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--rows") {
      rows = std::stol(v);
    } else if (a == "--cols") {
      cols = std::stol(v);
    } else if (a == "--digits") {
      digits = std::stoi(v);
    } else if (a == "--repeats") {
      repeats = std::stoi(v);
    } else if (a == "--file") {
      path = v;
    }
  }
  if (argc % 2 == 0) {
    std::cerr << "usage: bench_csv [--rows 1000000] [--cols 101] [--digits 6] [--repeats 3] "
                 "[--file /tmp/nnlift_bench_csv.csv]\n";
    return 2;
  }
  const std::string tag =
      path + "." + std::to_string(rows) + "x" + std::to_string(cols) + "d" + std::to_string(digits);
  if (!std::filesystem::exists(tag)) {
    std::cerr << "bench_csv: writing " << tag << " ...\n";
    make_file(tag, rows, cols, digits);
  }
  const double mb = static_cast<double>(std::filesystem::file_size(tag)) / 1e6;
  std::printf("file: %s, %ld rows x %ld columns, %d significant digits, %.1f MB\n",
              tag.c_str(),
              rows,
              cols,
              digits,
              mb);
  double base = 0;
  for (int threads : {1, 2}) {
    double best = 1e300;
    for (int r = 0; r < repeats; ++r) {
      nnlift::CsvOptions o;
      o.num_threads = threads;
      const auto t0 = std::chrono::steady_clock::now();
      const nnlift::Dataset data = nnlift::read_csv(tag, o);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::min(best, s);
      if (data.X.rows() != rows) {
        std::cerr << "bench_csv: read " << data.X.rows() << " rows\n";
        return 1;
      }
    }
    if (threads == 1) {
      base = best;
    }
    std::printf("read_csv, %d thread%s: %.3f s = %.0f MB/s (speed-up %.2fx), best of %d\n",
                threads,
                threads == 1 ? " " : "s",
                best,
                mb / best,
                base / best,
                repeats);
  }
  return 0;
}
