// `instructflip report RUN_DIR`: one self-contained HTML page for a run.
//
// A run directory is either a LODO run (RUN_DIR/lodo.json, one training run
// per job under RUN_DIR/jobs/<job>/) or a single training run
// (RUN_DIR/metrics.jsonl, optional RUN_DIR/eval/). The page holds the metrics
// tables (with the threshold mode and checkpoint rule they were computed
// under), the cost table, and per training run the loss and learning-rate
// curves, the ROC curves and the explanation samples.
//
// Self-contained by construction: charts are inline SVG drawn here, images are
// `data:image/png;base64` URIs, there is no script, and a Content-Security-Policy
// meta tag forbids every load but data: images. Every string that comes from a
// file is HTML-escaped. Only a missing run directory, a directory that is no
// run, or a malformed lodo.json is an error; any other missing or broken
// input file shows as "not available" on the page.
#pragma once

#include <string>

namespace instructflip {

// Writes RUN_DIR/report.html (or `out_path` if not empty) atomically and
// returns its path. Throws instructflip::Error naming the path on the errors above.
std::string WriteReport(const std::string& run_dir, const std::string& out_path = "");

}  // namespace instructflip
