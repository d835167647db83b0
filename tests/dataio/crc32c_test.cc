#include "dataio/base/crc32c.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace instructflip {
namespace {

TEST(Crc32c, MatchesRfc3720CheckValue) {
  const std::string text = "123456789";
  EXPECT_EQ(Crc32c(text.data(), text.size()), 0xE3069283u);
  EXPECT_EQ(Crc32cPortable(text.data(), text.size()), 0xE3069283u);
  // RFC 3720 B.4: 32 bytes of zeros.
  const std::vector<uint8_t> zeros(32, 0);
  EXPECT_EQ(Crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
}

TEST(Crc32c, HardwareAndPortableAgreeAndExtendIncrementally) {
  std::vector<uint8_t> data(1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7919 + 13);
  for (size_t len : {0, 1, 7, 8, 9, 63, 1000}) {
    const uint32_t whole = Crc32c(data.data(), len);
    EXPECT_EQ(whole, Crc32cPortable(data.data(), len)) << len;
    const size_t half = len / 2;
    EXPECT_EQ(Crc32c(data.data() + half, len - half, Crc32c(data.data(), half)), whole) << len;
  }
}

}  // namespace
}  // namespace instructflip
