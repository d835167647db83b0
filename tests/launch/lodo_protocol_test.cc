// LODO protocols: parsing with named errors, the saved form parses back to the
// same protocol, every shipped protocol loads; planning into a run directory.
#include "launch/lodo_protocol.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "dataio/base/file_util.h"
#include "dataio/producers/synth.h"
#include "tests/common/test_util.h"

namespace instructflip::launch {
namespace {

using instructflip::testing::ErrorOf;
using instructflip::testing::TempDir;

LodoProtocol Parse(const std::string& yaml) { return ParseProtocol(YAML::Load(yaml), "p.yaml"); }

constexpr char kGood[] = R"(
name: two
train_config: configs/train/synthetic_tiny.yaml
ranks: 2
explain_per_domain: 3
targets_split: all
overrides: [total_steps=4]
jobs:
  - {name: AB_to_C, train: [synA, synB], test: [synC]}
  - {name: C_to_AB, train: [synC], test: [synA, synB]}
)";

TEST(LodoProtocol, ParsesEveryFieldAndRoundTrips) {
  const LodoProtocol p = Parse(kGood);
  EXPECT_EQ(p.name, "two");
  EXPECT_EQ(p.ranks, 2);
  EXPECT_EQ(p.explain_per_domain, 3);
  EXPECT_EQ(p.targets_split, std::nullopt);  // every sample of a target, as the reference
  EXPECT_EQ(Parse("name: n\ntrain_config: x\njobs: [{name: A, train: [a], test: [b]}]\n").targets_split,
            Split::kTest);  // the default
  EXPECT_EQ(p.overrides, std::vector<std::string>{"total_steps=4"});
  ASSERT_EQ(p.jobs.size(), 2u);
  EXPECT_EQ(p.jobs[1].name, "C_to_AB");
  EXPECT_EQ(p.jobs[1].test, (std::vector<std::string>{"synA", "synB"}));
  const std::string saved = ProtocolToYaml(p);
  const LodoProtocol again = ParseProtocol(YAML::Load(saved), "protocol.yaml");
  EXPECT_EQ(ProtocolToYaml(again), saved);
  EXPECT_EQ(again.jobs[0].train, p.jobs[0].train);
  EXPECT_EQ(again.targets_split, std::nullopt);
}

TEST(LodoProtocol, BadProtocolsAreRefusedNamingTheProblem) {
  auto error = [](const std::string& yaml) { return ErrorOf([&] { Parse(yaml); }); };
  EXPECT_NE(error("train_config: x\njobs: [{name: A, train: [a], test: [b]}]\n").find("missing key 'name'"),
            std::string::npos);
  EXPECT_NE(error("name: n\ntrain_config: x\njobs: [{name: A, train: [a, b], test: [b]}]\n")
                .find("target 'b' is also a training domain"),
            std::string::npos);
  EXPECT_NE(error("name: n\ntrain_config: x\njobs: [{name: A, train: [a], test: [b]}, {name: A, train: [b], test: [a]}]\n")
                .find("job name 'A' appears twice"),
            std::string::npos);
  EXPECT_NE(error("name: n\ntrain_config: x\njobs: [{name: ../A, train: [a], test: [b]}]\n").find("'../A'"),
            std::string::npos);
  EXPECT_NE(error("name: n\ntrain_config: x\nrank: 2\njobs: [{name: A, train: [a], test: [b]}]\n").find("rank"),
            std::string::npos);
  EXPECT_NE(error("name: n\ntrain_config: x\nranks: 0\njobs: [{name: A, train: [a], test: [b]}]\n").find("'ranks'"),
            std::string::npos);
  EXPECT_NE(error("name: n\ntrain_config: x\njobs: []\n").find("'jobs' must be a non-empty list"), std::string::npos);
  EXPECT_NE(error("name: n\ntrain_config: x\nselection: best\njobs: [{name: A, train: [a], test: [b]}]\n")
                .find("'selection' must be final, source_validation or target_oracle, got 'best'"),
            std::string::npos);
  EXPECT_NE(error("name: n\ntrain_config: x\neval_every: -2\njobs: [{name: A, train: [a], test: [b]}]\n")
                .find("'eval_every' must be >= 0"),
            std::string::npos);
  EXPECT_NE(error("name: n\ntrain_config: x\nselection: target_oracle\njobs: [{name: A, train: [a], test: [b]}]\n")
                .find("set 'eval_every' to evaluate more than the final one"),
            std::string::npos);
  EXPECT_NE(error("name: n\ntrain_config: x\ntargets_split: train\njobs: [{name: A, train: [a], test: [b]}]\n")
                .find("p.yaml: 'targets_split' must be test or all, got 'train'"),
            std::string::npos);
  EXPECT_NE(error("name: n\ntrain_config: x\nexplain_per_domain: -3\njobs: [{name: A, train: [a], test: [b]}]\n")
                .find("p.yaml: 'explain_per_domain' must be >= 0, got -3"),
            std::string::npos);
}

// target_subsets: per target, its test split or both and the first N samples;
// a training domain may be a target only through its test split.
TEST(LodoProtocol, TargetSubsetsAreParsedCheckedAndSaved) {
  auto parse = [&](const std::string& text) { return ParseProtocol(YAML::Load(text), "p.yaml"); };
  const std::string jobs = "jobs: [{name: J, train: [ca], test: [m, ca]}]\n";
  const LodoProtocol p = parse("name: n\ntrain_config: x\ntargets_split: all\n"
                               "target_subsets: {ca: {split: test, first: 9600}, m: {first: 5}}\n" + jobs);
  ASSERT_EQ(p.target_subsets.size(), 2u);
  EXPECT_EQ(p.target_subsets.at("ca"), (TargetSubset{Split::kTest, 9600}));
  EXPECT_EQ(p.target_subsets.at("m"), (TargetSubset{std::nullopt, 5}));
  const LodoProtocol again = parse(ProtocolToYaml(p));
  EXPECT_EQ(again.target_subsets, p.target_subsets);
  EXPECT_EQ(ProtocolToYaml(again), ProtocolToYaml(p));
  auto error = [&](const std::string& text) { return ErrorOf([&] { parse(text); }); };
  std::string e = error("name: n\ntrain_config: x\ntarget_subsets: {ca: {first: 9600}}\n" + jobs);
  EXPECT_NE(e.find("target 'ca' is also a training domain"), std::string::npos) << e;
  e = error("name: n\ntrain_config: x\ntarget_subsets: {ca: {split: test}, z: {first: 1}}\n" + jobs);
  EXPECT_NE(e.find("'target_subsets' names 'z', which no job tests"), std::string::npos) << e;
  e = error("name: n\ntrain_config: x\ntarget_subsets: {ca: {split: train}}\n" + jobs);
  EXPECT_NE(e.find("'target_subsets.ca.split' must be test or all, got 'train'"), std::string::npos) << e;
  e = error("name: n\ntrain_config: x\ntarget_subsets: {ca: {split: test, first: -1}}\n" + jobs);
  EXPECT_NE(e.find("'target_subsets.ca.first' must be >= 0"), std::string::npos) << e;
  e = error("name: n\ntrain_config: x\ntarget_subsets: {ca: {split: test}}\njobs: [{name: J, train: [ca], test: [ca]}]\n");
  EXPECT_NE(e.find("tests no held-out domain"), std::string::npos) << e;
}

TEST(LodoProtocol, EveryShippedProtocolParses) {
  int protocols = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(INSTRUCTFLIP_SOURCE_DIR) + "/configs/protocols")) {
    SCOPED_TRACE(entry.path().string());
    const LodoProtocol p = ParseProtocol(YAML::LoadFile(entry.path().string()), entry.path().string());
    EXPECT_FALSE(p.jobs.empty());
    ++protocols;
  }
  EXPECT_GE(protocols, 4);
}

// Planning: every job checked against the store before anything is written,
// the plan saved once, a later invocation held to it or continuing it.
class LodoPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SynthOptions synth;
    synth.out = JoinPath(dir_.path, "store");
    synth.domains = 3;
    synth.per_domain = 40;
    synth.size = 32;
    synth.threads = 1;
    Synthesize(synth);
    store_override_ = "data.store=" + synth.out;
  }
  std::string WriteProtocol(const std::string& jobs) {
    return dir_.Write("p.yaml", "name: small\ntrain_config: " + std::string(INSTRUCTFLIP_SOURCE_DIR) +
                                    "/configs/train/synthetic_tiny.yaml\nranks: 2\njobs:\n" + jobs);
  }
  std::string Run(const std::string& name) const { return JoinPath(dir_.path, name); }

  TempDir dir_;
  std::string store_override_;
};

TEST_F(LodoPlanTest, PlansOnceAndHoldsLaterInvocationsToThePlan) {
  const std::string protocol = WriteProtocol("  - {name: AB_to_C, train: [synA, synB], test: [synC]}\n"
                                             "  - {name: C_to_AB, train: [synC], test: [synA, synB]}\n");
  const std::string run = Run("run");
  const LodoProtocol p = PlanProtocol(run, protocol, 1, {store_override_, "total_steps=20"});
  EXPECT_EQ(p.ranks, 1);  // --ranks wins over the file's 2
  EXPECT_EQ(p.overrides, (std::vector<std::string>{store_override_, "total_steps=20"}));
  EXPECT_TRUE(std::filesystem::path(p.train_config).is_absolute());
  EXPECT_EQ(ReadFile(LodoRunFiles{run}.Protocol()), ProtocolToYaml(p));
  EXPECT_NE(ReadFile(VersionLog(run)).find("lodo plan of protocol small"), std::string::npos);
  // Each job's configuration: the protocol's, its overrides, the job's domains.
  const TrainConfig job = JobTrainConfig(p, p.jobs[1]);
  EXPECT_EQ(job.trainer.train_domains, std::vector<std::string>{"synC"});
  EXPECT_EQ(job.trainer.total_steps, 20);

  // The same plan again is accepted; another one is refused, naming the saved file.
  EXPECT_EQ(ProtocolToYaml(PlanProtocol(run, protocol, 1, {store_override_, "total_steps=20"})), ProtocolToYaml(p));
  const std::string changed = ErrorOf([&] { PlanProtocol(run, protocol, 2, {store_override_, "total_steps=20"}); });
  EXPECT_NE(changed.find("was planned with another protocol"), std::string::npos) << changed;
  // No protocol continues the saved plan; --set alone is refused.
  EXPECT_EQ(ProtocolToYaml(PlanProtocol(run, "", std::nullopt, {})), ProtocolToYaml(p));
  EXPECT_NE(ErrorOf([&] { PlanProtocol(run, "", std::nullopt, {"total_steps=5"}); }).find("only accepted together"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { PlanProtocol(Run("none"), "", std::nullopt, {}); }).find("not a planned LODO run"),
            std::string::npos);
}

// --seeds 2,3 (or the protocol's seeds): each job once per seed, planned and
// saved expanded, each seed's configuration trained with that seed.
TEST_F(LodoPlanTest, SeedsPlanEachJobOncePerSeed) {
  const std::string protocol = WriteProtocol("  - {name: AB_to_C, train: [synA, synB], test: [synC]}\n"
                                             "  - {name: C_to_AB, train: [synC], test: [synA, synB]}\n");
  const std::string run = Run("seeded");
  const LodoProtocol p = PlanProtocol(run, protocol, 1, {store_override_}, {2, 3});
  ASSERT_EQ(p.jobs.size(), 4u);
  EXPECT_EQ(p.jobs[1].name, "AB_to_C_seed3");
  EXPECT_EQ(p.jobs[1].group, "AB_to_C");
  EXPECT_EQ(p.jobs[3].test, (std::vector<std::string>{"synA", "synB"}));
  EXPECT_EQ(JobTrainConfig(p, p.jobs[1]).trainer.seed, 3u);
  EXPECT_EQ(JobTrainConfig(p, p.jobs[2]).trainer.seed, 2u);
  // The saved plan holds the expanded jobs; continuing it or planning it again agrees.
  EXPECT_EQ(ProtocolToYaml(PlanProtocol(run, "", std::nullopt, {})), ProtocolToYaml(p));
  EXPECT_EQ(ProtocolToYaml(PlanProtocol(run, protocol, 1, {store_override_}, {2, 3})), ProtocolToYaml(p));
  EXPECT_NE(ErrorOf([&] { PlanProtocol(run, protocol, 1, {store_override_}, {2, 4}); }).find("another protocol"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { PlanProtocol(run, "", std::nullopt, {}, {5}); }).find("only accepted together"),
            std::string::npos);
  // The protocol's own `seeds` key does the same.
  const std::string with_seeds = dir_.Write("s.yaml", ReadFile(protocol) + "seeds: [7]\n");
  EXPECT_EQ(PlanProtocol(Run("own"), with_seeds, 1, {store_override_}).jobs[0].name, "AB_to_C_seed7");
  // source_validation needs a hold-out to choose on.
  const std::string validated = dir_.Write("v.yaml", ReadFile(protocol) + "selection: source_validation\neval_every: 5\n");
  EXPECT_NE(ErrorOf([&] {
              PlanProtocol(Run("no_holdout"), validated, 1, {store_override_, "data.validation_fraction=0"});
            }).find("selection source_validation needs a validation hold-out"),
            std::string::npos);
  EXPECT_EQ(ParseSeeds({"2", "3"}, "--seeds"), (std::vector<uint64_t>{2, 3}));
  EXPECT_NE(ErrorOf([&] { ParseSeeds({"2", "-1"}, "--seeds"); }).find("--seeds: seed '-1' is not a non-negative"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { ParseSeeds({"2", "2"}, "--seeds"); }).find("seed 2 appears twice"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { ParseSeeds({""}, "--seeds"); }).find("seed '' is not"), std::string::npos);
}

TEST_F(LodoPlanTest, AJobThatCannotRunIsRefusedBeforeAnythingIsWritten) {
  const std::string unknown_target = WriteProtocol("  - {name: AB_to_C, train: [synA, synB], test: [synC]}\n"
                                                   "  - {name: A_to_Z, train: [synA], test: [synZ]}\n");
  std::string e = ErrorOf([&] { PlanProtocol(Run("bad1"), unknown_target, 1, {store_override_}); });
  EXPECT_NE(e.find("synZ"), std::string::npos) << e;
  EXPECT_FALSE(PathExists(Run("bad1")));
  const std::string protocol = WriteProtocol("  - {name: AB_to_C, train: [synA, synB], test: [synC]}\n");
  e = ErrorOf([&] { PlanProtocol(Run("bad2"), protocol, 1, {store_override_, "schedule.max_lr=fast"}); });
  EXPECT_NE(e.find("'schedule.max_lr' must be a number, got 'fast'"), std::string::npos) << e;
  EXPECT_FALSE(PathExists(Run("bad2")));
  e = ErrorOf([&] { PlanProtocol(Run("bad3"), protocol, 0, {store_override_}); });
  EXPECT_NE(e.find("--ranks must be >= 1"), std::string::npos) << e;
  EXPECT_FALSE(PathExists(Run("bad3")));
}

}  // namespace
}  // namespace instructflip::launch
