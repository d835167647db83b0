#include "model/tokenizers.h"

#include <filesystem>

#include "dataio/base/check.h"
#include "model/instructions.h"

namespace instructflip {

std::string TokenizerFile(const std::string& path, const char* name, const char* field) {
  if (!std::filesystem::is_directory(path)) return path;
  const std::string file = (std::filesystem::path(path) / name).string();
  IF_REQUIRE(std::filesystem::is_regular_file(file), field, ": ", path, " is a directory without ", name);
  return file;
}

Tokenizers BuildTokenizers(const TokenizerConfig& config) {
  Tokenizers out;
  out.bert = config.bert_vocab == kInstructionTokenizers
                 ? WordPieceTokenizer::FromVocab(BuildWordPieceVocab(AllInstructionTexts()))
                 : WordPieceTokenizer::FromVocabFile(TokenizerFile(config.bert_vocab, "vocab.txt", "tokenizers.bert_vocab"));
  out.t5 = config.t5_spiece == kInstructionTokenizers
               ? T5Tokenizer::FromSerialized(TrainSentencePiece(AllInstructionTexts(), 200, /*seed=*/0))
               : T5Tokenizer::FromFile(TokenizerFile(config.t5_spiece, "spiece.model", "tokenizers.t5_spiece"));
  return out;
}

void ResolveVocabularySizes(const Tokenizers& tokenizers, ModelConfig* config) {
  auto resolve = [](int* size, int64_t needed, const char* field) {
    if (*size == 0) *size = static_cast<int>(needed);
    IF_REQUIRE(*size >= needed, "model config: field '", field, "' = ", *size, " is smaller than the tokenizer's ",
               needed, " tokens");
  };
  resolve(&config->qformer.vocab_size, tokenizers.bert->vocab_size(), "qformer.vocab_size");
  resolve(&config->t5.vocab_size, tokenizers.t5->vocab_size(), "t5.vocab_size");
}

}  // namespace instructflip
