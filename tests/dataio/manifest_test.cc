#include "dataio/manifest.h"

#include <gtest/gtest.h>

#include "dataio/base/check.h"
#include "dataio/base/file_util.h"
#include "dataio/schema.h"

namespace instructflip {
namespace {

Manifest Sample() {
  Manifest m;
  m.schema_version = kSchemaVersion;
  m.image_size = 224;
  m.jpeg_quality = 90;
  DomainEntry a{"casia", {}};
  a.counts.counts[0][0] = 3;
  a.counts.counts[1][1] = 2;
  m.domains.push_back(a);
  m.shards.push_back({"shard-00000.h5", 5, 1234, 0xDEADBEEF});
  m.skipped.push_back({"x/broken.jpg", "corrupt JPEG"});
  return m;
}

std::string ErrorOf(const std::string& json) {
  try {
    ManifestFromJson(json, "store/manifest.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Manifest, RoundTrip) {
  const Manifest m = Sample();
  const Manifest back = ManifestFromJson(ManifestToJson(m), "m.json");
  ASSERT_EQ(back.domains.size(), 1u);
  EXPECT_EQ(back.domains[0].name, "casia");
  EXPECT_EQ(back.domains[0].counts.counts, m.domains[0].counts.counts);
  ASSERT_EQ(back.shards.size(), 1u);
  EXPECT_EQ(back.shards[0].path, "shard-00000.h5");
  EXPECT_EQ(back.shards[0].crc32c, 0xDEADBEEFu);
  EXPECT_EQ(back.shards[0].bytes, 1234);
  ASSERT_EQ(back.skipped.size(), 1u);
  EXPECT_EQ(back.skipped[0].reason, "corrupt JPEG");
  EXPECT_EQ(back.num_samples(), 5);
  EXPECT_EQ(back.FindDomain("casia"), 0);
  EXPECT_EQ(back.FindDomain("msu"), -1);
}

TEST(Manifest, ShardPathsMustStayInsideTheStore) {
  EXPECT_TRUE(IsConfinedRelativePath("shard-00000.h5"));
  EXPECT_TRUE(IsConfinedRelativePath("sub/shard-00000.h5"));
  for (const char* bad : {"", "/etc/passwd", "../shard.h5", "a/../../b.h5", "a//b.h5", "./a.h5", "a\\b.h5"})
    EXPECT_FALSE(IsConfinedRelativePath(bad)) << bad;
  Manifest m = Sample();
  m.shards[0].path = "../../elsewhere/shard.h5";
  const std::string error = ErrorOf(ManifestToJson(m));
  EXPECT_NE(error.find("store/manifest.json"), std::string::npos) << error;
  EXPECT_NE(error.find("shards[0].path"), std::string::npos) << error;
  EXPECT_NE(error.find("outside the store"), std::string::npos) << error;
}

TEST(Manifest, MalformedFieldsAreNamed) {
  EXPECT_NE(ErrorOf("{not json").find("not valid JSON"), std::string::npos);
  // A number past double's range is nlohmann's out_of_range, not a parse_error:
  // found by the manifest fuzzer, it once escaped as an uncaught exception.
  EXPECT_NE(ErrorOf("{\"schema_version\": 9E09999}").find("not valid JSON"), std::string::npos);
  std::string text = ManifestToJson(Sample());
  std::string wrong_type = text;
  wrong_type.replace(wrong_type.find("\"image_size\": 224"), 17, "\"image_size\": \"big\"");
  EXPECT_NE(ErrorOf(wrong_type).find("image_size"), std::string::npos);
  std::string wrong_version = text;
  wrong_version.replace(wrong_version.find("\"schema_version\": 1"), 19, "\"schema_version\": 9");
  EXPECT_NE(ErrorOf(wrong_version).find("schema_version"), std::string::npos);
  // Sizes past the writer's range (once cut to 32 bits: 2^32 + 64 read as 64).
  for (const std::string size : {"4294967360", "1000000000000", "4"}) {
    std::string huge = text;
    huge.replace(huge.find("\"image_size\": 224"), 17, "\"image_size\": " + size);
    EXPECT_NE(ErrorOf(huge).find("image_size"), std::string::npos) << size;
  }
  std::string quality = text;
  quality.replace(quality.find("\"jpeg_quality\": 90"), 18, "\"jpeg_quality\": 1000");
  EXPECT_NE(ErrorOf(quality).find("'jpeg_quality' must be in 0..100, got 1000"), std::string::npos);
  // The totals written for readers must agree with the counts.
  std::string domain_total = text;  // keys in order: domains[0].num_samples, num_samples, shards[0].num_samples
  const size_t domain_at = domain_total.find("\"num_samples\": 5");
  domain_total.replace(domain_at, 16, "\"num_samples\": 7");
  EXPECT_NE(ErrorOf(domain_total).find("'domains[0].num_samples' says 7 but its counts add up to 5"), std::string::npos)
      << ErrorOf(domain_total);
  std::string total = text;
  total.replace(total.find("\"num_samples\": 5", domain_at + 1), 16, "\"num_samples\": 7");
  EXPECT_NE(ErrorOf(total).find(": field 'num_samples' says 7 but the shards hold 5"), std::string::npos)
      << ErrorOf(total);
  // Counts that disagree with the shard sizes.
  Manifest m = Sample();
  m.shards[0].num_samples = 6;
  EXPECT_NE(ErrorOf(ManifestToJson(m)).find("domain counts add up to 5"), std::string::npos);
  // Duplicate domain names.
  m = Sample();
  m.domains.push_back(m.domains[0]);
  m.domains[1].counts = {};
  EXPECT_NE(ErrorOf(ManifestToJson(m)).find("duplicate"), std::string::npos);
}

// Domain names become output file names (roc_NAME.csv, explanations/NAME/): a
// manifest naming a domain "../../../../tmp/x" once made `eval --explain` write
// outside --out. Such names are refused where the manifest is read.
TEST(Manifest, DomainNamesThatWouldBePathsAreRefused) {
  for (const std::string bad : std::vector<std::string>{"../../../../tmp/x", "..", ".hidden", "a/b", "", std::string(65, 'a'), "a b"}) {
    Manifest m = Sample();
    m.domains[0].name = bad;
    const std::string error = ErrorOf(ManifestToJson(m));
    EXPECT_NE(error.find("domains[0].name' = '" + bad + "' is not a domain name"), std::string::npos) << error;
  }
  for (const std::string good : std::vector<std::string>{"casia", "OULU-NPU", "msu_mfsd", "replay.attack", std::string(64, 'a')}) {
    Manifest m = Sample();
    m.domains[0].name = good;
    EXPECT_EQ(ErrorOf(ManifestToJson(m)), "") << good;
  }
}

}  // namespace
}  // namespace instructflip
