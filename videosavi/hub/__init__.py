"""Publishing iterations as dataset revisions and reading them back safely.

`publish.publish_run` turns a finished run directory into ONE commit tagged `iterN`, on either the
embedded git store (`store.GitStore`, served read-only over the Hub's API by `serve.HubServer`,
whose `front.HubFront` answers every read route from git) or the Hugging Face Hub
(`hf_backend.HubBackend`). `load.load_revision` resolves a revision to a commit sha before it reads
anything, so a missing tag can never be answered with some other cached revision.

Modules import their heavy dependencies (datasets, huggingface_hub, matplotlib) lazily so that `savi
--help` stays instant.
"""
