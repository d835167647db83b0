// The BERT WordPiece tokenizer (model/wordpiece_tokenizer.h): with the first
// byte even, the rest is text for the instructions' vocabulary; odd, a
// vocab.txt and a text split at the first NUL byte. An accepted vocabulary
// encodes any text into [CLS] ... [SEP] of at most max_length known ids.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "dataio/base/check.h"
#include "model/instructions.h"
#include "model/wordpiece_tokenizer.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

const instructflip::WordPieceTokenizer& InstructionTokenizer() {
  static const auto tokenizer =
      instructflip::WordPieceTokenizer::FromVocab(instructflip::BuildWordPieceVocab(instructflip::AllInstructionTexts()));
  return *tokenizer;
}

void CheckEncoding(const instructflip::WordPieceTokenizer& tokenizer, const std::string& text, int max_length) {
  const std::vector<int64_t> ids = tokenizer.Encode(text, max_length);
  if (ids.size() < 2 || ids.size() > static_cast<size_t>(max_length)) instructflip::fuzz::Broken("encoding length");
  if (ids.front() != tokenizer.cls_id() || ids.back() != tokenizer.sep_id())
    instructflip::fuzz::Broken("encoding not [CLS] ... [SEP]");
  for (int64_t id : ids)
    if (id < 0 || id >= tokenizer.vocab_size()) instructflip::fuzz::Broken("id outside the vocabulary");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace instructflip;
  fuzz::WriteSeedsIfAsked("wordpiece", [] {
    std::vector<std::string> seeds;
    const std::vector<std::string> texts = AllInstructionTexts();
    for (size_t i = 0; i < texts.size() && i < 6; ++i) seeds.push_back(std::string(1, char(2 * i)) + texts[i]);
    seeds.push_back(std::string("\x21[PAD]\n[UNK]\n[CLS]\n[SEP]\nface\n##s\nspoof\n") + '\0' + "Faces, spoofed?");
    seeds.push_back("\x10" "Caf\xc3\xa9 \xce\xa3\xce\xbf\xcf\x86\xce\xaf\xce\xb1 \xe4\xb8\xad\xe6\x96\x87 \xef\xbc\xa1");
    return seeds;
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace instructflip;
  if (size < 1) return 0;
  const int max_length = 2 + data[0] % 64;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    CheckEncoding(InstructionTokenizer(), rest, max_length);
    return 0;
  }
  const size_t nul = rest.find('\0');
  const std::string vocab = rest.substr(0, nul);
  const std::string text = nul == std::string::npos ? std::string() : rest.substr(nul + 1);
  std::unique_ptr<WordPieceTokenizer> tokenizer;
  try {
    tokenizer = WordPieceTokenizer::FromVocabFile(fuzz::WriteScratch("vocab.txt", vocab));
  } catch (const Error&) {
    return 0;
  }
  CheckEncoding(*tokenizer, text, max_length);
  return 0;
}
