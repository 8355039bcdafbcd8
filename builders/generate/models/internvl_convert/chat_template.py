"""The InternVL2.5 conversation format (`internvl2_5`, also used by InternVL3) as a chat template.

The original chat code builds `<|im_start|>system\\n{system}<|im_end|>\\n<|im_start|>user\\n{query}
<|im_end|>\\n<|im_start|>assistant\\n` with a fixed Chinese system message when the caller gives
none, and prefixes a video question with `Frame1: <image>\\nFrame2: <image>\\n...` (several images
with `Image-1: <image>\\n...`, one image with `<image>\\n`). The native processor expands `<video>`
into exactly those `FrameN: <img>...</img>` lines joined by newlines, and `<IMG_CONTEXT>` into
`<img>...</img>`, so the template emits `<video>\\n` and `<IMG_CONTEXT>\\n` in their place.

InternLM2's original tokenizer puts BOS in front of every prompt; the converted tokenizer adds no
special tokens by itself, so the template writes `{{ bos_token }}` instead. That keeps one BOS both
where text is tokenized with special tokens (the generation backend) and without (the DPO collator).
"""

from __future__ import annotations

# The original checkpoint's default system message (InternVL2.5 / InternVL3 `internvl2_5` template).
DEFAULT_SYSTEM_MESSAGE = (
    "你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。"
)

_BODY = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\\n' + default_system + '<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}"
    "{% set n_images = message['content'] | selectattr('type', 'equalto', 'image') | list | length %}"
    "{% set image_index = namespace(value=0) %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}"
    "{% set image_index.value = image_index.value + 1 %}"
    "{% if n_images > 1 %}{{ 'Image-' + image_index.value | string + ': ' }}{% endif %}"
    "{{ '<IMG_CONTEXT>\\n' }}"
    "{% elif content['type'] == 'video' %}{{ '<video>\\n' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def internvl_chat_template(with_bos: bool, system_message: str = DEFAULT_SYSTEM_MESSAGE) -> str:
    """The template; `with_bos` for tokenizers whose original added BOS to every prompt (InternLM2)."""
    escaped = system_message.replace("\\", "\\\\").replace("'", "\\'")
    head = "{% set default_system = '" + escaped + "' %}"
    return head + ("{{ bos_token }}" if with_bos else "") + _BODY
