"""`savi bench`: benchmark scores through LMMs-Eval (run.py), and the paper's Table 1 / Figure 3 and the
model cards' evaluation results from them (report.py)."""
