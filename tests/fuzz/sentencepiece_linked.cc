// The T5 fuzzer's sentencepiece: the plugin's code linked in, not dlopen'ed.
// AddressSanitizer refuses RTLD_DEEPBIND, and the plugin boundary exists only
// to keep sentencepiece's protobuf apart from LibTorch's, which this program
// does not link.
#include "model/sentencepiece_backend.h"

namespace instructflip {

std::unique_ptr<SentencePieceBackend> CreateSentencePieceBackend() {
  return std::unique_ptr<SentencePieceBackend>(instructflip_create_sentencepiece_backend());
}

}  // namespace instructflip
