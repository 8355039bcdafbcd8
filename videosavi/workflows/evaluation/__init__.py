"""`savi eval`: a fixed eval set of held-out videos, each iteration's answers, and a judge's verdicts
(the paper's error analysis, Table 2). Tables and plots of the verdicts live in curation and cards."""
