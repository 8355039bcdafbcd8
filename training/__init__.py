"""DPO + LoRA training on a named dataset revision, producing the next iteration's model.

One module per job: `video_roots` (where each source's videos live), `revision` (the revision's rows,
commit sha and build-time frame/prompt settings), `data` (rows -> video files, checked and counted
before any step), `video_frames` (re-decode the stored frame indices), `prompt` (the answer-stage user
turn the pairs were made with), `collator` (frames decoded lazily, processor called with `videos=`),
`model_io` (load, LoRA targets, merge, save), `metrics` (the paper's DPO curves), `args`
(`TrainArgs`, `TrainResult`), `train` (`train_dpo`), `loop` (build -> publish -> train iterations).
Heavy libraries (torch, transformers, trl, peft, datasets) load inside the functions that need them.
"""
