"""The converted model's tokenizer: a stock fast tokenizer built from the original tokenizer files.

InternLM2 (InternVL2.5-8B): the original `InternLM2Tokenizer` is remote code around a SentencePiece
BPE model (`tokenizer.model`) that splits the text on added tokens, SentencePiece-encodes every
piece and puts BOS in front. We read the SentencePiece model as data (transformers'
`SentencePieceExtractor`: vocabulary and merges in score order) and rebuild it as a `tokenizers` BPE
with the model's own normalizer settings (byte fallback, precompiled character map, extra-whitespace
removal, dummy prefix). Added tokens come from the original `tokenizer_config.json`
(`added_tokens_decoder`, the InternVL image tokens among them) at their exact ids; where such an id
is a placeholder piece of the SentencePiece model (InternLM2's chat tokens sit on `[UNUSED_TOKEN_14x]`),
the piece takes the added name, as the original tokenizer does. Decoding drops one
leading space, as `InternLM2Tokenizer.convert_tokens_to_string` does. BOS is not added by the
tokenizer: the chat template writes it (see `chat_template`). The result is checked against the
`sentencepiece` library itself on a set of probe texts, and the conversion is refused on any
difference. Limits: `tokenizers` BPE and SentencePiece BPE can differ on inputs the probes do not
cover (none known for byte-fallback BPE with identity normalization); sampling options of the slow
tokenizer (`sp_model_kwargs`, subword regularization) are not carried over.

Qwen2 (InternVL3, small InternVL2.5): the original tokenizer is the stock `Qwen2Tokenizer` (no remote
code); it is loaded as such and re-wrapped with InternVL's special-token names.

Both: EOS becomes `<|im_end|>` (the end of a turn, where the original chat stops generating), and
`<video>` is added when missing as the video placeholder the processor expands into per-frame image
tokens; it never reaches the model, so it may lie past the model's vocabulary.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from videosavi.builders.generate.models.internvl_convert.keys import TextArch
from videosavi.errors import ModelError

IMAGE_TOKENS = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>"}
VIDEO_TOKEN = "<video>"
TURN_END = "<|im_end|>"
SPM_FILE = "tokenizer.model"
CONFIG_FILE = "tokenizer_config.json"
LEGACY_ADDED_FILE = "added_tokens.json"  # older saves list added tokens here as {content: id}
_QWEN2_CLASSES = ("Qwen2Tokenizer", "Qwen2TokenizerFast")
_SPM_BPE = 2  # TrainerSpec.ModelType.BPE

# Texts on which the rebuilt tokenizer must give exactly the original's ids.
PROBE_TEXTS = (
    "A person walks into the kitchen and picks up a red cup.",
    "  two leading spaces, a tab\there and a trailing space ",
    "line one\nline two\r\n\nline four",
    "Numbers 0 12 345 6789 and 3.14159, 1e-6.",
    '{"issues": [{"statement": "the cup is blue", "severity": "critical"}], "summary": "x"}',
    "def f(x):\n    return x ** 2  # indented code",
    "视频中的人在做什么？他拿起了红色的杯子。",
    "Émoji and accents: café, naïve, 😀🎬",
    "<|im_start|>user\nFrame1: <img><IMG_CONTEXT></img>\nWhat happens?<|im_end|>\n<|im_start|>assistant\n",
)


@dataclass
class ConvertedTokenizer:
    tokenizer: Any
    image_token_id: int
    notes: list[str] = field(default_factory=list)


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


def _read_config(src: Path) -> dict[str, Any]:
    path = src / CONFIG_FILE
    if not path.is_file():
        raise ModelError(f"{path}: missing; the original tokenizer config lists InternVL's added tokens")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from exc


def required_files(src: Path, text_arch: TextArch) -> list[Path]:
    """The tokenizer files the conversion reads; refuses early, naming the first one missing."""
    if text_arch == "internlm2":
        needed = [src / SPM_FILE, src / CONFIG_FILE]
    elif (src / "tokenizer.json").is_file():
        needed = [src / "tokenizer.json", src / CONFIG_FILE]
    else:
        needed = [src / "vocab.json", src / "merges.txt", src / CONFIG_FILE]
    for path in needed:
        if not path.is_file():
            raise ModelError(f"{path}: missing tokenizer file; the checkpoint is incomplete")
    return needed + ([src / LEGACY_ADDED_FILE] if (src / LEGACY_ADDED_FILE).is_file() else [])


def _added_tokens(config: dict[str, Any], origin: Path) -> list[tuple[int, Any]]:
    from tokenizers import AddedToken

    out = []
    for key, spec in (config.get("added_tokens_decoder") or {}).items():
        try:
            token_id = int(key)
        except ValueError as exc:
            raise ModelError(f"{origin}: added_tokens_decoder key {key!r} is not a token id") from exc
        content = _token_text(spec)
        if not content:
            raise ModelError(f"{origin}: added_tokens_decoder[{key}] has no content")
        opts = spec if isinstance(spec, dict) else {}
        out.append(
            (
                token_id,
                AddedToken(
                    content,
                    single_word=bool(opts.get("single_word", False)),
                    lstrip=bool(opts.get("lstrip", False)),
                    rstrip=bool(opts.get("rstrip", False)),
                    normalized=bool(opts.get("normalized", False)),
                    special=bool(opts.get("special", True)),
                ),
            )
        )
    legacy = origin.parent / LEGACY_ADDED_FILE
    if legacy.is_file():
        try:
            entries = json.loads(legacy.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ModelError(f"{legacy}: not valid JSON ({exc})") from exc
        specials = {_token_text(t) for t in config.get("additional_special_tokens") or []}
        known = {token_id for token_id, _ in out}
        for content, token_id in entries.items():
            if not isinstance(token_id, int):
                raise ModelError(f"{legacy}: {content!r} has id {token_id!r}, not an integer")
            if token_id not in known:
                out.append((token_id, AddedToken(content, normalized=False, special=content in specials)))
    return sorted(out, key=lambda item: item[0])


def _take_over_pieces(parts: dict[str, Any], added: list[tuple[int, Any]], origin: Path) -> list[str]:
    """Rename the SentencePiece pieces whose ids tokenizer_config.json gives to added tokens.

    InternLM2's chat tokens live on placeholder pieces of its SentencePiece model (`[UNUSED_TOKEN_145]`
    is `<|im_end|>`, and so on): the original tokenizer maps those ids to the added names, so the
    rebuilt vocabulary carries the added name at that id, and merges that built the old name go.
    """
    vocab: dict[str, int] = parts["vocab"]
    by_id = {i: piece for piece, i in vocab.items()}
    renamed: dict[str, str] = {}
    for token_id, token in added:
        old = by_id.get(token_id)
        if old is None or old == token.content:
            continue
        if token.content in vocab:
            raise ModelError(
                f"{origin}: added token {token_id} {token.content!r} is also piece {vocab[token.content]} of {SPM_FILE}"
            )
        del vocab[old]
        vocab[token.content] = token_id
        by_id[token_id] = token.content
        renamed[old] = token.content
    parts["merges"] = [m for m in parts["merges"] if not {m[0], m[1], m[0] + m[1]} & renamed.keys()]
    parts["additional_special_tokens"] = [t for t in parts["additional_special_tokens"] if t.content not in renamed]
    return [f"{old} -> {new}" for old, new in renamed.items()]


def _spm_backend(spm_path: Path, added: list[tuple[int, Any]], origin: Path) -> tuple[Any, Any, list[str]]:
    """A `tokenizers.Tokenizer` equal to the SentencePiece BPE model (with the pieces tokenizer_config.json
    renames), the model's proto, and the renames done."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers
    from tokenizers.models import BPE
    from transformers.convert_slow_tokenizer import SentencePieceExtractor

    try:
        extractor = SentencePieceExtractor(str(spm_path))
    except Exception as exc:  # a corrupt proto raises protobuf's DecodeError
        raise ModelError(f"{spm_path}: not a SentencePiece model ({exc})") from exc
    proto = extractor.proto
    if proto.trainer_spec.model_type != _SPM_BPE:
        raise ModelError(f"{spm_path}: SentencePiece model type {proto.trainer_spec.model_type}; InternLM2's is BPE")
    # annotated as a (vocab, merges) tuple, it returns BPE's keyword arguments (vocab, merges, added tokens)
    parts = cast("dict[str, Any]", extractor.extract(BPE))
    renamed = _take_over_pieces(parts, added, origin)
    backend = Tokenizer(
        BPE(
            vocab=parts["vocab"],
            merges=parts["merges"],
            unk_token=proto.trainer_spec.unk_piece,
            fuse_unk=True,
            byte_fallback=proto.trainer_spec.byte_fallback,
        )
    )
    spec = proto.normalizer_spec
    steps: list[Any] = []
    if spec.precompiled_charsmap:
        steps.append(normalizers.Precompiled(spec.precompiled_charsmap))
    if spec.remove_extra_whitespaces:
        # \A and \z: `tokenizers` regexes are Onigmo, where ^ and $ also match at every line break.
        steps += [normalizers.Replace(Regex(" {2,}"), " "), normalizers.Replace(Regex(r"\A | \z"), "")]
    if spec.add_dummy_prefix:
        steps.append(normalizers.Prepend("▁"))
    steps.append(normalizers.Replace(" ", "▁"))
    backend.normalizer = normalizers.Sequence(steps)
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    # SentencePiece's control and user-defined pieces are whole tokens, never split.
    backend.add_special_tokens([t for t in parts["additional_special_tokens"] if t.special])
    backend.add_tokens([t for t in parts["additional_special_tokens"] if not t.special])
    return backend, proto, renamed


def _place_added_tokens(backend: Any, added: list[tuple[int, Any]], origin: Path) -> None:
    """Add tokenizer_config's added tokens at their exact ids (existing pieces or the next free id)."""
    for token_id, token in added:
        size = backend.get_vocab_size(with_added_tokens=True)
        existing = backend.id_to_token(token_id)
        if existing is not None and existing != token.content:
            raise ModelError(
                f"{origin}: added token {token_id} {token.content!r}, but the vocabulary has {existing!r} there"
            )
        if existing is None and token_id != size:
            raise ModelError(f"{origin}: added token {token_id} {token.content!r} leaves a gap after id {size - 1}")
        if token.special:
            backend.add_special_tokens([token])
        else:
            backend.add_tokens([token])
        if backend.token_to_id(token.content) != token_id:
            raise ModelError(f"{origin}: added token {token.content!r} did not land on id {token_id}")


def _spm_reference(spm_path: Path, added_ids: dict[str, int]) -> Callable[[str], list[int]]:
    """What the original tokenizer gives: split on added tokens, SentencePiece-encode the rest."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_path))
    alternatives = "|".join(re.escape(t) for t in sorted(added_ids, key=len, reverse=True))
    pattern = re.compile(f"({alternatives})") if added_ids else None

    def encode(text: str) -> list[int]:
        out: list[int] = []
        for chunk in pattern.split(text) if pattern else [text]:
            if chunk in added_ids:
                out.append(added_ids[chunk])
            elif chunk:
                out.extend(sp.encode(chunk))
        return out

    return encode


def _wrap(backend: Any, *, bos: str | None, unk: str | None, pad: str | None, config: dict[str, Any],
          chat_template: str) -> Any:
    from transformers import PreTrainedTokenizerFast

    extra = {**IMAGE_TOKENS, "video_token": VIDEO_TOKEN}
    if backend.token_to_id(VIDEO_TOKEN) is None:
        backend.add_special_tokens([VIDEO_TOKEN])
    kwargs: dict[str, Any] = {}
    if isinstance(config.get("model_max_length"), int):
        kwargs["model_max_length"] = config["model_max_length"]
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=bos,
        eos_token=TURN_END,
        unk_token=unk,
        pad_token=pad,
        extra_special_tokens=extra,
        clean_up_tokenization_spaces=False,
        **kwargs,
    )
    tok.chat_template = chat_template
    return tok


def _check_required_tokens(backend: Any, origin: Path) -> None:
    for token in (*IMAGE_TOKENS.values(), TURN_END):
        if backend.token_to_id(token) is None:
            raise ModelError(f"{origin}: no {token!r} token; is this an InternVL chat checkpoint?")


def _internlm2(src: Path, chat_template: str) -> ConvertedTokenizer:
    config = _read_config(src)
    origin = src / CONFIG_FILE
    added = _added_tokens(config, origin)
    backend, proto, renamed = _spm_backend(src / SPM_FILE, added, origin)
    _place_added_tokens(backend, added, origin)
    _check_required_tokens(backend, origin)
    spec = proto.trainer_spec
    bos = _token_text(config.get("bos_token")) or (spec.bos_piece if spec.bos_id >= 0 else None)
    unk = _token_text(config.get("unk_token")) or spec.unk_piece
    pad = _token_text(config.get("pad_token")) or (spec.eos_piece if spec.eos_id >= 0 else None)
    tok = _wrap(backend, bos=bos, unk=unk, pad=pad, config=config, chat_template=chat_template)

    added_ids = {t.content: i for i, t in backend.get_added_tokens_decoder().items()}
    reference = _spm_reference(src / SPM_FILE, added_ids)
    for text in PROBE_TEXTS:
        ours = tok.encode(text, add_special_tokens=False)
        theirs = reference(text)
        if ours != theirs:
            raise ModelError(
                f"{src / SPM_FILE}: the rebuilt tokenizer differs from SentencePiece on {text!r} "
                f"({ours[:12]} vs {theirs[:12]}); refusing to write a tokenizer that does not match"
            )
    notes = [
        f"InternLM2Tokenizer ({config.get('tokenizer_class', 'unnamed')}) rebuilt from {SPM_FILE} as a tokenizers "
        f"BPE (byte_fallback={spec.byte_fallback}, add_dummy_prefix={proto.normalizer_spec.add_dummy_prefix}, "
        f"remove_extra_whitespaces={proto.normalizer_spec.remove_extra_whitespaces}); equal to SentencePiece on "
        f"{len(PROBE_TEXTS)} probe texts",
        "BOS is written by the chat template, not added by the tokenizer",
    ]
    if renamed:
        notes.append(f"pieces renamed as tokenizer_config.json's added tokens: {', '.join(renamed)}")
    return ConvertedTokenizer(tok, int(backend.token_to_id(IMAGE_TOKENS["context_image_token"])), notes)


def _qwen2(src: Path, chat_template: str) -> ConvertedTokenizer:
    from transformers import Qwen2Tokenizer

    config = _read_config(src)
    origin = src / CONFIG_FILE
    cls = config.get("tokenizer_class")
    if cls not in _QWEN2_CLASSES:
        raise ModelError(f"{origin}: tokenizer_class {cls!r}; a Qwen2 language model needs {_QWEN2_CLASSES[0]}")
    try:
        original = Qwen2Tokenizer.from_pretrained(str(src))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{src}: cannot read the Qwen2 tokenizer ({exc})") from exc
    backend = copy.deepcopy(original.backend_tokenizer)  # the original stays as it was, for the check below
    _check_required_tokens(backend, origin)
    pad = original.pad_token or "<|endoftext|>"
    tok = _wrap(backend, bos=None, unk=None, pad=pad, config=config, chat_template=chat_template)
    for text in PROBE_TEXTS:
        if tok.encode(text, add_special_tokens=False) != original.encode(text, add_special_tokens=False):
            raise ModelError(f"{origin}: the re-wrapped tokenizer differs from Qwen2Tokenizer on {text!r}")
    notes = [f"stock {cls} re-wrapped with InternVL's image/video token names"]
    return ConvertedTokenizer(tok, int(backend.token_to_id(IMAGE_TOKENS["context_image_token"])), notes)


def convert_tokenizer(src: Path, text_arch: TextArch, chat_template: str) -> ConvertedTokenizer:
    """The native tokenizer for `src`'s language model; see the module docstring."""
    required_files(src, text_arch)
    if text_arch == "internlm2":
        return _internlm2(src, chat_template)
    return _qwen2(src, chat_template)
