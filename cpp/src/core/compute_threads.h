// The threads a model's work runs on: its load and its calls, from whichever thread makes
// them.
//
// OpenMP (libgomp, under oneDNN, MKL and our kernels) gives every thread that starts a
// parallel region a pool of its own, kept until that thread exits. Once the process holds
// more OpenMP threads than it has CPUs, libgomp's waiting threads spin 100 times instead
// of 300,000 before they sleep, and every parallel region then wakes sleeping threads.
// A service that loads a model on one thread and calls it from another held two pools:
// on the 2-vCPU Zen 4 host, MiniLM int8 at batch 1 took 3.9 ms a call from the other
// thread against 1.2 ms from the loading thread.
//
// So work with more than one thread runs on "compute lanes": long-lived threads, each
// with one OpenMP pool, and no more lanes than keep all the pools within the CPUs this
// process may use (available_cpus). A caller hands its work to an idle lane and sleeps
// until it is done; concurrent callers beyond the lanes wait for one. Work with one
// thread starts no pool and runs on the calling thread, as does work started on a lane.
#pragma once

#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

namespace nle {

// Runs `task` with `num_threads` OpenMP threads (and MKL threads), on a compute lane when
// num_threads > 1; rethrows what it throws.
void run_on_compute_threads(int num_threads, const std::function<void()>& task);

// The same for a callable with a result.
template <class F>
auto run_with_threads(int num_threads, F&& fn) -> decltype(fn()) {
  using Result = decltype(fn());
  if constexpr (std::is_void_v<Result>) {
    run_on_compute_threads(num_threads, std::function<void()>(std::forward<F>(fn)));
  } else {
    std::optional<Result> result;
    run_on_compute_threads(num_threads, [&] { result.emplace(fn()); });
    return std::move(*result);
  }
}

// How many compute lanes exist now (each a thread, with its OpenMP pool beside it).
int compute_lane_count();

}  // namespace nle
