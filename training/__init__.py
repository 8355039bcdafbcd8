"""DPO + LoRA training on a named dataset revision, producing the next iteration's model.

One module per job: `video_roots` (where each source's videos live), `revision` (the revision's rows,
commit sha and build-time frame/prompt settings), `data` (rows -> video files, checked and counted
before any step), `video_frames` (re-decode the stored frame indices), `prompt` (the answer-stage user
turn the pairs were made with), `collator` (frames decoded lazily, processor called with `videos=`),
`model_io` (load, LoRA targets, merge, save), `metrics` (the paper's DPO curves), `args`
(`TrainArgs`, `TrainResult`), `train` (`train_dpo`). The build -> publish -> train loop is a workflow
(`videosavi.workflows.loop`): it sits above training.
Heavy libraries (torch, transformers, trl, peft, datasets) load inside the functions that need them.

Public API for training with stock TRL on a published revision (docs/training.md):
`VideoDPOCollator` (TRL `DPOTrainer(data_collator=...)`) and `load_row_frames` (a row + video roots
-> its frames at the stored indices).
"""

from videosavi.training.collator import VideoDPOCollator
from videosavi.training.video_frames import load_row_frames

__all__ = ["VideoDPOCollator", "load_row_frames"]
