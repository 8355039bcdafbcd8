"""Workflows: what a user runs end to end, composed from the layers below and imported by nothing but
the CLI (`videosavi.commands`).

`loop` (build -> publish -> train, per iteration), `demo` (the whole flow on embedded defaults),
`doctor` (`savi doctor`: check everything before a long run), `export` (`savi export`: a revision as
files other trainers read), `eval_report` (the error table of `savi eval judge`).
"""
