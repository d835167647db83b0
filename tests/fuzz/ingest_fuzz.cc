// ingest's label files (dataio/producers/ingest.h): a list file, a CSV or a
// CelebA-Spoof label json, chosen by the first byte; the rest is the file. The
// plan is made as `ingest --dry-run` makes it (no image is read): any text is
// refused with instructflip::Error or gives counts that add up.
#include <cstddef>
#include <cstdint>
#include <string>

#include "dataio/base/check.h"
#include "dataio/producers/ingest.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace instructflip;
  if (size < 1) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  IngestOptions options;
  options.root = fuzz::ScratchDir() + "/root";
  options.domain = "fuzzed";
  options.split = (data[0] & 4) ? Split::kTest : Split::kTrain;
  options.allow_outside_root = data[0] & 8;
  switch (data[0] % 3) {
    case 0:
      options.format = IngestFormat::kList;
      options.input = fuzz::WriteScratch("list.txt", text);
      break;
    case 1:
      options.format = IngestFormat::kCsv;
      options.input = fuzz::WriteScratch("labels.csv", text);
      if (data[0] & 16) options.split.reset();
      break;
    default:
      options.format = IngestFormat::kCelebASpoof;
      options.input = fuzz::WriteScratch("metas/intra_test/train_label.json", text);
      break;
  }
  IngestPreview preview;
  try {
    preview = PreviewIngest(options);
  } catch (const Error&) {
    return 0;
  }
  int64_t counted = 0;
  for (const DomainEntry& d : preview.domains) counted += d.counts.total();
  if (counted != preview.inputs || preview.inputs <= 0) fuzz::Broken("domain counts do not add up to the inputs");
  if (preview.videos > preview.inputs) fuzz::Broken("more videos than inputs");
  return 0;
}
