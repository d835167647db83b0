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
