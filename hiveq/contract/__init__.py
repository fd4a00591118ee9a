"""The contract layer: what every part of hiveq (engine, worker, API, SDK, CLI) and a worker in
another language must agree on. It depends on pydantic and the standard library only, and no
other hiveq module is imported from here (tests/test_layers.py keeps that true).

- `protocol`: the package and protocol versions, the id formats, the namespace name rule;
- `errors`: every exception, the one table of error codes with HTTP status and CLI exit code,
  and the scripts' return codes;
- `states`: job states, task statuses, the place (key) of each state, the transitions table;
- `lease`: the (job id, token, worker id) every lease-holding script checks;
- `limits`: bounds on what a client may send, with their defaults;
- `jsonrules`: what counts as JSON from a client (no NaN/Infinity, bounded depth, real text);
- `redact`: the one function that takes passwords and tokens out of any text before output;
- `models`: what clients send (requests, subtasks) and the records read back;
- `views`: the shapes the HTTP API answers with (the SDK parses the same classes).
"""
