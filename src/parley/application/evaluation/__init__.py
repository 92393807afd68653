"""Evaluating the agent (``parley eval``): cases run through the :class:`ChatAgent` port, each
reply scored by a :class:`Judge` on every metric, then summarised. No I/O of its own: datasets,
metric prompts and reports are the driving adapter's (``adapters/inbound/evaluation``)."""
