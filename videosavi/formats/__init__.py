"""Derived row formats of a preference pair: the DPO prompt each row was generated from
(`dpo_prompt`), the published `default` rows in TRL's conversational preference form and back
(`published_rows`), and ms-swift's DPO rows (`swift_rows`).

Publishing writes them as the card's `default` and `swift` configs and `savi export` writes files;
both take them from here, so no reader can train on another prompt than `savi train`. Pure
transformations of an Arrow table of pairs; they sit above `builders` (the answer template renders an
older row's prompt) and below `hub`.
"""
