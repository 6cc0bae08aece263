"""Captions images with transformers' Qwen2-VL / Qwen2.5-VL on the CPU and prints one JSON line:
images/s over the timed images (processor, chat template, greedy generate of exactly N tokens,
repetition penalty off), the thread count and the library versions. Used by `cargo xtask
bench-model --python PY`, which runs cox-model on the same checkpoint, images and thread count.

Usage: bench_qwen2_vl.py MODEL_DIR THREADS MAX_NEW_TOKENS PROMPT IMAGE [IMAGE ...]
The first image is a warm-up and is not timed."""
import json
import sys
import time

import torch
import transformers
from PIL import Image

assert transformers.__version__.startswith("5."), transformers.__version__

model_dir, threads, max_new, prompt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
paths = sys.argv[5:]
torch.set_num_threads(threads)
with open(f"{model_dir}/config.json") as f:
    model_type = json.load(f)["model_type"]
cls = {
    "qwen2_vl": transformers.Qwen2VLForConditionalGeneration,
    "qwen2_5_vl": transformers.Qwen2_5_VLForConditionalGeneration,
}[model_type]
model = cls.from_pretrained(model_dir, dtype=torch.float32).eval()
proc = transformers.AutoProcessor.from_pretrained(model_dir)
messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]


def caption(path):
    img = Image.open(path).convert("RGB")
    text = proc.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = proc(text=[text], images=[img], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(
            **inputs, max_new_tokens=max_new, min_new_tokens=max_new, do_sample=False,
            repetition_penalty=1.0,
        )
    return out.shape[1] - inputs["input_ids"].shape[1]


caption(paths[0])
t0 = time.perf_counter()
tokens = [caption(p) for p in paths[1:]]
wall = time.perf_counter() - t0
assert all(t == max_new for t in tokens), tokens
print(json.dumps({
    "images_per_s": len(tokens) / wall, "images": len(tokens), "wall_s": wall,
    "threads": torch.get_num_threads(), "transformers": transformers.__version__,
    "torch": torch.__version__,
}))
