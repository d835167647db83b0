// `instructflip ingest`: puts a real face anti-spoofing dataset into a
// meta-domain store (one or more new domains; StoreWriter does the writing).
//
// Input formats:
//
// * kCelebASpoof: `input` is the dataset root (holding Data/ and metas/), or one
//   label file (`.../train_label.json` or `test_label.json`; the root is then
//   `root`, or the parent of the enclosing `metas/` folder). With a root, the
//   label files are taken from metas/intra_test/, else from the first folder
//   (in sorted order) under metas/ that holds one. A label file maps an image
//   path (relative to the root) to 44 numbers: [40] spoof type 0..10,
//   [41] illumination 0..4 (0 = none) -> ours value-1, [42] environment 0..2
//   (0 = none) -> ours value-1, [43] label 0 live / 1 spoof. camera_quality
//   comes from the cross-device protocol: an image that
//   metas/protocol2/test_on_{low,middle,high}_quality_device/test_label.json
//   (or .txt) lists is of that quality (0, 1, 2), one listed by two is an
//   error; one in no test list but in the train_label lists of two of the
//   three folders is of the third; any other is unknown (-1).
//   `camera_quality_csv` (path,camera_quality) overrides per image. Split = the label file's (train/test). subject_id = the number
//   in Data/<split>/<subject>/...; every image is its own video (automatic id). The face is
//   cropped with `<stem>_BB.txt` beside the image ("x y w h score" in a 224x224
//   frame, scaled to the image); without one the whole image is used (logged).
//   A wrong-length label or an out-of-range value is an error naming the file,
//   key and field, never a skip.
//
// * kList: a text file of lines `path label [spoof_type]` separated by blanks
//   (paths with spaces need the CSV format); blank lines and lines starting with
//   '#' are ignored. label 0 live / 1 spoof. A list carries no attack type, so a
//   spoof line without the third column gets spoof_type 1 (photo), the most
//   common attack in the MCIO datasets: treat spoof_type of such domains as
//   "some attack", not ground truth. Every line gets `split` and `domain`;
//   style attributes and subject are unknown (-1).
//
// * kCsv: a header row naming the columns (any order): path, label (required);
//   spoof_type, illumination, environment, camera_quality, video_id,
//   subject_id, domain, split (optional). Values use this store's codes
//   (schema.h: illumination 0..3, environment 0..1, camera_quality 0..2, -1 or
//   an empty cell = unknown). An empty or absent spoof_type defaults as in the
//   list format; an empty domain/split cell takes `domain`/`split`. RFC 4180
//   quoting ("a,b", "say ""x""", line breaks inside quotes) is supported.
//
// Paths in list and CSV files are relative to `root` (default: the file's
// folder). video_id: the CSV column if given; otherwise files whose names
// share the part before "_frame" in the same folder share an id (the
// reference's gen_video_id rule, restricted to one folder so that train/ and
// test/ copies of a name stay apart), every other file gets its own.
// Automatic ids are numbered per domain above the largest explicit one.
//
// Videos (.avi .mp4 .mov .mkv, any case, list or CSV): VideoFrameIndices picks
// `video_frames` frames; each frame is a sample with the video's id and source
// "<path>#frame=<index>".
//
// Every sample is cropped (CelebA-Spoof), resized to size x size (aspect not
// kept, as the reference's cv2.resize) and encoded as `encoding` says. An input that cannot
// be read or decoded (missing file, corrupt or truncated JPEG, broken video) is
// skipped and listed in the manifest; label and format errors throw
// instructflip::Error before the store is touched. Nothing is visible in the
// store until the final StoreWriter::Commit().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dataio/base/choices.h"
#include "dataio/base/progress.h"
#include "dataio/jpeg_codec.h"
#include "dataio/manifest.h"
#include "dataio/schema.h"

namespace instructflip {

enum class IngestFormat { kCelebASpoof, kList, kCsv };
inline const Choices<IngestFormat> kIngestFormats{
    {"celeba", IngestFormat::kCelebASpoof}, {"list", IngestFormat::kList}, {"csv", IngestFormat::kCsv}};

// How each sample's pixels are stored (dataio/image_codec.h). FAS cues are
// texture (moiré, halftone, blur) that JPEG re-encoding blurs.
enum class IngestEncoding {
  kJpeg,  // re-encoded as JPEG at `jpeg_quality` (default; about 5x smaller than PNG)
  kPng,   // lossless PNG of the cropped, resized pixels
  kKeep,  // the source file's own bytes when it is a JPEG or PNG already at the
          // store size with nothing to crop; otherwise lossless PNG
};
inline const Choices<IngestEncoding> kIngestEncodings{
    {"jpeg", IngestEncoding::kJpeg}, {"png", IngestEncoding::kPng}, {"keep", IngestEncoding::kKeep}};

struct IngestOptions {
  std::string out;      // store directory (StoreWriterOptions.dir)
  // Add to an existing store: new domains, or more samples to one it holds
  // (another split); an input held in the same domain and split is refused.
  bool append = false;
  IngestFormat format = IngestFormat::kList;
  std::string input;   // celeba: dataset root or a label json; list/csv: the file
  std::string root;    // base of relative paths (default: see above)
  std::string domain;  // domain name; required except for a CSV whose rows all name one
  std::optional<Split> split;  // list (required), csv (rows without a split)
  int size = 224;      // output side (square)
  int jpeg_quality = 90;
  IngestEncoding encoding = IngestEncoding::kJpeg;
  int threads = 2;            // decode/resize/encode workers
  int video_frames = 2;       // frames sampled per video
  int video_first_frame = 6;  // the reference's first frame
  bool allow_outside_root = false;  // accept listed paths with '../' or absolute ones
  std::string camera_quality_csv;   // celeba: per-image camera quality overrides
  ProgressSink progress;            // inputs read (dataio/base/progress.h); empty: none
};

struct IngestReport {
  int64_t added = 0;    // samples written by this ingest
  int64_t skipped = 0;  // inputs skipped by this ingest (manifest.skipped also lists earlier ones)
  Manifest manifest;    // the committed manifest
};

IngestReport Ingest(const IngestOptions& options);

// What Ingest would add, from its first phase alone: every label, list or CSV
// file is read and checked (raising each error Ingest would raise about them)
// but no image is opened and the store is not touched. `ingest --dry-run`.
struct IngestPreview {
  std::vector<DomainEntry> domains;  // new domains; counts of *inputs* per split/label
  int64_t inputs = 0;                // files to read (a video gives several samples)
  int64_t videos = 0;                // of which videos
  int64_t repeats = 0;               // rows naming an input already listed (skipped)
};
IngestPreview PreviewIngest(const IngestOptions& options);

// Frame indices sampled from a video of `frame_count` frames: first_frame +
// k * floor(frame_count / frames) for k = 0..frames-1, each clamped to
// frame_count - 1, duplicates (short videos) dropped. For 2 frames this is the
// reference's (6, 6 + floor(n/2)). Empty if frame_count <= 0.
std::vector<int64_t> VideoFrameIndices(int64_t frame_count, int frames, int first_frame);

// True for the video extensions above (.avi .mp4 .mov .mkv, any case).
bool IsVideoPath(const std::string& path);

// One file read as ingest reads it, without a store: an image whole, or a
// video's VideoFrameIndices frames, each resized to size x size as ingest
// resizes (predict's input). Unreadable input: no frames and the reason, as
// ingest's manifest would list it.
struct InputFrames {
  std::vector<RgbImage> frames;
  std::vector<int64_t> frame_indices;  // the video frames read; empty for an image
  std::string skip_reason;             // non-empty: not readable
};
InputFrames ReadInputFrames(const std::string& path, int size, int video_frames = 2, int video_first_frame = 6);

}  // namespace instructflip
