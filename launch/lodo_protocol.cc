#include "launch/lodo_protocol.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <set>

#include <absl/strings/str_join.h>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "dataio/store.h"
#include "launch/config_paths.h"
#include "launch/version.h"
#include "launch/yaml_reader.h"

namespace instructflip::launch {

std::vector<uint64_t> ParseSeeds(const std::vector<std::string>& items, const std::string& where) {
  std::vector<uint64_t> seeds;
  for (const std::string& item : items) {
    uint64_t seed = 0;
    const char* end = item.data() + item.size();
    const auto parsed = std::from_chars(item.data(), end, seed);
    IF_REQUIRE(!item.empty() && parsed.ec == std::errc() && parsed.ptr == end, where, ": seed '", item,
               "' is not a non-negative integer");
    IF_REQUIRE(std::find(seeds.begin(), seeds.end(), seed) == seeds.end(), where, ": seed ", seed, " appears twice");
    seeds.push_back(seed);
  }
  return seeds;
}

LodoProtocol ParseProtocol(const YAML::Node& root, const std::string& file) {
  LodoProtocol p;
  YamlSection top(root, file, "");
  top.Read("name", &p.name);
  top.Read("train_config", &p.train_config);
  top.Read("ranks", &p.ranks);
  top.Read("explain_per_domain", &p.explain_per_domain);
  IF_REQUIRE(p.explain_per_domain >= 0, file, ": 'explain_per_domain' must be >= 0, got ", p.explain_per_domain);
  top.Read("targets_split", &p.targets_split, kTargetsSplits);
  top.Read("overrides", &p.overrides);
  top.Read("eval_every", &p.eval_every);
  top.Read("selection", &p.selection, kCheckpointSelections);
  IF_REQUIRE(p.eval_every >= 0, file, ": 'eval_every' must be >= 0 (0: only the final step), got ", p.eval_every);
  IF_REQUIRE(p.selection == CheckpointSelection::kFinal || p.eval_every > 0, file, ": 'selection: ",
             kCheckpointSelections.Name(p.selection),
             "' chooses among evaluated steps; set 'eval_every' to evaluate more than the final one");
  std::vector<std::string> seeds;
  top.Read("seeds", &seeds);
  p.seeds = ParseSeeds(seeds, file + ": 'seeds'");
  const YAML::Node subsets = top.Raw("target_subsets");
  const YAML::Node jobs = top.Raw("jobs");
  top.RejectUnknownKeys();
  if (subsets.IsDefined() && !subsets.IsNull()) {
    IF_REQUIRE(subsets.IsMap(), file, ": 'target_subsets' must map target domains to {split, first}");
    for (const auto& item : subsets) {
      IF_REQUIRE(item.first.IsScalar(), file, ": 'target_subsets' has a key that is not a domain name");
      const std::string domain = item.first.as<std::string>();
      YamlSection section(item.second, file, "target_subsets." + domain);
      TargetSubset s;
      section.Read("split", &s.split, kTargetsSplits);
      section.Read("first", &s.first);
      section.RejectUnknownKeys();
      IF_REQUIRE(s.first >= 0, file, ": 'target_subsets.", domain, ".first' must be >= 0, got ", s.first);
      p.target_subsets[domain] = s;
    }
  }
  IF_REQUIRE(!p.name.empty(), file, ": missing key 'name'");
  IF_REQUIRE(!p.train_config.empty(), file, ": missing key 'train_config'");
  IF_REQUIRE(p.ranks >= 1, file, ": 'ranks' must be >= 1, got ", p.ranks);
  IF_REQUIRE(jobs.IsSequence() && jobs.size() > 0, file, ": 'jobs' must be a non-empty list");
  std::set<std::string> names;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const std::string where = "jobs[" + std::to_string(i) + "]";
    IF_REQUIRE(jobs[i].IsMap(), file, ": ", where, " must be a mapping with name, train and test");
    YamlSection section(jobs[i], file, where);
    LodoJob job;
    section.Read("name", &job.name);
    section.Read("train", &job.train);
    section.Read("test", &job.test);
    if (section.Raw("seed").IsDefined()) {  // a saved plan's job, one seed of `group`
      uint64_t seed = 0;
      section.Read("seed", &seed);
      job.seed = seed;
      section.Read("group", &job.group);
      IF_REQUIRE(!job.group.empty(), file, ": ", where, " has a seed but no 'group'");
    }
    section.RejectUnknownKeys();
    IF_REQUIRE(!job.name.empty() && job.name.find('/') == std::string::npos && job.name[0] != '.', file, ": ",
               where, ".name '", job.name, "' must be a non-empty file name");
    IF_REQUIRE(names.insert(job.name).second, file, ": job name '", job.name, "' appears twice");
    IF_REQUIRE(!job.train.empty() && !job.test.empty(), file, ": ", where, " needs non-empty 'train' and 'test'");
    RequireNoRepeats(job.train, file + ": " + where + ".train");
    RequireNoRepeats(job.test, file + ": " + where + ".test");
    for (const std::string& t : job.test) {
      const auto subset = p.target_subsets.find(t);
      const bool test_split_only = subset != p.target_subsets.end() && subset->second.split == Split::kTest;
      IF_REQUIRE(std::find(job.train.begin(), job.train.end(), t) == job.train.end() || test_split_only, file, ": ",
                 where, ": target '", t,
                 "' is also a training domain: it would not be held out (a training domain may be scored on its "
                 "test split only, as a seen domain: target_subsets: {",
                 t, ": {split: test}})");
    }
    IF_REQUIRE(std::any_of(job.test.begin(), job.test.end(),
                           [&](const std::string& t) {
                             return std::find(job.train.begin(), job.train.end(), t) == job.train.end();
                           }),
               file, ": ", where, " tests no held-out domain (every target is a training domain)");
    p.jobs.push_back(std::move(job));
  }
  for (const auto& entry : p.target_subsets) {
    const std::string& domain = entry.first;  // a named variable: lambdas cannot capture a structured binding (C++17)
    IF_REQUIRE(std::any_of(p.jobs.begin(), p.jobs.end(),
                           [&](const LodoJob& j) {
                             return std::find(j.test.begin(), j.test.end(), domain) != j.test.end();
                           }),
               file, ": 'target_subsets' names '", domain, "', which no job tests");
  }
  return p;
}

std::string ProtocolToYaml(const LodoProtocol& p) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << p.name << YAML::Key << "train_config"
      << YAML::Value << p.train_config << YAML::Key << "ranks" << YAML::Value << p.ranks << YAML::Key
      << "explain_per_domain" << YAML::Value << p.explain_per_domain << YAML::Key << "targets_split" << YAML::Value
      << kTargetsSplits.Name(p.targets_split) << YAML::Key << "eval_every" << YAML::Value << p.eval_every << YAML::Key
      << "selection" << YAML::Value << kCheckpointSelections.Name(p.selection) << YAML::Key << "overrides" << YAML::Value
      << YAML::BeginSeq;
  for (const std::string& o : p.overrides) out << o;
  out << YAML::EndSeq << YAML::Key << "target_subsets" << YAML::Value << YAML::BeginMap;
  for (const auto& [domain, s] : p.target_subsets)
    out << YAML::Key << domain << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "split" << YAML::Value
        << kTargetsSplits.Name(s.split) << YAML::Key << "first" << YAML::Value << s.first << YAML::EndMap;
  out << YAML::EndMap << YAML::Key << "jobs" << YAML::Value << YAML::BeginSeq;
  for (const LodoJob& j : p.jobs) {
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << j.name << YAML::Key << "train"
        << YAML::Value << j.train << YAML::Key << "test" << YAML::Value << j.test;
    if (j.seed) out << YAML::Key << "seed" << YAML::Value << *j.seed << YAML::Key << "group" << YAML::Value << j.group;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  return std::string("# Resolved by `instructflip lodo`; every job of this run directory reads it.\n") + out.c_str() +
         "\n";
}

LodoProtocol LoadSavedProtocol(const std::string& run_dir) {
  const std::string path = LodoRunFiles{run_dir}.Protocol();
  IF_REQUIRE(PathExists(path), run_dir, " is not a planned LODO run directory (no protocol.yaml); plan it with "
             "`instructflip lodo --protocol P --run-dir ", run_dir, "`");
  return ParseProtocol(LoadYamlFile(path), path);
}

TrainConfig JobTrainConfig(const LodoProtocol& p, const LodoJob& job) {
  std::vector<std::string> overrides = p.overrides;
  overrides.push_back("data.train_domains=[" + absl::StrJoin(job.train, ", ") + "]");
  if (job.seed) overrides.push_back("seed=" + std::to_string(*job.seed));
  return LoadTrainConfig(p.train_config, overrides);
}

LodoProtocol PlanProtocol(const std::string& run_dir, const std::string& protocol, std::optional<int> ranks,
                          const std::vector<std::string>& overrides, const std::vector<uint64_t>& seeds,
                          bool persist) {
  if (protocol.empty()) {
    IF_REQUIRE(overrides.empty() && seeds.empty(), "lodo: --set and --seeds are only accepted together with --protocol");
    LodoProtocol saved = LoadSavedProtocol(run_dir);
    if (persist) RecordVersion(run_dir, "lodo, continuing the plan of protocol " + saved.name);
    return saved;
  }
  const std::string path = ResolveConfigPath(protocol, "protocols");
  LodoProtocol p = ParseProtocol(LoadYamlFile(path), path);
  // train_config is relative to the working directory or the source tree.
  const std::string config_path = ResolveConfigPath(p.train_config, "train");
  p.train_config = std::filesystem::absolute(config_path).lexically_normal().string();
  if (ranks) p.ranks = *ranks;
  IF_REQUIRE(p.ranks >= 1, "lodo: --ranks must be >= 1, got ", p.ranks);
  p.overrides.insert(p.overrides.end(), overrides.begin(), overrides.end());
  if (!seeds.empty()) p.seeds = seeds;
  ExpandSeeds(&p);
  // Every job's configuration must load (unknown keys, types, store) before anything runs.
  for (const LodoJob& job : p.jobs) {
    const TrainConfig config = JobTrainConfig(p, job);
    IF_REQUIRE(p.selection != CheckpointSelection::kSourceValidation || config.trainer.validation_fraction > 0,
               "lodo: selection source_validation needs a validation hold-out, but job ", job.name,
               " has data.validation_fraction 0");
    const auto store = Store::Open(config.trainer.store);
    store->ResolveDomains(job.train);
    const std::vector<int> targets = store->ResolveDomains(job.test);
    for (size_t t = 0; t < targets.size(); ++t) {
      const DomainCounts& counts = store->manifest().domains[targets[t]].counts;
      const auto subset = p.target_subsets.find(job.test[t]);
      const std::optional<Split> split = subset != p.target_subsets.end() ? subset->second.split : p.targets_split;
      const int64_t scored = split ? counts.counts[int(*split)][0] + counts.counts[int(*split)][1] : counts.total();
      IF_REQUIRE(scored > 0, "lodo: job ", job.name, ": target domain '", job.test[t], "' has no samples to score (",
                 subset != p.target_subsets.end() ? DescribeTargetSubsets({*subset})
                                                  : DescribeTargetsSplit(p.targets_split),
                 ") in ", config.trainer.store);
    }
  }
  const std::string text = ProtocolToYaml(p);
  const std::string saved = LodoRunFiles{run_dir}.Protocol();
  if (PathExists(saved)) {
    // Compared as this build writes it: a plan saved before a key was added still matches.
    IF_REQUIRE(ProtocolToYaml(ParseProtocol(LoadYamlFile(saved), saved)) == text, "lodo: ", run_dir, " was planned with another protocol, ranks, --seeds or --set (see ",
               saved, "); use a new --run-dir, or omit --protocol/--set to continue that plan");
  } else if (persist) {
    std::filesystem::create_directories(run_dir);
    WriteFileAtomic(saved, text);
  }
  if (persist) RecordVersion(run_dir, "lodo plan of protocol " + p.name);
  return p;
}

}  // namespace instructflip::launch
