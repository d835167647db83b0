// A bootstrap exchange through a file in a directory every rank sees (the run
// directory on a shared filesystem): rank 0 publishes a small blob, the others
// wait for it. It needs nothing from the launcher (no PMIx, no MPI), which
// makes it the fallback for handing the NCCL unique id to every rank when MPI
// is not used for that; MPI bootstraps everything else.
//
// `key` must name this launch of the job (e.g. Slurm's job id and restart
// count): a file left by an earlier launch has another key, so it is never
// read. The file is written to a temp name and renamed (readers never see a
// partial one) and carries the key and a CRC32C of the blob; a file whose
// header or checksum does not match is an error naming it.
#pragma once

#include <chrono>
#include <string>

namespace instructflip {

// Rank 0: writes DIR/rendezvous-KEY. Returns its path.
std::string PublishRendezvous(const std::string& dir, const std::string& key, const std::string& blob);

// Other ranks: polls for DIR/rendezvous-KEY until it appears or `timeout`
// passes (an error naming the path and the key) and returns the blob.
std::string AwaitRendezvous(const std::string& dir, const std::string& key, std::chrono::milliseconds timeout);

}  // namespace instructflip
