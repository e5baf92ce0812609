#include "ddcsr/threads.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ddcsr {

static int g_threads = 0;

static int positive_env(const char* name) {
  const char* value = std::getenv(name);
  if (!value) return 0;
  try {
    const int n = std::stoi(value);
    return n > 0 ? n : 0;
  } catch (...) {
    return 0;
  }
}

int resolve_thread_count(int requested) {
  if (requested > 0) return requested;
  if (int n = positive_env("SLURM_CPUS_PER_TASK")) return n;
  if (int n = positive_env("OMP_NUM_THREADS")) return n;
  return std::max(1u, std::thread::hardware_concurrency());
}

void set_thread_count(int n) {
  g_threads = std::max(1, n);
  // Debian's LibTorch starts with one intra-op thread; give it the same budget as our loops.
  at::set_num_threads(g_threads);
}

int thread_count() { return g_threads > 0 ? g_threads : resolve_thread_count(0); }

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t min_chunk) {
  if (n <= 0) return;
  const int64_t chunk = std::max<int64_t>(1, min_chunk);
  const int64_t chunks = (n + chunk - 1) / chunk;
  const int workers = static_cast<int>(std::min<int64_t>(thread_count(), chunks));
  if (workers <= 1) {
    for (int64_t c = 0; c < chunks; ++c) fn(c * chunk, std::min(n, (c + 1) * chunk));
    return;
  }
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    for (int64_t c; (c = next.fetch_add(1)) < chunks;) {
      try {
        fn(c * chunk, std::min(n, (c + 1) * chunk));
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next = chunks;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < workers; ++w) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace ddcsr
