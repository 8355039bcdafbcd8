"""Dataset and model cards (huggingface_hub's `DatasetCard` / `ModelCard`) and their plots.

Dataset card: `dataset_card.render_dataset_card(CardInputs)` from templates/dataset_card.md;
`plots.render_plots` the PNGs it links; `stats.card_stats` the numbers both show (from
`videosavi.curation.stats`); `metadata.card_data` the YAML header (configs and `dataset_info` derived
from the schemas). Model card: `model_card`.
"""
