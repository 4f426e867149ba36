#include "core/compute_threads.h"

#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "core/available_cpus.h"
#include "core/parallel.h"

namespace nle {
namespace {

thread_local bool on_compute_lane = false;

struct Lane {
  int pool = 0;  // OpenMP threads this lane's pool may hold: the largest num_threads - 1 it ran
  bool busy = false;
  bool retire = false;
  bool done = false;
  const std::function<void()>* task = nullptr;
  int task_threads = 1;
  std::exception_ptr error;
  std::condition_variable wake;      // a task, or retirement
  std::condition_variable finished;  // the task is done
};

class Lanes {
 public:
  explicit Lanes(int budget) : budget_(budget) {}

  void run(int num_threads, const std::function<void()>& task) {
    // Pool threads the work needs, counted against the budget (asked for more threads than
    // the CPUs, it takes the whole budget).
    const int need = std::min(num_threads - 1, budget_);
    std::unique_lock<std::mutex> lock(mutex_);
    Lane* lane = nullptr;
    try {
      while ((lane = take_lane(need)) == nullptr) lane_idle_.wait(lock);
    } catch (const std::system_error&) {
      // No thread could be started (a limit on the process's threads): the caller runs it.
      lock.unlock();
      const ThreadScope scope(num_threads);
      task();
      return;
    }
    lane->busy = true;
    lane->done = false;
    lane->task = &task;
    lane->task_threads = num_threads;
    lane->wake.notify_one();
    lane->finished.wait(lock, [lane] { return lane->done; });
    std::exception_ptr error = std::move(lane->error);
    lane->error = nullptr;
    lane->task = nullptr;
    lane->busy = false;
    lane_idle_.notify_all();
    lock.unlock();
    if (error) std::rethrow_exception(error);
  }

  int count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int>(lanes_.size());
  }

 private:
  // An idle lane for work needing `need` pool threads, or nullptr when the caller must
  // wait for one. Called with mutex_ held.
  Lane* take_lane(int need) {
    Lane* best = nullptr;
    for (Lane* l : lanes_)
      if (!l->busy && l->pool >= need && (best == nullptr || l->pool < best->pool)) best = l;
    if (best != nullptr) return best;
    for (Lane* l : lanes_) {
      if (!l->busy && used_ - l->pool + need <= budget_) {
        used_ += need - l->pool;
        l->pool = need;
        return l;
      }
    }
    if (used_ + need <= budget_) return start_lane(need);
    if (std::none_of(lanes_.begin(), lanes_.end(), [](const Lane* l) { return l->busy; })) {
      // Idle lanes hold the budget in pools too small for this work: keep one and grow it,
      // end the others (a thread's OpenMP pool ends with the thread).
      for (size_t i = 1; i < lanes_.size(); ++i) {
        lanes_[i]->retire = true;
        lanes_[i]->wake.notify_one();
      }
      lanes_.resize(1);
      lanes_[0]->pool = need;
      used_ = need;
      return lanes_[0];
    }
    return nullptr;
  }

  // A new lane, or std::system_error when no thread can be started (nothing changed then).
  Lane* start_lane(int pool) {
    auto lane = std::make_unique<Lane>();  // then owned by its thread, which deletes it when retired
    lane->pool = pool;
    std::thread(&Lanes::serve, this, lane.get()).detach();  // serve waits for mutex_, held here
    used_ += pool;
    lanes_.push_back(lane.release());
    return lanes_.back();
  }

  void serve(Lane* lane) {
    on_compute_lane = true;
    pthread_setname_np(pthread_self(), "nle-compute");  // the lane's OpenMP threads inherit it
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      lane->wake.wait(lock, [lane] { return lane->retire || (lane->task != nullptr && !lane->done); });
      if (lane->retire) break;
      const std::function<void()>* task = lane->task;
      const int threads = lane->task_threads;
      lock.unlock();
      try {
        const ThreadScope scope(threads);
        (*task)();
      } catch (...) {
        lane->error = std::current_exception();
      }
      lock.lock();
      lane->done = true;
      lane->finished.notify_one();
    }
    lock.unlock();
    delete lane;
  }

  const int budget_;
  int used_ = 0;  // pool threads held by all lanes
  std::mutex mutex_;
  std::condition_variable lane_idle_;
  std::vector<Lane*> lanes_;
};

// Never destroyed: lanes are detached threads that may still wait on it at exit. A forked
// child has none of the parent's threads and starts a set of its own.
Lanes* lanes_instance = nullptr;
std::once_flag lanes_once;

Lanes& lanes() {
  std::call_once(lanes_once, [] {
    // The pool threads all lanes may hold: the CPUs beside one (at least one, so that on one
    // CPU work asked to run on more threads still shares a single lane).
    const int budget = std::max(available_cpus() - 1, 1);
    lanes_instance = new Lanes(budget);
    pthread_atfork(nullptr, nullptr, [] { lanes_instance = new Lanes(std::max(available_cpus() - 1, 1)); });
  });
  return *lanes_instance;
}

}  // namespace

void run_on_compute_threads(int num_threads, const std::function<void()>& task) {
  num_threads = std::max(num_threads, 1);
  if (num_threads == 1 || on_compute_lane) {
    const ThreadScope scope(num_threads);
    task();
    return;
  }
  lanes().run(num_threads, task);
}

int compute_lane_count() { return lanes().count(); }

}  // namespace nle
