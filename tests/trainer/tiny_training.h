// What the trainer tests share: a small synthetic store and the tiny model's
// training options (6 steps, OneCycle peaking at lr 1e-3 at 40 %).
#pragma once

#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataio/producers/synth.h"
#include "tests/model/tiny_model.h"
#include "trainer/trainer.h"

namespace instructflip::testutil {

// Two 32 px domains of `per_domain` samples; returns the store's directory.
inline std::string SynthesizeTinyStore(const std::string& dir, int per_domain, uint64_t seed) {
  SynthOptions synth;
  synth.out = dir + "/store";
  synth.domains = 2;
  synth.per_domain = per_domain;
  synth.size = 32;
  synth.seed = seed;
  Synthesize(synth);
  return synth.out;
}

inline TrainerOptions TinyTrainerOptions(const std::string& store, int batch_per_rank, int accumulation) {
  TrainerOptions o;
  o.model = TinyConfig();
  o.store = store;
  o.batch_per_rank = batch_per_rank;
  o.accumulation = accumulation;
  o.total_steps = 6;
  o.schedule.max_lr = 1e-3;
  o.schedule.pct_start = 0.4;
  o.seed = 5;
  return o;
}

// Means of `key` (e.g. "loss_classification") over the first and the last
// `n` steps logged in `run_dir`/metrics.jsonl (log_every 1), to check that a
// short run learnt: single steps are too noisy (each sees another batch, and
// label-blind style questions vary per sample).
// The step records of `run_dir`/metrics.jsonl, in file order (session markers left out).
inline std::vector<nlohmann::json> StepRecords(const std::string& run_dir) {
  std::ifstream metrics(run_dir + "/metrics.jsonl");
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(metrics, line);) {
    nlohmann::json record = nlohmann::json::parse(line);
    if (record.contains("step")) records.push_back(std::move(record));
  }
  return records;
}

inline std::pair<double, double> FirstAndLastLoggedMeans(const std::string& run_dir, const std::string& key, int n) {
  std::vector<double> values;
  for (const nlohmann::json& record : StepRecords(run_dir)) values.push_back(record.at(key).get<double>());
  if (values.size() < 2 * static_cast<size_t>(n)) throw std::runtime_error(run_dir + ": too few logged steps");
  double first = 0, last = 0;
  for (int i = 0; i < n; ++i) {
    first += values[i] / n;
    last += values[values.size() - 1 - i] / n;
  }
  return {first, last};
}

}  // namespace instructflip::testutil
