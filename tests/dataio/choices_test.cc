#include "dataio/base/choices.h"

#include <gtest/gtest.h>

namespace instructflip {
namespace {

enum class Fruit { kApple, kPear, kPlum, kFig };
const Choices<Fruit> kFruits{{"apple", Fruit::kApple}, {"pear", Fruit::kPear}, {"plum", Fruit::kPlum}};

TEST(Choices, FindsEachNameAndNothingElse) {
  EXPECT_EQ(kFruits.Find("apple"), Fruit::kApple);
  EXPECT_EQ(kFruits.Find("plum"), Fruit::kPlum);
  EXPECT_FALSE(kFruits.Find("Apple").has_value());  // exact spelling only
  EXPECT_FALSE(kFruits.Find("").has_value());
  EXPECT_FALSE(kFruits.Find("apple ").has_value());
}

TEST(Choices, NamesRoundTrip) {
  for (Fruit f : {Fruit::kApple, Fruit::kPear, Fruit::kPlum}) EXPECT_EQ(kFruits.Find(kFruits.Name(f)), f);
  EXPECT_STREQ(kFruits.Name(Fruit::kPear), "pear");
  EXPECT_THROW(kFruits.Name(Fruit::kFig), Error);  // a value the table lacks is a program error, named
}

TEST(Choices, AnOptionalValueMayBeNamedAbsent) {
  const Choices<std::optional<int>> split{{"test", 1}, {"all", std::nullopt}};
  EXPECT_STREQ(split.Name(std::nullopt), "all");
  EXPECT_EQ(split.Parse("all", "'split'"), std::nullopt);
  EXPECT_EQ(split.Parse("test", "'split'"), 1);
  EXPECT_THROW(split.Name(0), Error);
}

TEST(Choices, ListsInTableOrderForMessagesAndHelp) {
  EXPECT_EQ(kFruits.Listed(), "apple, pear or plum");
  EXPECT_EQ(kFruits.Alternatives(), "apple|pear|plum");
  const Choices<int> two{{"a", 1}, {"b", 2}};
  EXPECT_EQ(two.Listed(), "a or b");
  const Choices<int> one{{"only", 1}};
  EXPECT_EQ(one.Listed(), "only");
  EXPECT_EQ(one.Alternatives(), "only");
}

TEST(Choices, ParseNamesTheSettingTheChoicesAndTheValue) {
  EXPECT_EQ(kFruits.Parse("pear", "--fruit"), Fruit::kPear);
  try {
    kFruits.Parse("kiwi", "x.yaml: 'fruit'");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "x.yaml: 'fruit' must be apple, pear or plum, got 'kiwi'");
  }
}

}  // namespace
}  // namespace instructflip
