// Progress of long work (synth, ingest, evaluation, store verify, the T5
// warm-up) for whoever shows it. The layer doing the work counts; the command
// decides how an update is shown (a line, a JSON line, nothing) and how often
// (ProgressSink), and this class when: at most every `interval_s`, and once
// more at the end of work that showed an update or took that long.
// Thread-safe: workers may Advance at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>

namespace instructflip {

struct ProgressUpdate {
  std::string what;  // "synth", "ingest", "eval synA", ...
  std::string unit;  // "images", "samples", "steps"
  int64_t done = 0;
  int64_t total = 0;
  double elapsed_s = 0;
  double rate = 0;   // units per second so far
  double eta_s = 0;  // at that rate
  bool final = false;
};

// "synth: 1200/4800 images, 350/s, ETA 10 s" ("..., done in 14 s" at the end).
inline std::string ProgressText(const ProgressUpdate& u) {
  char text[256];
  if (u.final)
    std::snprintf(text, sizeof text, "%s: %lld/%lld %s, done in %.0f s", u.what.c_str(), static_cast<long long>(u.done),
                  static_cast<long long>(u.total), u.unit.c_str(), u.elapsed_s);
  else
    std::snprintf(text, sizeof text, "%s: %lld/%lld %s, %.*f/s, ETA %.0f s", u.what.c_str(),
                  static_cast<long long>(u.done), static_cast<long long>(u.total), u.unit.c_str(),
                  u.rate >= 10 ? 0 : 2, u.rate, u.eta_s);
  return text;
}

// Where and how often updates go; an empty `show` shows nothing.
struct ProgressSink {
  std::function<void(const ProgressUpdate&)> show;
  double interval_s = 10;
};

class Progress {
 public:
  // The counting costs a mutex per Advance, shown or not.
  Progress(std::string what, std::string unit, int64_t total, ProgressSink sink)
      : sink_(std::move(sink.show)), interval_s_(sink.interval_s) {
    update_.what = std::move(what);
    update_.unit = std::move(unit);
    update_.total = total;
  }
  ~Progress() { Finish(); }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Advance(int64_t n = 1) {
    std::lock_guard<std::mutex> lock(mutex_);
    Show(update_.done + n, false);
  }
  void Set(int64_t done) {
    std::lock_guard<std::mutex> lock(mutex_);
    Show(done, false);
  }
  // The closing update (once; only after an earlier one, or `interval` of work).
  void Finish() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finished_) return;
    finished_ = true;
    Show(update_.done, true);
  }

 private:
  void Show(int64_t done, bool final) {
    update_.done = done;
    if (!sink_) return;
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const bool due = final ? (shown_ || elapsed >= interval_s_)
                           : std::chrono::duration<double>(now - last_).count() >= interval_s_;
    if (!due) return;
    last_ = now;
    shown_ = true;
    update_.elapsed_s = elapsed;
    update_.rate = elapsed > 0 ? done / elapsed : 0;
    update_.eta_s = update_.rate > 0 && update_.total > done ? (update_.total - done) / update_.rate : 0;
    update_.final = final;
    sink_(update_);
  }

  std::function<void(const ProgressUpdate&)> sink_;
  double interval_s_;
  std::mutex mutex_;
  ProgressUpdate update_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_ = start_;
  bool shown_ = false, finished_ = false;
};

}  // namespace instructflip
