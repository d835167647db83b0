#include "model/safetensors.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "dataio/base/check.h"
#include "tests/common/test_util.h"
#include "dataio/base/file_util.h"

namespace instructflip {
namespace {

using testing::ErrorOf;
using testing::TempDir;

std::string Le64(uint64_t v) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &v, 8);
  return out;
}

template <typename T>
std::string BytesOf(std::initializer_list<T> values) {
  std::string out(values.size() * sizeof(T), '\0');
  std::memcpy(out.data(), values.begin(), out.size());
  return out;
}

// A file as Hugging Face lays it out: length prefix, header padded with spaces
// to a multiple of 8, then the data buffer.
std::string MakeFile(std::string header, const std::string& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  return Le64(header.size()) + header + data;
}

std::string RawBytes(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
}

void ExpectIdentical(const torch::Tensor& expected, const torch::Tensor& actual,
                     const std::string& name) {
  SCOPED_TRACE(name);
  EXPECT_EQ(actual.scalar_type(), expected.scalar_type());
  EXPECT_EQ(actual.sizes(), expected.sizes());
  EXPECT_TRUE(actual.is_contiguous());
  EXPECT_EQ(actual.device(), torch::Device(torch::kCPU));
  EXPECT_EQ(RawBytes(actual), RawBytes(expected));  // bit-exact, NaN-safe
}

torch::Tensor RandomTensor(torch::ScalarType type, const std::vector<int64_t>& shape) {
  if (type == torch::kBool) return torch::randint(0, 2, shape) > 0;
  if (type == torch::kByte) return torch::randint(0, 256, shape).to(type);
  if (c10::isFloatingType(type)) return torch::randn(shape).to(type);
  return torch::randint(-100, 100, shape).to(type);
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::manual_seed(7); }
  TempDir dir_;
};

TEST_F(SafetensorsTest, RoundTripsEveryDtypeAndShape) {
  const std::vector<std::pair<const char*, torch::ScalarType>> dtypes = {
      {"f32", torch::kFloat},  {"f16", torch::kHalf}, {"bf16", torch::kBFloat16},
      {"f64", torch::kDouble}, {"i64", torch::kLong}, {"i32", torch::kInt},
      {"i16", torch::kShort},  {"i8", torch::kChar},  {"u8", torch::kByte},
      {"bool", torch::kBool}};
  const std::vector<std::vector<int64_t>> shapes = {{}, {0, 3}, {7}, {2, 3, 5}, {1, 0}};
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& [dtype_name, type] : dtypes)
    for (size_t s = 0; s < shapes.size(); ++s)
      tensors.emplace_back(std::string(dtype_name) + ".shape" + std::to_string(s),
                           RandomTensor(type, shapes[s]));
  const std::string path = dir_ / "all.safetensors";
  SaveSafetensors(path, tensors);

  const auto file = SafetensorsFile::Open(path);
  ASSERT_EQ(file->tensors().size(), tensors.size());
  EXPECT_TRUE(std::is_sorted(file->tensors().begin(), file->tensors().end(),
                             [](const auto& a, const auto& b) { return a.name < b.name; }));
  EXPECT_TRUE(file->metadata().empty());
  for (const auto& [name, expected] : tensors) {
    ASSERT_NE(file->Find(name), nullptr) << name;
    ExpectIdentical(expected, file->Get(name), name);
  }
  // Atomic write: only the final file remains, no temp file.
  EXPECT_EQ(dir_.List(), std::vector<std::string>{"all.safetensors"});
}

TEST_F(SafetensorsTest, GetReturnsAnIndependentCopy) {
  const std::string path = dir_ / "w.safetensors";
  SaveSafetensors(path, {{"w", torch::arange(4, torch::kFloat)}});
  torch::Tensor first;
  {
    const auto file = SafetensorsFile::Open(path);
    first = file->Get("w");
    first.add_(10);
    ExpectIdentical(torch::arange(4, torch::kFloat), file->Get("w"), "second Get");
  }
  // Outlives the mapping.
  ExpectIdentical(torch::arange(4, torch::kFloat) + 10, first, "after close");
}

TEST_F(SafetensorsTest, SavesNonContiguousAndGradTensors) {
  const torch::Tensor base = torch::randn({4, 6});
  const torch::Tensor transposed = base.t();
  const torch::Tensor sliced = base.slice(1, 2, 5);  // storage offset + stride
  const torch::Tensor grad = torch::randn({3}, torch::requires_grad());
  const std::string path = dir_ / "views.safetensors";
  SaveSafetensors(path, {{"t", transposed}, {"s", sliced}, {"g", grad}});
  const auto file = SafetensorsFile::Open(path);
  ExpectIdentical(transposed.contiguous(), file->Get("t"), "t");
  ExpectIdentical(sliced.contiguous(), file->Get("s"), "s");
  ExpectIdentical(grad.detach(), file->Get("g"), "g");
  EXPECT_FALSE(file->Get("g").requires_grad());
}

TEST_F(SafetensorsTest, WritesHuggingFaceLayout) {
  const std::string path = dir_ / "layout.safetensors";
  // Names given out of order: the file must sort them and lay data in that order.
  SaveSafetensors(path,
                  {{"zeta", torch::ones({3}, torch::kHalf)},
                   {"alpha", torch::zeros({2, 2})},
                   {"mid", torch::zeros({0, 4})}},
                  {{"format", "pt"}});
  const std::string bytes = ReadFile(path);
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  EXPECT_EQ(header_size % 8, 0u);
  const std::string header = bytes.substr(8, header_size);
  EXPECT_EQ(header.find_first_not_of(' ', header.find_last_of('}') + 1), std::string::npos)
      << "padding must be spaces: " << header;
  EXPECT_EQ(header.rfind("{\"__metadata__\":{\"format\":\"pt\"},\"alpha\":{\"dtype\":\"F32\"", 0),
            0u)
      << header;
  const nlohmann::json j = nlohmann::json::parse(header);
  EXPECT_EQ(j["alpha"]["data_offsets"], nlohmann::json({0, 16}));
  EXPECT_EQ(j["mid"]["data_offsets"], nlohmann::json({16, 16}));
  EXPECT_EQ(j["mid"]["shape"], nlohmann::json({0, 4}));
  EXPECT_EQ(j["zeta"]["data_offsets"], nlohmann::json({16, 22}));
  EXPECT_EQ(j["zeta"]["dtype"], "F16");
  EXPECT_EQ(bytes.size(), 8 + header_size + 22);
}

TEST_F(SafetensorsTest, MetadataRoundTrips) {
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"source", "clip-vit-b16"}, {"note", "unicode \xC3\xA9 and \"quotes\""}};
  const std::string path = dir_ / "meta.safetensors";
  SaveSafetensors(path, {{"x", torch::ones({2})}}, metadata);
  EXPECT_EQ(SafetensorsFile::Open(path)->metadata(), metadata);

  SaveSafetensors(path, {{"x", torch::ones({2})}});  // replaces: no metadata key at all
  EXPECT_EQ(ReadFile(path).find("__metadata__"), std::string::npos);
  EXPECT_TRUE(SafetensorsFile::Open(path)->metadata().empty());
}

// Bytes as Python's safetensors writes them: header keys in arbitrary order,
// data sorted by dtype alignment (so not in name order), format metadata.
TEST_F(SafetensorsTest, ReadsHandBuiltPythonFile) {
  const std::string data = BytesOf<int64_t>({-1, int64_t{1} << 40})       // [0, 16)   I64
                           + BytesOf<float>({1.5f, -0.25f, 3.0f, 1e-3f})  // [16, 32)  F32
                           + BytesOf<uint16_t>({0x3C00, 0xC000, 0x7BFF})  // [32, 38)  F16
                           + BytesOf<uint16_t>({0x3F80, 0xC0A0})          // [38, 42)  BF16
                           + BytesOf<uint8_t>({1, 0, 1});                 // [42, 45)  BOOL
  const std::string header = R"({"__metadata__":{"format":"pt"},)"
                             R"("w.f16":{"dtype":"F16","shape":[3],"data_offsets":[32,38]},)"
                             R"("a.i64":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},)"
                             R"("mask":{"dtype":"BOOL","shape":[3,1],"data_offsets":[42,45]},)"
                             R"("m.bf16":{"dtype":"BF16","shape":[1,2],"data_offsets":[38,42]},)"
                             R"("b.f32":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]}})";
  const std::string path = dir_ / "python.safetensors";
  WriteFileAtomic(path, MakeFile(header, data));

  const auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file->metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  std::vector<std::string> names;
  for (const auto& info : file->tensors()) names.push_back(info.name);
  EXPECT_EQ(names, (std::vector<std::string>{"a.i64", "b.f32", "m.bf16", "mask", "w.f16"}));
  const SafetensorsTensorInfo* f16 = file->Find("w.f16");
  ASSERT_NE(f16, nullptr);
  EXPECT_EQ(f16->dtype, "F16");
  EXPECT_EQ(f16->shape, std::vector<int64_t>{3});
  EXPECT_EQ(f16->begin, 32u);
  EXPECT_EQ(f16->end, 38u);
  EXPECT_EQ(file->Find("absent"), nullptr);

  const torch::Tensor i64 = file->Get("a.i64");
  EXPECT_EQ(i64.scalar_type(), torch::kLong);
  EXPECT_EQ(i64[0].item<int64_t>(), -1);
  EXPECT_EQ(i64[1].item<int64_t>(), int64_t{1} << 40);
  const torch::Tensor f32 = file->Get("b.f32");
  EXPECT_EQ(f32.scalar_type(), torch::kFloat);
  EXPECT_EQ(f32.sizes(), torch::IntArrayRef({2, 2}));
  EXPECT_EQ(f32[0][0].item<float>(), 1.5f);
  EXPECT_EQ(f32[0][1].item<float>(), -0.25f);
  EXPECT_EQ(f32[1][0].item<float>(), 3.0f);
  EXPECT_EQ(f32[1][1].item<float>(), 1e-3f);
  const torch::Tensor half = file->Get("w.f16");
  EXPECT_EQ(half.scalar_type(), torch::kHalf);
  const torch::Tensor half_f = half.to(torch::kFloat);
  EXPECT_EQ(half_f[0].item<float>(), 1.0f);
  EXPECT_EQ(half_f[1].item<float>(), -2.0f);
  EXPECT_EQ(half_f[2].item<float>(), 65504.0f);
  const torch::Tensor bf16 = file->Get("m.bf16");
  EXPECT_EQ(bf16.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(bf16.sizes(), torch::IntArrayRef({1, 2}));
  EXPECT_EQ(bf16[0][0].to(torch::kFloat).item<float>(), 1.0f);
  EXPECT_EQ(bf16[0][1].to(torch::kFloat).item<float>(), -5.0f);
  const torch::Tensor mask = file->Get("mask");
  EXPECT_EQ(mask.scalar_type(), torch::kBool);
  EXPECT_TRUE(torch::equal(mask, torch::tensor({true, false, true}).view({3, 1})));
}

TEST_F(SafetensorsTest, AcceptsEdgeCases) {
  struct Case {
    const char* what;
    std::string bytes;
    size_t num_tensors;
  };
  const std::vector<Case> cases = {
      {"empty header object", MakeFile("{}", ""), 0},
      {"metadata only", MakeFile(R"({"__metadata__":{}})", ""), 0},
      {"zero-size tensor inside another's range",
       MakeFile(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                R"("e":{"dtype":"F32","shape":[0],"data_offsets":[2,2]}})",
                "abcd"),
       2},
      {"gap and trailing bytes",
       MakeFile(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}})", "xyzw"), 1},
      {"unknown entry field ignored",
       MakeFile(R"({"a":{"dtype":"U8","shape":[],"data_offsets":[0,1],"extra":1}})", "z"), 1},
      {"huge dim times zero",
       MakeFile(R"({"a":{"dtype":"F64","shape":[0,4611686018427387904],"data_offsets":[0,0]}})",
                ""),
       1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const auto file = SafetensorsFile::FromBuffer(reinterpret_cast<const uint8_t*>(c.bytes.data()),
                                                  c.bytes.size(), c.what);
    EXPECT_EQ(file->tensors().size(), c.num_tensors);
    for (const auto& info : file->tensors()) EXPECT_TRUE(file->Get(info.name).defined());
  }
}

TEST_F(SafetensorsTest, RejectsMalformedFiles) {
  const std::string u8_entry = R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})";
  auto entry = [](const std::string& body) { return "{\"a\":" + body + "}"; };
  std::string ones_100000;  // "1,1,...,": dims for a shape far too long to print
  for (int i = 0; i < 100000; ++i) ones_100000 += "1,";
  struct Case {
    const char* what;
    std::string bytes;
    const char* keyword;
  };
  const std::vector<Case> cases = {
      {"empty file", "", "shorter than 8 bytes"},
      {"seven bytes", std::string("\x02\0\0\0\0\0\0", 7), "shorter than 8 bytes"},
      {"header length past file", Le64(100) + "{}", "is larger than"},
      {"absurd header length", Le64(uint64_t{1} << 40) + "{}", "not a safetensors file (its length prefix"},
      {"max header length", Le64(~uint64_t{0}) + "{}", "limit)"},
      {"truncated JSON", MakeFile(R"({"a":)", ""), "not valid JSON"},
      {"empty header", Le64(0), "not valid JSON"},
      {"trailing garbage", MakeFile("{} x", ""), "not valid JSON"},
      {"invalid UTF-8", MakeFile("{\"\xff\":1}", ""), "not valid JSON"},
      {"long unterminated string", MakeFile("{\"" + std::string(1 << 20, 'a'), ""),
       "not valid JSON"},
      {"root array", MakeFile("[1,2]", ""), "must be a JSON object"},
      {"long name with control character",
       MakeFile("{\"a\\u0001" + std::string(1 << 20, 'b') + "\":3}", ""),
       "entry must be an object"},
      {"entry not object", MakeFile(entry("3"), "abcd"), "entry must be an object"},
      {"missing dtype", MakeFile(entry(R"({"shape":[4],"data_offsets":[0,4]})"), "abcd"), "dtype"},
      {"unknown dtype",
       MakeFile(entry(R"({"dtype":"Q7","shape":[4],"data_offsets":[0,4]})"), "abcd"),
       "unsupported dtype 'Q7'"},
      {"dtype not string",
       MakeFile(entry(R"({"dtype":4,"shape":[4],"data_offsets":[0,4]})"), "abcd"), "dtype"},
      {"shape not array",
       MakeFile(entry(R"({"dtype":"U8","shape":4,"data_offsets":[0,4]})"), "abcd"), "shape"},
      {"negative dim",
       MakeFile(entry(R"({"dtype":"U8","shape":[-4],"data_offsets":[0,4]})"), "abcd"),
       "non-negative"},
      {"fractional dim",
       MakeFile(entry(R"({"dtype":"U8","shape":[4.0],"data_offsets":[0,4]})"), "abcd"),
       "non-negative integers"},
      {"dim past int64",
       MakeFile(entry(R"({"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,4]})"),
                "abcd"),
       "non-negative integers"},
      {"element count overflow",
       MakeFile(entry(R"({"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,4]})"),
                "abcd"),
       "overflows"},
      {"many dims in an error message",
       MakeFile(entry(R"({"dtype":"F64","shape":[)" + ones_100000 +
                      R"(4611686018427387904],"data_offsets":[0,4]})"),
                "abcd"),
       "(100001 dims)"},
      {"byte size overflow",
       MakeFile(entry(R"({"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,4]})"),
                "abcd"),
       "overflows"},
      {"stride overflow in zero-size tensor",
       MakeFile(entry(R"({"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]})"),
                "abcd"),
       "overflows"},
      {"missing data_offsets", MakeFile(entry(R"({"dtype":"U8","shape":[4]})"), "abcd"),
       "data_offsets"},
      {"three data_offsets",
       MakeFile(entry(R"({"dtype":"U8","shape":[4],"data_offsets":[0,4,4]})"), "abcd"),
       "data_offsets"},
      {"negative data_offsets",
       MakeFile(entry(R"({"dtype":"U8","shape":[4],"data_offsets":[-1,3]})"), "abcd"),
       "data_offsets"},
      {"begin after end",
       MakeFile(entry(R"({"dtype":"U8","shape":[4],"data_offsets":[4,0]})"), "abcd"),
       "begin 4 > end 0"},
      {"end past buffer",
       MakeFile(entry(R"({"dtype":"U8","shape":[4],"data_offsets":[1,5]})"), "abcd"),
       "past the end of the data buffer"},
      {"truncated data", MakeFile(u8_entry, "abc"), "past the end of the data buffer"},
      {"size mismatch",
       MakeFile(entry(R"({"dtype":"F32","shape":[2],"data_offsets":[0,4]})"), "abcd"),
       "needs 8 bytes"},
      {"overlap",
       MakeFile(R"({"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},)"
                R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                "abcd"),
       "overlap"},
      {"duplicate tensor name",
       MakeFile(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                R"("a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                "abcd"),
       "duplicate key 'a'"},
      {"duplicate field",
       MakeFile(entry(R"({"dtype":"U8","dtype":"F32","shape":[4],"data_offsets":[0,4]})"), "abcd"),
       "duplicate key 'dtype'"},
      {"metadata not object", MakeFile(R"({"__metadata__":[]})", ""), "__metadata__"},
      {"metadata value not string", MakeFile(R"({"__metadata__":{"epoch":3}})", ""),
       "__metadata__ value for 'epoch'"},
      {"deep nesting", MakeFile(entry(std::string(100000, '[') + std::string(100000, ']')), ""),
       "nests deeper"},
  };
  const std::string path = dir_ / "bad.safetensors";
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    WriteFileAtomic(path, c.bytes);
    const std::string error = ErrorOf([&] { SafetensorsFile::Open(path); });
    EXPECT_NE(error.find(path), std::string::npos) << error;
    EXPECT_NE(error.find(c.keyword), std::string::npos) << error;
    // One readable line, even when the header quotes raw bytes or is huge.
    EXPECT_LT(error.size(), 1000u) << error.substr(0, 1000);
    EXPECT_TRUE(std::all_of(error.begin(), error.end(), [](char ch) {
      return ch >= 0x20 && ch < 0x7f;
    })) << error;
    // The in-memory path gives the same verdict.
    const std::string buffer_error = ErrorOf([&] {
      SafetensorsFile::FromBuffer(reinterpret_cast<const uint8_t*>(c.bytes.data()), c.bytes.size(),
                                  "buffer");
    });
    EXPECT_NE(buffer_error.find(c.keyword), std::string::npos) << buffer_error;
  }
}

TEST_F(SafetensorsTest, GetRejectsInvalidBool) {
  const std::string bytes = MakeFile(R"({"m":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})",
                                     std::string("\1\2", 2));
  const auto file = SafetensorsFile::FromBuffer(reinterpret_cast<const uint8_t*>(bytes.data()),
                                                bytes.size(), "masks.safetensors");
  const std::string error = ErrorOf([&] { file->Get("m"); });
  EXPECT_NE(error.find("masks.safetensors"), std::string::npos) << error;
  EXPECT_NE(error.find("BOOL tensor 'm' holds byte value 2"), std::string::npos) << error;
}

TEST_F(SafetensorsTest, ErrorsNameTheMissingFileAndKey) {
  const std::string missing = dir_ / "nope.safetensors";
  const std::string open_error = ErrorOf([&] { SafetensorsFile::Open(missing); });
  EXPECT_NE(open_error.find(missing), std::string::npos) << open_error;

  const std::string path = dir_ / "one.safetensors";
  SaveSafetensors(path, {{"visual.proj", torch::ones({2})}});
  const auto file = SafetensorsFile::Open(path);
  const std::string get_error = ErrorOf([&] { file->Get("text.proj"); });
  EXPECT_NE(get_error.find(path), std::string::npos) << get_error;
  EXPECT_NE(get_error.find("'text.proj'"), std::string::npos) << get_error;
}

TEST_F(SafetensorsTest, SaveRejectsBadInput) {
  const std::string path = dir_ / "out.safetensors";
  SaveSafetensors(path, {{"keep", torch::ones({1})}});
  const std::string before = ReadFile(path);
  struct Case {
    const char* what;
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    const char* keyword;
  };
  const std::vector<Case> cases = {
      {"duplicate",
       {{"a", torch::ones({1})}, {"a", torch::ones({2})}},
       "duplicate tensor name 'a'"},
      {"reserved", {{"__metadata__", torch::ones({1})}}, "reserved"},
      {"undefined", {{"u", torch::Tensor()}}, "undefined"},
      {"complex", {{"c", torch::ones({1}, torch::kComplexFloat)}}, "cannot store"},
      {"invalid UTF-8 name", {{"\xff", torch::ones({1})}}, "cannot encode the header"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string error = ErrorOf([&] { SaveSafetensors(path, c.tensors); });
    EXPECT_NE(error.find(path), std::string::npos) << error;
    EXPECT_NE(error.find(c.keyword), std::string::npos) << error;
  }
  // A failed save leaves the old file whole and no temp file behind.
  EXPECT_EQ(ReadFile(path), before);
  EXPECT_EQ(dir_.List(), std::vector<std::string>{"out.safetensors"});

  const std::string unwritable = dir_ / "no-such-dir/out.safetensors";
  const std::string io_error = ErrorOf([&] {
    SaveSafetensors(unwritable, {{"a", torch::ones({1})}});
  });
  EXPECT_NE(io_error.find(unwritable), std::string::npos) << io_error;
}

// Deterministic mutation fuzzing inside the normal suite: every mutant must
// either parse (and then every Get must work) or throw instructflip::Error.
// A crash, a sanitizer report or any other exception fails the test.
TEST_F(SafetensorsTest, MutatedFilesParseOrThrowError) {
  const std::string saved_path = dir_ / "seed.safetensors";
  SaveSafetensors(saved_path,
                  {{"a", torch::randn({2, 3})},
                   {"b", torch::randn({4}).to(torch::kHalf)},
                   {"c", torch::zeros({0, 3}, torch::kBFloat16)},
                   {"d", torch::ones({}, torch::kLong)},
                   {"m", torch::ones({3}, torch::kBool)}},
                  {{"format", "pt"}});
  const std::vector<std::string> seeds = {
      ReadFile(saved_path), MakeFile(R"({"x":{"dtype":"U8","shape":[2,2],"data_offsets":[0,4]},)"
                                     R"("y":{"dtype":"I32","shape":[1],"data_offsets":[4,8]}})",
                                     "abcdefgh")};

  std::mt19937_64 rng(20240601);
  auto uniform = [&](uint64_t n) { return n == 0 ? 0 : rng() % n; };
  const char kJsonish[] = "{}[]\",:-0123456789e. ";
  int accepted = 0, rejected = 0;
  for (int iteration = 0; iteration < 4000; ++iteration) {
    std::string bytes = seeds[uniform(seeds.size())];
    uint64_t header_size = 0;
    std::memcpy(&header_size, bytes.data(), 8);
    const int rounds = 1 + static_cast<int>(uniform(3));
    for (int r = 0; r < rounds && !bytes.empty(); ++r) {
      switch (uniform(6)) {
        case 0:  // flip random bits anywhere
          for (int k = 0; k < 1 + static_cast<int>(uniform(4)); ++k)
            bytes[uniform(bytes.size())] ^= static_cast<char>(1 + uniform(255));
          break;
        case 1:  // truncate
          bytes.resize(uniform(bytes.size() + 1));
          break;
        case 2: {  // edit the header length
          uint64_t v = 0;
          switch (uniform(4)) {
            case 0:
              v = header_size + uniform(17) - 8;
              break;
            case 1:
              v = rng();
              break;
            case 2:
              v = bytes.size() >= 8 ? bytes.size() - 8 : 0;
              break;
            case 3:
              v = uint64_t{1} << uniform(64);
              break;
          }
          if (bytes.size() >= 8) std::memcpy(bytes.data(), &v, 8);
          break;
        }
        case 3:  // a JSON-significant character inside the header
          if (bytes.size() > 8)
            bytes[8 + uniform(std::min<uint64_t>(header_size, bytes.size() - 8))] =
                kJsonish[uniform(sizeof(kJsonish) - 1)];
          break;
        case 4:  // insert a character into the header, keeping the length consistent
          if (bytes.size() > 8) {
            bytes.insert(
                bytes.begin() + 8 + uniform(std::min<uint64_t>(header_size, bytes.size() - 8)),
                kJsonish[uniform(sizeof(kJsonish) - 1)]);
            ++header_size;
            std::memcpy(bytes.data(), &header_size, 8);
          }
          break;
        case 5:  // change a digit in the header (shapes and offsets): try a few spots
          for (int attempt = 0; attempt < 16 && bytes.size() > 8; ++attempt) {
            const size_t at = 8 + uniform(std::min<uint64_t>(header_size, bytes.size() - 8));
            if (std::isdigit(static_cast<unsigned char>(bytes[at]))) {
              bytes[at] = static_cast<char>('0' + uniform(10));
              break;
            }
          }
          break;
      }
    }
    // An exactly sized copy, so a sanitizer build flags any read past the end.
    const std::vector<uint8_t> buffer(bytes.begin(), bytes.end());
    try {
      const auto file = SafetensorsFile::FromBuffer(buffer.data(), buffer.size(), "mutant");
      for (const auto& info : file->tensors()) file->Get(info.name);
      ++accepted;
    } catch (const Error&) {
      ++rejected;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "iteration " << iteration << ": non-instructflip exception: " << e.what();
    }
  }
  // Both outcomes occur, so the mutations neither always break nor never touch the header.
  EXPECT_GT(accepted, 50);
  EXPECT_GT(rejected, 50);
}

}  // namespace
}  // namespace instructflip
