// LODO protocols from YAML (configs/protocols/) and their plan in a run
// directory (protocol.yaml), and one job as an MPI rank (lodo_job.cc).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "launch/train_config_yaml.h"
#include "trainer/lodo.h"

namespace instructflip::launch {

// A protocol from its YAML; every error names `file` and the key.
LodoProtocol ParseProtocol(const YAML::Node& root, const std::string& file);
// The resolved protocol as saved in a run directory (parses back to the same).
std::string ProtocolToYaml(const LodoProtocol& p);
// The protocol a run directory was planned with.
LodoProtocol LoadSavedProtocol(const std::string& run_dir);
// A job's training configuration: the protocol's config, its overrides, and
// the job's training domains.
TrainConfig JobTrainConfig(const LodoProtocol& p, const LodoJob& job);
// The protocol for this invocation: from `protocol` (a name or file; `ranks`
// and `overrides` applied), saved into the run directory the first time and
// checked against it afterwards; an empty `protocol` continues the saved plan.
// Every job's configuration and domains are checked before anything runs.
// `seeds` (lodo --seeds) replace the protocol's own; either expands each job
// into one per seed. Without `persist` (lodo --dry-run) the plan is checked
// (against a saved one too) but nothing is written.
LodoProtocol PlanProtocol(const std::string& run_dir, const std::string& protocol, std::optional<int> ranks,
                          const std::vector<std::string>& overrides, const std::vector<uint64_t>& seeds = {},
                          bool persist = true);
// "2,3,4" or a YAML list's items -> seeds; errors name `where` and the item.
std::vector<uint64_t> ParseSeeds(const std::vector<std::string>& items, const std::string& where);

// One job of a planned run directory, as one rank of an MPI job: train (or
// resume), validate (threshold), test, result.json. Returns the exit code.
int RunLodoJob(const std::string& run_dir, int index);

}  // namespace instructflip::launch
