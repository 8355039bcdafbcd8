"""Derived row formats of a preference pair: the DPO prompt each row was generated from
(`dpo_prompt`), ms-swift's DPO rows (`swift_rows`) and TRL's conversational preference rows
(`trl_rows`).

Publishing writes them as the card's `swift` and `trl` configs and `savi export` writes them as files;
both take them from here, so no reader can train on another prompt than `savi train`. Pure
transformations of an Arrow table of pairs; they sit above `builders` (the answer template renders an
older row's prompt) and below `hub`.
"""
