// FLAN-T5's tokenizer (model/t5_tokenizer.h): with the first byte even, the
// rest is text for a model trained on the instruction texts; odd, the rest is
// a spiece.model. Accepted text encodes to ids inside the vocabulary ending in
// </s>, and those ids decode; an accepted model encodes the instructions
// within its vocabulary or refuses with instructflip::Error.
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <memory>
#include <string>

#include "dataio/base/check.h"
#include "model/instructions.h"
#include "model/t5_tokenizer.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

void CheckRoundTrip(const instructflip::T5Tokenizer& tokenizer, const std::string& text) {
  const std::vector<int64_t> ids = tokenizer.Encode(text);
  if (ids.empty() || ids.back() != tokenizer.eos_id()) instructflip::fuzz::Broken("encoding does not end in </s>");
  for (int64_t id : ids)
    if (id < 0 || id >= tokenizer.vocab_size()) instructflip::fuzz::Broken("id outside the vocabulary");
  tokenizer.Decode(ids);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace instructflip;
  fuzz::WriteSeedsIfAsked("t5", [] {
    std::vector<std::string> seeds{"\x01" + TrainSentencePiece(AllInstructionTexts(), 200, 1)};
    for (const std::string& text : AllInstructionTexts()) seeds.push_back(std::string(1, '\0') + text);
    seeds.resize(std::min<size_t>(seeds.size(), 8));
    return seeds;
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace instructflip;
  if (size < 1) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    static const std::unique_ptr<T5Tokenizer> trained =
        T5Tokenizer::FromSerialized(TrainSentencePiece(AllInstructionTexts(), 200, 1));
    CheckRoundTrip(*trained, rest);
    return 0;
  }
  // A model's own refusals (an id it cannot decode) are clean errors too.
  try {
    const std::unique_ptr<T5Tokenizer> tokenizer = T5Tokenizer::FromSerialized(rest);
    // A few texts: encoding all of them would make each input ten times slower.
    static const std::vector<std::string> texts = [] {
      std::vector<std::string> all = AllInstructionTexts();
      all.resize(std::min<size_t>(all.size(), 3));
      return all;
    }();
    for (const std::string& text : texts) CheckRoundTrip(*tokenizer, text);
  } catch (const Error&) {
  }
  return 0;
}
