"""The ``parley eval`` driving adapter: datasets (JSONL) and metric prompts (markdown) read from
``evaluation/``, the run shown on a console (rich), JSON and HTML reports written, two reports
compared. The agent and the judge arrive through their ports, built by the container."""
