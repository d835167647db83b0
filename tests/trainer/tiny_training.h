// What the trainer tests share: a small synthetic store and the tiny model's
// training options (6 steps, OneCycle peaking at lr 1e-3 at 40 %).
#pragma once

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "dataio/synth.h"
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

// The loss of the first step logged in `run_dir`/metrics.jsonl (log_every 1:
// step 1), to check that a run learnt.
inline double FirstLoggedLoss(const std::string& run_dir) {
  std::ifstream metrics(run_dir + "/metrics.jsonl");
  std::string first_line;
  std::getline(metrics, first_line);
  return nlohmann::json::parse(first_line).at("loss").get<double>();
}

}  // namespace instructflip::testutil
