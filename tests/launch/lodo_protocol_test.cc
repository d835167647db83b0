// LODO protocols: parsing with named errors, the saved form parses back to the
// same protocol, and every shipped protocol loads.
#include "launch/lodo_protocol.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/common/test_util.h"

namespace instructflip::launch {
namespace {

using instructflip::testing::ErrorOf;

LodoProtocol Parse(const std::string& yaml) { return ParseProtocol(YAML::Load(yaml), "p.yaml"); }

constexpr char kGood[] = R"(
name: two
train_config: configs/train/synthetic_tiny.yaml
ranks: 2
explain_per_domain: 3
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
  EXPECT_EQ(p.overrides, std::vector<std::string>{"total_steps=4"});
  ASSERT_EQ(p.jobs.size(), 2u);
  EXPECT_EQ(p.jobs[1].name, "C_to_AB");
  EXPECT_EQ(p.jobs[1].test, (std::vector<std::string>{"synA", "synB"}));
  const std::string saved = ProtocolToYaml(p);
  const LodoProtocol again = ParseProtocol(YAML::Load(saved), "protocol.yaml");
  EXPECT_EQ(ProtocolToYaml(again), saved);
  EXPECT_EQ(again.jobs[0].train, p.jobs[0].train);
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

}  // namespace
}  // namespace instructflip::launch
