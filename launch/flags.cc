#include "launch/flags.h"

DEFINE_string(out, "", "output store directory");
DEFINE_int32(domains, 4, "synth: number of synthetic domains");
DEFINE_int32(per_domain, 200, "synth: samples per domain");
DEFINE_int32(size, 224, "image side in pixels");
DEFINE_uint64(seed, 0, "random seed");
DEFINE_int32(frames_per_video, 3, "synth: frames per synthetic video");
DEFINE_int32(quality, 90, "JPEG quality (1..100)");
DEFINE_int32(threads, 2, "worker threads");
DEFINE_bool(append, false, "add domains to an existing store");
DEFINE_string(format, "", "ingest: celeba | list | csv");
DEFINE_string(input, "", "ingest: dataset root (celeba), list file (list) or csv file (csv)");
DEFINE_string(root, "", "ingest: directory relative paths are resolved against");
DEFINE_string(domain, "", "ingest: domain name");
DEFINE_string(split, "", "ingest: train | test");
DEFINE_int32(video_frames, 2, "ingest: frames sampled per video");
DEFINE_int32(video_first_frame, 6, "ingest: first sampled frame of a video");
DEFINE_string(store, "", "store directory");
DEFINE_int32(batch, 32, "batch size (per rank)");
DEFINE_int32(images, 1024, "bench data: images in the generated store");
DEFINE_int32(epochs, 5, "bench data: timed passes over the images");
DEFINE_bool(json, false, "print machine-readable JSON");
DEFINE_string(model, "tiny", "model config: tiny | base | path to a YAML file");
DEFINE_int32(steps, 5, "bench step: timed steps (after one warm-up step)");
DEFINE_string(precision, "fp32", "fp32 | bf16 | fp16");
DEFINE_string(config, "", "train: configuration YAML (configs/train/*.yaml)");
DEFINE_string(run_dir, "", "train: run directory (checkpoints, metrics, resolved config)");
DEFINE_string(resume, "auto", "train: auto (newest complete checkpoint, else fresh), a checkpoint directory, or '' for fresh");
DEFINE_int32(ranks, 1, "bench step: weak scaling over this many ranks (run under mpirun -np RANKS)");
DEFINE_double(link_gbps, 0,
              "bench step --ranks: add the transfer time of a link of this many Gbit/s to every gradient "
              "all-reduce (dist/emulated_link.h; 0: this machine's own path only)");
DEFINE_string(scores, "", "metrics: CSV with header score,label,video_id[,domain]");
DEFINE_double(threshold, -1, "metrics: decision threshold for HTER/ACC (default: each domain's own EER threshold)");
DEFINE_string(checkpoint, "", "eval: checkpoint directory or model.safetensors");
DEFINE_string(targets, "", "eval: comma-separated target domains");
DEFINE_string(protocol, "", "lodo: protocol name (configs/protocols/NAME.yaml) or YAML file");
DEFINE_int32(job, -1, "lodo: run only this job (0-based) of the planned run directory, as an MPI rank");
DEFINE_bool(aggregate, false, "lodo: only aggregate the finished jobs' results into one table");
DEFINE_bool(slurm, false, "lodo: submit the unfinished jobs as a Slurm job array instead of running them here");
DEFINE_bool(dry_run, false, "lodo: print the plan and stop");
DEFINE_int32(explain, 0, "eval: samples per domain explained (T5 answers + cue map PNGs)");
