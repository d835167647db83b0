#!/usr/bin/env python3
"""Parity fixtures from Hugging Face's own modules, for tests/model/hf_parity_test.cc.

    python3 tests/gpu/make_hf_fixtures.py OUT_DIR      # e.g. tests/fixtures/hf

Needs torch, transformers (written against 5.x) and safetensors: the GPU
host has them, the CPU machine does not. Everything runs
on the CPU in fp32 from fixed seeds; nothing is downloaded (HF_HUB_OFFLINE).

Three tiny random models built from configs, shaped like the pretrained
components InstructFLIP loads (model/weights.h):

  clip/  CLIPVisionModel, OpenAI CLIP's shape (QuickGELU, pre/post LayerNorm)
  bert/  BertModel (3 layers; the Q-Former takes the first 2)
  t5/    T5ForConditionalGeneration shaped like FLAN-T5: gated feed-forward,
         untied lm_head, 32 relative buckets up to distance 128

Each directory holds what `save_pretrained` writes (model.safetensors,
config.json) and io.safetensors with the inputs and Hugging Face's outputs;
manifest.json holds the configs and the library versions. The C++ test builds
our modules from the manifest, loads model.safetensors through our loader and
compares. Why each model is adjusted after construction is said where it is
done; every assumption about transformers' behaviour is checked here and the
script stops with a message naming it when one does not hold, so that a
fixture never encodes something other than what its name says.
"""
import argparse
import inspect
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # configs only, never the hub

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertModel,
    CLIPVisionConfig,
    CLIPVisionModel,
    T5Config,
    T5ForConditionalGeneration,
)
from transformers.activations import ACT2FN  # noqa: E402

# Widths: CLIP's and BERT's hidden sizes must agree (our Q-Former's hidden size
# is the vision width, ModelConfig validates it). Small enough that all three
# checkpoints together stay near half a megabyte.
CLIP = dict(
    hidden_size=32,
    intermediate_size=128,  # our CLIP MLP is fixed at 4 x width, as every OpenAI CLIP
    num_hidden_layers=2,
    num_attention_heads=2,
    image_size=32,
    patch_size=8,
    num_channels=3,
    hidden_act="quick_gelu",  # OpenAI CLIP; our CLIPMlp hard-codes it
    layer_norm_eps=1e-5,
    attention_dropout=0.0,
)
BERT = dict(
    vocab_size=120,  # our Q-Former gets 121 rows: BLIP-2 appends [DEC]
    hidden_size=32,
    num_hidden_layers=3,  # one more than the Q-Former takes: the loader must skip it
    num_attention_heads=4,
    intermediate_size=64,
    hidden_act="gelu",  # exact (erf) GELU, as our BertIntermediate
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    max_position_embeddings=64,
    type_vocab_size=2,
    layer_norm_eps=1e-12,  # bert-base-uncased's
    pad_token_id=0,
)
QFORMER_LAYERS = 2
T5 = dict(
    vocab_size=64,
    d_model=32,
    d_kv=6,  # heads x d_kv = 24 != d_model: the inner width must not be assumed
    d_ff=48,
    num_layers=2,
    num_decoder_layers=3,  # asymmetric, so encoder and decoder depths cannot be swapped
    num_heads=4,
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
    dropout_rate=0.0,
    layer_norm_epsilon=1e-6,
    feed_forward_proj="gated-gelu",
    tie_word_embeddings=False,  # FLAN-T5 (T5 v1.1): own lm_head, no d_model^-0.5 rescale
)
# The reference (and configs/model/base.yaml) runs FLAN-T5's feed-forward with
# exact GELU where Hugging Face's "gated-gelu" means the tanh "gelu_new"; the
# main outputs use exact GELU, the *_gelu_new ones FLAN's own activation.
T5_ACTIVATION = "gelu"

ATOL = 1e-6  # self-consistency checks inside Hugging Face's own computation


def fail(message):
    sys.exit(f"make_hf_fixtures.py: {message}")


def check_close(actual, expected, what, atol=ATOL):
    if actual.shape != expected.shape:
        fail(f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}")
    diff = (actual - expected).abs().max().item()
    if diff > atol:
        fail(f"{what}: differs by {diff:.3g} (> {atol:g})")


def check_config(config, wanted, what):
    """Every value we passed must read back unchanged (aliases, silent renames)."""
    for key, value in wanted.items():
        if key == "tie_word_embeddings":
            continue  # T5 rewrites it in 5.x; checked on the model instead
        got = getattr(config, key, None)
        if got != value:
            fail(f"{what} config: {key} reads back as {got!r}, expected {value!r}")


def force_eager(config):
    # Plain fp32 matmul/softmax attention rather than SDPA kernels: the config's
    # `_attn_implementation` property, which the model reads when it is built.
    config._attn_implementation = "eager"


def check_eager(model, what):
    impl = getattr(model.config, "_attn_implementation", "eager")
    if impl != "eager":
        fail(f"{what}: attention implementation is {impl!r}, not 'eager'")


def perturb(model, generator):
    """Adds noise to every parameter. Hugging Face initialises LayerNorm weights
    to 1 and biases to 0; a loader that dropped or swapped them would still
    match. 1-d tensors (norms, biases, class embedding) get more noise."""
    with torch.no_grad():
        for _, p in model.named_parameters():
            scale = 0.1 if p.dim() == 1 else 0.02
            p.add_(torch.randn(p.shape, generator=generator) * scale)


def outputs_of(modules):
    """Forward hooks collecting each module's output tensor, in call order."""
    captured = []

    def hook(_module, _inputs, output):
        if hasattr(output, "last_hidden_state"):
            output = output.last_hidden_state
        elif isinstance(output, (tuple, list)):
            output = output[0]
        captured.append(output.detach().clone())

    handles = [m.register_forward_hook(hook) for m in modules]
    return captured, handles


def remove(handles):
    for h in handles:
        h.remove()


def save_model(model, directory, what):
    """save_pretrained, then proves that the file holds exactly the model's
    parameters under their names (what our loader will read)."""
    kwargs = {}
    if "safe_serialization" in inspect.signature(model.save_pretrained).parameters:
        kwargs["safe_serialization"] = True  # 4.x; 5.x writes only safetensors
    model.save_pretrained(directory, **kwargs)
    path = os.path.join(directory, "model.safetensors")
    if not os.path.exists(path):
        fail(f"{what}: save_pretrained wrote no {path} (sharded? {sorted(os.listdir(directory))})")
    saved = load_file(path)
    params = dict(model.named_parameters(remove_duplicate=False))
    missing = sorted(set(params) - set(saved))
    if missing:
        fail(f"{what}: save_pretrained left out parameters {missing}")
    state = model.state_dict()
    for name, tensor in saved.items():
        if name not in state:
            fail(f"{what}: {path} holds '{name}', which the model's state_dict does not")
        if tensor.dtype != torch.float32 and tensor.is_floating_point():
            fail(f"{what}: '{name}' saved as {tensor.dtype}, expected float32")
        if not torch.equal(tensor, state[name]):
            fail(f"{what}: '{name}' in {path} differs from the model's tensor")
    return sorted(saved)


def save_io(tensors, directory):
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, os.path.join(directory, "io.safetensors"))


def make_clip(out, seed):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    config = CLIPVisionConfig(**CLIP)
    force_eager(config)
    check_config(config, CLIP, "CLIP")
    model = CLIPVisionModel(config).float().eval()
    check_eager(model, "CLIP")
    perturb(model, g)

    # QuickGELU, as OpenAI CLIP and our CLIPMlp.
    mlp = model.vision_model.encoder.layers[0].mlp
    x = torch.randn(3, CLIP["hidden_size"], generator=g)
    h = mlp.fc1(x)
    check_close(mlp(x), mlp.fc2(h * torch.sigmoid(1.702 * h)), "CLIP MLP is fc2(quick_gelu(fc1(x)))")

    pixel_values = torch.randn(2, 3, CLIP["image_size"], CLIP["image_size"], generator=g)
    layers, handles = outputs_of(model.vision_model.encoder.layers)
    with torch.no_grad():
        result = model(pixel_values=pixel_values)
    remove(handles)
    if len(layers) != CLIP["num_hidden_layers"]:
        fail(f"CLIP: hooked {len(layers)} layer outputs, expected {CLIP['num_hidden_layers']}")
    last = result.last_hidden_state
    check_close(layers[-1], last, "CLIP last_hidden_state is the last layer's output (no post_layernorm)")
    with torch.no_grad():
        # Our `content` view is post_layernorm over every token; Hugging Face
        # applies it to the class token only (pooler_output).
        all_tokens = model.vision_model.post_layernorm(last)
    check_close(result.pooler_output, all_tokens[:, 0], "CLIP pooler_output is post_layernorm(last_hidden_state[:, 0])")

    keys = save_model(model, out, "CLIP")
    save_io(
        {
            "pixel_values": pixel_values,  # (B, 3, H, W)
            "last_hidden_state": last,  # (B, 1 + P, W), before post_layernorm
            "pooler_output": result.pooler_output,  # (B, W)
            "post_layernorm_all_tokens": all_tokens,  # (B, 1 + P, W)
            "layer_hidden_states": torch.stack(layers),  # (L, B, 1 + P, W), each encoder layer's output
        },
        out,
    )
    return keys


def make_bert(out, seed):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    config = BertConfig(**BERT)
    force_eager(config)
    check_config(config, BERT, "BERT")
    model = BertModel(config).float().eval()
    check_eager(model, "BERT")
    perturb(model, g)
    with torch.no_grad():
        # BLIP-2's Q-Former embeddings (LAVIS, and ours) have no token types:
        # the loader skips token_type_embeddings. BertModel always adds row 0
        # (token_type_ids default to zeros), so zero the table to compare the
        # same sum LayerNorm(word + position).
        model.embeddings.token_type_embeddings.weight.zero_()

    # Exact GELU in the intermediate layer, as our BertIntermediate.
    inter = model.encoder.layer[0].intermediate
    x = torch.randn(3, BERT["hidden_size"], generator=g)
    check_close(inter(x), F.gelu(inter.dense(x)), "BERT intermediate is gelu(dense(x)) (erf)")

    # Three sentences of different lengths, right-padded with [PAD] = 0.
    input_ids = torch.tensor(
        [[7, 45, 99, 12, 3, 88, 119], [9, 61, 2, 118, 0, 0, 0], [3, 1, 0, 0, 0, 0, 0]], dtype=torch.long
    )
    attention_mask = (input_ids != 0).long()
    captured, handles = outputs_of([model.embeddings] + list(model.encoder.layer))
    with torch.no_grad():
        result = model(input_ids=input_ids, attention_mask=attention_mask)
    remove(handles)
    if len(captured) != BERT["num_hidden_layers"] + 1:
        fail(f"BERT: hooked {len(captured)} outputs, expected embeddings + {BERT['num_hidden_layers']} layers")
    check_close(captured[-1], result.last_hidden_state, "BERT last_hidden_state is the last layer's output")

    keys = save_model(model, out, "BERT")
    save_io(
        {
            "input_ids": input_ids,  # (B, T)
            "attention_mask": attention_mask,  # (B, T) 1 token / 0 padding
            # (1 + layers, B, T, H): embeddings output, then each layer's output
            "hidden_states": torch.stack(captured),
            "last_hidden_state": result.last_hidden_state,
        },
        out,
    )
    return keys


def gated_feed_forwards(model):
    return [m for m in model.modules() if all(hasattr(m, n) for n in ("wi_0", "wi_1", "wo", "act"))]


def set_t5_activation(model, name, reference, generator):
    # Set on each feed-forward module rather than trusting config.dense_act_fn
    # alone, then checked numerically (1e-5: tanh GELU spelled two ways).
    blocks = gated_feed_forwards(model)
    expected = T5["num_layers"] + T5["num_decoder_layers"]
    if len(blocks) != expected:
        fail(f"T5: found {len(blocks)} gated feed-forwards (wi_0, wi_1, wo, act), expected {expected}")
    for ff in blocks:
        ff.act = ACT2FN[name]
        x = torch.randn(3, T5["d_model"], generator=generator)
        with torch.no_grad():
            check_close(ff(x), ff.wo(reference(ff.wi_0(x)) * ff.wi_1(x)),
                        f"T5 feed-forward is wo({name}(wi_0 x) * wi_1 x)", 1e-5)


def run_t5(model, input_ids, attention_mask, decoder_input_ids):
    decoder_out, h1 = outputs_of([model.decoder])
    head_in = []
    h2 = [model.lm_head.register_forward_hook(lambda _m, inputs, _o: head_in.append(inputs[0].detach().clone()))]
    with torch.no_grad():
        result = model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids)
    remove(h1 + h2)
    if len(decoder_out) != 1 or len(head_in) != 1:
        fail(f"T5: one forward called the decoder {len(decoder_out)} and lm_head {len(head_in)} times")
    decoder_out = decoder_out[0]
    # FLAN-T5 (untied) does not rescale the decoder output by d_model^-0.5
    # before lm_head; original T5 (tied) does. Our T5 follows tie_word_embeddings.
    check_close(head_in[0], decoder_out, "T5 lm_head input is the decoder output, unscaled")
    check_close(result.logits, head_in[0] @ model.lm_head.weight.T, "T5 logits are lm_head(decoder output)", 1e-5)
    return result.encoder_last_hidden_state, result.logits


def make_t5(out, seed):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    config = T5Config(**T5)
    config.dense_act_fn = T5_ACTIVATION  # read when the feed-forwards are built; set again on them below
    force_eager(config)
    check_config(config, T5, "T5")
    if not getattr(config, "is_gated_act", False):
        fail("T5: feed_forward_proj 'gated-gelu' did not give a gated feed-forward")
    model = T5ForConditionalGeneration(config).float().eval()
    perturb(model, g)
    with torch.no_grad():
        # The shape of FLAN-T5 as our loader reads it: both stacks embed with
        # `shared`, lm_head is its own matrix. transformers 5.x ties lm_head to
        # `shared` on construction whatever the config says (and some 5.x
        # releases leave the stacks' embed_tokens untied), so set both here:
        # the stacks get copies of `shared` (copies, not aliases, so that
        # save_pretrained's alias removal cannot drop or refuse anything), and
        # lm_head a fresh matrix.
        shared = model.shared.weight
        for stack in (model.encoder, model.decoder):
            stack.embed_tokens = torch.nn.Embedding.from_pretrained(shared.detach().clone(), freeze=False)
        model.lm_head.weight = torch.nn.Parameter(
            torch.randn(T5["vocab_size"], T5["d_model"], generator=g) * T5["d_model"] ** -0.5)
    for stack in (model.encoder, model.decoder):
        if not torch.equal(stack.embed_tokens.weight, model.shared.weight):
            fail("T5: a stack's embed_tokens differs from shared")
    if torch.equal(model.lm_head.weight, model.shared.weight):
        fail("T5: lm_head is still tied to shared")

    # Encoder input: tokens ending in </s> = 1, right-padded with 0. Decoder
    # input: the decoder start token (pad = 0), then answer tokens.
    input_ids = torch.tensor([[12, 40, 7, 33, 21, 5, 63, 1], [5, 60, 17, 1, 0, 0, 0, 0]], dtype=torch.long)
    attention_mask = (input_ids != 0).long()
    decoder_input_ids = torch.tensor([[0, 9, 14, 3, 1], [0, 22, 1, 0, 0]], dtype=torch.long)

    set_t5_activation(model, "gelu_new", lambda v: F.gelu(v, approximate="tanh"), g)
    encoder_new, logits_new = run_t5(model, input_ids, attention_mask, decoder_input_ids)
    set_t5_activation(model, T5_ACTIVATION, F.gelu, g)
    encoder, logits = run_t5(model, input_ids, attention_mask, decoder_input_ids)
    if (logits - logits_new).abs().max().item() < 1e-5:
        fail("T5: exact and tanh GELU give the same logits; the activation swap did not take effect")

    keys = save_model(model, out, "T5")
    for name in ("shared.weight", "lm_head.weight"):
        if name not in keys:
            fail(f"T5: {name} missing from model.safetensors")
    save_io(
        {
            "input_ids": input_ids,  # (B, L)
            "attention_mask": attention_mask,  # (B, L)
            "decoder_input_ids": decoder_input_ids,  # (B, T), no padding mask (all ones)
            "encoder_last_hidden_state": encoder,  # (B, L, d_model), exact GELU
            "logits": logits,  # (B, T, vocab), exact GELU
            "encoder_last_hidden_state_gelu_new": encoder_new,  # FLAN-T5's own tanh GELU
            "logits_gelu_new": logits_new,
        },
        out,
    )
    return keys


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="fixture directory (created), e.g. tests/fixtures/hf")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = args.out_dir
    keys = {}
    for name, make, seed in (("clip", make_clip, 1), ("bert", make_bert, 2), ("t5", make_t5, 3)):
        directory = os.path.join(out, name)
        os.makedirs(directory, exist_ok=True)
        keys[name] = make(directory, seed)

    import safetensors

    manifest = {
        "generator": "tests/gpu/make_hf_fixtures.py",
        "versions": {
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "safetensors": safetensors.__version__,
            "python": sys.version.split()[0],
        },
        "clip": {"dir": "clip", "class": "CLIPVisionModel", "config": CLIP},
        "bert": {
            "dir": "bert",
            "class": "BertModel",
            "config": BERT,
            "qformer_layers": QFORMER_LAYERS,
            "note": "token_type_embeddings zeroed: BLIP-2's Q-Former embeddings have no token types",
        },
        "t5": {
            "dir": "t5",
            "class": "T5ForConditionalGeneration",
            "config": T5,
            "feed_forward_activation": T5_ACTIVATION,
            "note": "dense_act_fn set to exact gelu (the *_gelu_new outputs use gelu_new); "
                    "encoder/decoder embed_tokens are copies of shared, lm_head untied",
        },
        "checkpoint_keys": keys,
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")

    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(out) for n in names)
    if total > 1_000_000:
        fail(f"fixtures take {total} bytes, more than 1 MB")
    print(f"wrote {out}: {total} bytes, transformers {transformers.__version__}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
