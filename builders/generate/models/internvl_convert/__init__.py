"""Convert an original InternVL2.5 / InternVL3 checkpoint (`InternVLChatModel`, remote code) into
transformers' native `InternVLForConditionalGeneration`, without running any of its code.

The original checkpoint can only be loaded with `trust_remote_code`, and its InternLM2 language model
names layers `attention.wqkv` / `feed_forward.w1..w3`, which the in-process backend, LoRA targeting
and `savi train` do not know. transformers has a native InternVL class whose language model is a
Llama (for InternLM2) or a Qwen2; this package reads the original files (config.json, safetensors,
tokenizer) as data and writes that native layout. One job per module:

- `config_map`: original config.json -> native config and processor settings (pure)
- `keys`: original tensor name -> native name(s) and how to split a fused tensor (pure)
- `fused`: the splits themselves, InternLM2's grouped-query `wqkv` and InternViT's `qkv` (pure)
- `chat_template`: the InternVL2.5 conversation format as a Jinja chat template (pure)
- `tokenizer`: a stock fast tokenizer from the original tokenizer files, checked against the original
- `source`: find and check the original files (local folder or the Hugging Face cache)
- `weight_stream`: rename/split tensors shard by shard and write safetensors shards
- `convert`: the whole conversion into a temporary folder, renamed into place at the end
"""

from videosavi.builders.generate.models.internvl_convert.convert import ConvertResult, convert_internvl

__all__ = ["ConvertResult", "convert_internvl"]
