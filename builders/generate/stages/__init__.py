"""The four stages, and a retrospective build's describe stage: each builds its chat messages and
parses/validates the model's reply.

Stages are pure: messages in, parsed objects (or a `ParseError` with a reason code) out. The runner
does the model calls, retries, caching and quarantine.
"""
