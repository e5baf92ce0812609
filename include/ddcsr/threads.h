// Thread count policy and a small parallel loop for the project's own voxel/vertex loops.
#pragma once
#include <cstdint>
#include <functional>

namespace ddcsr {

// `requested` > 0 wins; else SLURM_CPUS_PER_TASK, else OMP_NUM_THREADS, else all cores.
int resolve_thread_count(int requested);
void set_thread_count(int n);
int thread_count();

// Calls fn(begin, end) on contiguous chunks of [0, n) from up to thread_count() threads.
// The chunking depends only on n and the chunk size, never on the thread count, so results
// that are reduced per chunk are identical whatever the number of threads.
void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn,
                  int64_t min_chunk = 1024);

}  // namespace ddcsr
